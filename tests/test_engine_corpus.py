"""The Bio-Formats engine against what the seed's showinf printed for every corpus file, in place."""

from __future__ import annotations

from pathlib import Path

import pytest

import metaextract
from metaextract.ome import normalise

from ._corpus import corpus_files, reference_rows


@pytest.fixture(scope="module")
def outcomes(corpus: Path, reference: Path) -> dict[str, tuple[str, metaextract.Result]]:
    exits = {row["path"]: row["showinf_exit"] for row in reference_rows(reference)}
    paths = [str(corpus / rel) for rel in corpus_files(corpus)]
    results = {r.path: r for r in metaextract.extract_many(paths, engine="bioformats", workers=2)}
    assert len(results) == len(paths)
    return {rel: (exits[rel], results[str(corpus / rel)]) for rel in corpus_files(corpus)}


def test_every_file_has_a_reference(corpus: Path, reference: Path) -> None:
    assert sorted(corpus_files(corpus)) == sorted(r["path"] for r in reference_rows(reference))
    assert len(corpus_files(corpus)) == 114


def test_readable_files_give_the_reference_xml(outcomes: dict, reference: Path) -> None:
    compared = 0
    mismatched = []
    for rel, (exit_code, result) in outcomes.items():
        if exit_code != "0":
            continue
        assert result.status == "ok", f"{rel}: {result.error}"
        expected = (reference / f"{rel}.xml").read_text(encoding="utf-8")
        if normalise(result.omexml or "") != normalise(expected):
            mismatched.append(rel)
        compared += 1
        assert (result.engine, result.engine_version) == ("bioformats", "7.3.1")
        assert result.valid is not None
    assert not mismatched
    assert compared == 100


def test_failing_files_get_a_clear_recorded_error(outcomes: dict) -> None:
    failures = {rel: r for rel, (code, r) in outcomes.items() if code != "0"}
    assert len(failures) == 14
    for rel, r in failures.items():
        assert r.status in ("failed", "unsupported"), rel
        assert r.omexml is None
        assert r.error and "\n" not in r.error and rel.split("/")[-1] in r.error
    assert "IllegalArgumentException: OD" in failures["dicom/boxes_0.dcm"].error
    assert failures["yokogawa-cv7000/MeasurementDetail.mrf"].status == "unsupported"


def test_bioformats_output_mostly_validates(outcomes: dict) -> None:
    oks = [r for _, r in outcomes.values() if r.status == "ok"]
    assert sum(bool(r.valid) for r in oks) >= 90
    for r in oks:
        if not r.valid:
            assert r.validation_error
