"""The seed's Python API: MetadataExtractor and its argument classes, driving a whole experiment."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from metaextract.experiment import add_folder, create_experiment
from metaextract.extraction.pool import ExtractionPool
from metaextract.jobs.step import (
    NO_COLLECT,
    MetadataExtractor,
    MetaextractBatchArguments,
    MetaextractSubmissionArguments,
    NotFoundError,
)
from metaextract.store import open_store
from metaextract.store.models import image_files, jobs

from .conftest import cli, new_experiment, small_plate


def test_batch_arguments_are_validated() -> None:
    assert MetaextractBatchArguments().batch_size == 100
    for bad in (0, -3, 2.5, "10", True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            MetaextractBatchArguments(batch_size=bad)  # type: ignore[arg-type]


def test_submission_arguments_are_validated() -> None:
    args = MetaextractSubmissionArguments()
    assert (args.cores, args.memory, args.duration, args.queue) == (1, 4096, "06:00:00", None)
    assert args.duration_seconds == 6 * 3600
    assert MetaextractSubmissionArguments(duration="1-02:00:30").duration_seconds == 93630
    with pytest.raises(ValueError, match="memory must be a positive"):
        MetaextractSubmissionArguments(memory=-1)
    with pytest.raises(ValueError, match="cores must be a positive"):
        MetaextractSubmissionArguments(cores=0)
    for bad in ("6h", "06:00", "06:61:00", ""):
        with pytest.raises(ValueError, match="duration must look like HH:MM:SS"):
            MetaextractSubmissionArguments(duration=bad)
    with pytest.raises(ValueError, match="timeout must be positive"):
        MetaextractSubmissionArguments(timeout=0)


def test_cli_help_shows_the_api_defaults(sqlite_url: str) -> None:
    assert "[default: 100]" in cli(sqlite_url, "step", "e", "init", "--help").stdout


def test_no_collect_phase_and_unknown_experiment(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        MetadataExtractor("missing", db=sqlite_url)
    with open_store(sqlite_url) as store:
        create_experiment(store, "e")
    with MetadataExtractor("e", db=sqlite_url) as ext:
        assert ext.has_collect_phase is False
        with pytest.raises(NotImplementedError, match="no collect phase"):
            ext.collect_job_output()
        with pytest.raises(ValueError, match="no collect phase"):
            ext.info(1, phase="collect")
        assert NO_COLLECT.startswith("the metaextract step has no collect phase")


def _results(db_url: str, experiment_id: int) -> dict[str, tuple[object, ...]]:
    with open_store(db_url) as s, s.connect() as conn:
        rows = conn.execute(select(image_files).where(image_files.c.experiment_id == experiment_id)).all()
    return {r.name: (r.status, r.omexml, r.error, r.engine, r.engine_version, r.valid) for r in rows}


def test_a_whole_experiment_through_the_api_matches_the_cli(db_url: str, tmp_path: Path) -> None:
    data = small_plate(tmp_path / "plate", wells=2, channels=2, bad=1)
    args = MetaextractBatchArguments(batch_size=3)
    # the CLI's experiment
    cli_id = new_experiment(db_url, "by-cli", data)
    assert "2 run jobs" in cli(db_url, "by-cli", "init", "--batch-size", "3").stdout
    for n in (1, 2):
        cli(db_url, "by-cli", "run", "--job", str(n), "--workers", "1", expect=None)
    # the same files through the API alone
    with open_store(db_url) as store:
        api_id = create_experiment(store, "by-api")
        add_folder(store, api_id, data)
    with MetadataExtractor(api_id, db=db_url, workers=1) as ext:
        planned = list(ext.create_run_batches(args))
        assert [b["id"] for b in planned] == [1, 2]
        assert sum(len(b["image_file_ids"]) for b in planned) == 5
        assert ext.init(args) == 2
        with ext.store.connect() as conn:
            stored = conn.execute(select(jobs.c.batch).where(jobs.c.experiment_id == api_id,
                                                             jobs.c.phase == "run").order_by(jobs.c.number))
            assert [row.batch for row in stored] == planned
        with ExtractionPool(1) as pool:  # one warm pool for every job
            summaries = [ext.run_job(batch, pool=pool) for batch in ext.create_run_batches(args)]
        assert [s.exit_code for s in summaries] == [1, 0]
        assert sum(s.ok for s in summaries) == 4 and sum(s.failed for s in summaries) == 1
        status = ext.status()
        assert {k: status["files"][k] for k in ("total", "ok", "failed", "pending")} == {
            "total": 5, "ok": 4, "failed": 1, "pending": 0}
        assert "FAILED" in ext.log(1) and "broken0.tif" in ext.log(1)
        assert _results(db_url, api_id) == _results(db_url, cli_id)
        assert ext.delete_previous_job_output() == 5
        assert {v[0] for v in _results(db_url, api_id).values()} == {"pending"}
        assert {v[0] for v in _results(db_url, cli_id).values()} == {"ok", "failed"}  # untouched
