"""The step's batches and run jobs: how ``init`` cuts an experiment's files into jobs, and the queries of
``run``, ``cleanup`` and the seed API about them.

The batching rule is written once, here: :func:`numbered` (SQL) cuts every image file read on its own —
acquisitions in id order, each cut into runs of ``batch_size`` files in id order, the runs numbered 1..N
across them — and :func:`fileset_batches` adds one job per fileset after them (N+1.., filesets in
acquisition then id order; none for a names-only ``"own"`` fileset). An image member of a fileset of view
``"fileset"`` (its document *is* the fileset's: an ``.HTD`` plate, a Harmony index) is in no per-file batch
but in its fileset's job, read once as a whole; a fileset of view ``"own"`` keeps its members in per-file
batches and its job reads only its document. A fileset lies in one acquisition (detection runs per
acquisition), so no job spans two.
``init`` stores what it computes (one job per number, each file pointed at its job, in a few statements
whatever the number of files) and :func:`run_batches` (``MetadataExtractor.create_run_batches``) streams the
same, so the batches a caller plans are exactly the jobs ``init`` stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, column, delete, func, or_, select, table, text, update

from metaextract.store.db import Store
from metaextract.store.filesets import fileset_members, filesets
from metaextract.store.holders import JobBusyError, bump_generation
from metaextract.store.jobs import RESULT_COLUMNS, clear_results, hold_experiment
from metaextract.store.models import image_files, job_runs, jobs, utcnow

_PAGE = 5000  # rows fetched at a time from the numbering
_JOB_CHUNK = 1000  # jobs per INSERT
_MAP = "metaextract_init_batches"  # a temporary table during init: file id -> acquisition, job number


def numbered(experiment_id: int, batch_size: int) -> Select[Any]:
    """The batching rule: ``(id, acquisition_id, number)`` of every image file of the experiment, ``number``
    its run job (1..N): acquisitions in id order, each cut into runs of ``batch_size`` files in id order."""
    rn = func.row_number().over(partition_by=image_files.c.acquisition_id, order_by=image_files.c.id)
    inner = (select(image_files.c.id, image_files.c.acquisition_id, (rn - 1).label("place"))
             .where(image_files.c.experiment_id == experiment_id,
                    image_files.c.id.not_in(read_as_fileset(experiment_id))).subquery("numbered"))
    # place / size in integers on both dialects (SQLAlchemy's / and // would make it NUMERIC, or a FLOOR)
    number = func.dense_rank().over(order_by=(inner.c.acquisition_id, inner.c.place.op("/")(batch_size)))
    return select(inner.c.id, inner.c.acquisition_id, number.label("number"))


def read_as_fileset(experiment_id: int) -> Select[Any]:
    """The ids of the experiment's image files read with their fileset, as a whole (members of a fileset
    of view ``"fileset"``): no per-file batch holds them."""
    return (select(fileset_members.c.image_file_id)
            .join(filesets, filesets.c.id == fileset_members.c.fileset_id)
            .where(filesets.c.experiment_id == experiment_id, filesets.c.view == "fileset",
                   fileset_members.c.image_file_id.is_not(None)))


def fileset_batches(conn: Connection, experiment_id: int, first: int) -> list[dict[str, Any]]:
    """One batch per fileset of the experiment, numbered from ``first`` (acquisitions, then filesets, in id
    order): ``{"id", "acquisition_id", "fileset_id", "image_file_ids"}``, the ids those of the image members
    read with it (view ``"fileset"``; none for view ``"own"``, whose members have per-file batches).

    An ``"own"`` fileset whose layout is from file names alone (MetaXpress or ScanR TIFFs without their
    vendor files) gets no job: it has no vendor document to read, and registration stored its layout."""
    rows = conn.execute(select(filesets.c.id, filesets.c.acquisition_id, filesets.c.view)
                        .where(filesets.c.experiment_id == experiment_id,
                               or_(filesets.c.view == "fileset", filesets.c.layout_from_names.is_(False)))
                        .order_by(filesets.c.acquisition_id, filesets.c.id)).all()
    members: dict[int, list[int]] = {}
    for fs_id, file_id in conn.execute(
            select(fileset_members.c.fileset_id, fileset_members.c.image_file_id)
            .where(fileset_members.c.image_file_id.in_(read_as_fileset(experiment_id)))
            .order_by(fileset_members.c.image_file_id)):
        members.setdefault(int(fs_id), []).append(int(file_id))
    return [{"id": first + i, "acquisition_id": int(acq), "fileset_id": int(fs_id),
             "image_file_ids": members.get(int(fs_id), []) if view == "fileset" else []}
            for i, (fs_id, acq, view) in enumerate(rows)]


def _group(rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Batches ``{"id": number, "acquisition_id", "image_file_ids"}`` from ``(number, acquisition_id, id)``
    rows ordered by number, then id."""
    current: dict[str, Any] | None = None
    for number, acq, file_id in rows:
        if current is None or current["id"] != number:
            if current is not None:
                yield current
            current = {"id": int(number), "acquisition_id": int(acq), "image_file_ids": []}
        current["image_file_ids"].append(int(file_id))
    if current is not None:
        yield current


def run_batches(store: Store, experiment_id: int, batch_size: int) -> Iterator[dict[str, Any]]:
    """The run jobs :func:`replace_run_jobs` would store now, in job order, streamed (on one connection of
    their own, held until the last batch is read)."""
    q = numbered(experiment_id, batch_size).subquery()
    with store.connect() as conn:
        last = 0
        rows = conn.execute(select(q.c.number, q.c.acquisition_id, q.c.id).order_by(q.c.number, q.c.id),
                            execution_options={"stream_results": True, "yield_per": _PAGE})
        for batch in _group(rows):
            last = batch["id"]
            yield batch
        yield from fileset_batches(conn, experiment_id, last + 1)


def take_experiment(conn: Connection, experiment_id: int, name: str, command: str, force: bool,
                    notify: Callable[[str], None] | None) -> None:
    """Take the experiment for ``command`` (``init``, ``cleanup``) in this transaction: its lock, no live
    submission or job left (dead ones are ended; live ones too with ``force``), a new generation (a
    submission that started before stops at its next claim)."""
    hold_experiment(conn, experiment_id, name, command, force=force, notify=notify)
    bump_generation(conn, experiment_id)


def refuse_if_running(conn: Connection, experiment_id: int, name: str, what: str) -> None:
    """Raise :class:`JobBusyError` when a job of the experiment is running (``what``: "initialising", ...)."""
    row = conn.execute(select(jobs).where(jobs.c.experiment_id == experiment_id,
                                          jobs.c.state == "running").limit(1)).one_or_none()
    if row is not None:
        raise JobBusyError(f"{row.phase} job {row.number} of {name!r} is running "
                           f"(host {row.host}, pid {row.pid}); not {what} while it runs")


def _insert_jobs(conn: Connection, experiment_id: int, batches: Iterable[dict[str, Any]], now: datetime
                 ) -> tuple[int, int]:
    """Insert one pending run job per batch, in chunks; returns how many jobs and files."""
    n_jobs = n_files = 0
    rows: list[dict[str, Any]] = []
    for batch in batches:
        rows.append({"experiment_id": experiment_id, "phase": "run", "number": batch["id"], "batch": batch,
                     "state": "pending", "updated": now})
        n_jobs, n_files = n_jobs + 1, n_files + len(batch["image_file_ids"])
        if len(rows) == _JOB_CHUNK:
            conn.execute(jobs.insert(), rows)
            rows.clear()
    if rows:
        conn.execute(jobs.insert(), rows)
    return n_jobs, n_files


def replace_run_jobs(conn: Connection, experiment_id: int, name: str, batch_size: int) -> tuple[int, int]:
    """``init``'s work in the caller's transaction (which holds the experiment): replace the run jobs by
    one per batch of :func:`numbered`, point every file at its new job and forget its result; returns how
    many jobs and files.

    The old jobs step aside (negative numbers) so the new ones can take 1..N; one UPDATE then points every
    file at its new job, and the old jobs, no longer referred to, are deleted. Each file row is written
    once, whatever its previous state.
    """
    mine = jobs.c.experiment_id == experiment_id
    conn.execute(update(jobs).where(mine, jobs.c.state != "running", jobs.c.number > 0)
                 .values(number=-jobs.c.number))
    refuse_if_running(conn, experiment_id, name, "initialising")  # none: claims wait for the lock (safety net)
    rule = numbered(experiment_id, batch_size).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    conn.execute(text(f"CREATE TEMPORARY TABLE {_MAP} AS {rule}"))
    try:
        mapped = table(_MAP, column("id"), column("acquisition_id"), column("number"))
        rows = conn.execute(select(mapped.c.number, mapped.c.acquisition_id, mapped.c.id)
                            .order_by(mapped.c.number, mapped.c.id),
                            execution_options={"stream_results": True, "yield_per": _PAGE})
        n_jobs, n_files = _insert_jobs(conn, experiment_id, _group(rows), utcnow())
        per_fileset = fileset_batches(conn, experiment_id, n_jobs + 1)
        n_sets, n_members = _insert_jobs(conn, experiment_id, per_fileset, utcnow())
        if conn.dialect.name == "postgresql":  # fresh statistics, so the planner joins by hash
            conn.exec_driver_sql(f"ANALYZE {_MAP}, {jobs.name}")
        cleared: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
        cleared["status"] = "pending"
        conn.execute(update(image_files).values(job_id=jobs.c.id, **cleared).where(
            image_files.c.id == mapped.c.id, mine, jobs.c.phase == "run", jobs.c.number == mapped.c.number))
        _point_members(conn, experiment_id, per_fileset, cleared)
    finally:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_MAP}")
    clear_fileset_reads(conn, experiment_id)
    # files of no batch (none, unless the registration changed meanwhile) keep no stale result
    clear_results(conn, image_files.c.experiment_id == experiment_id,
                  or_(image_files.c.job_id.is_(None), image_files.c.job_id.in_(
                      select(jobs.c.id).where(mine, jobs.c.number < 0))), job_id=None)
    conn.execute(delete(jobs).where(mine, jobs.c.number < 0))
    return n_jobs + n_sets, n_files + n_members


def _point_members(conn: Connection, experiment_id: int, per_fileset: list[dict[str, Any]],
                   cleared: dict[str, Any]) -> None:
    """Point the image members read with their fileset at its job (one UPDATE per such fileset)."""
    job_ids = dict(conn.execute(select(jobs.c.number, jobs.c.id).where(
        jobs.c.experiment_id == experiment_id, jobs.c.phase == "run",
        jobs.c.number.in_([b["id"] for b in per_fileset if b["image_file_ids"]]))).all())
    for b in per_fileset:
        if b["image_file_ids"]:
            conn.execute(update(image_files).values(job_id=job_ids[b["id"]], **cleared).where(
                image_files.c.id.in_(select(fileset_members.c.image_file_id)
                                     .where(fileset_members.c.fileset_id == b["fileset_id"],
                                            fileset_members.c.image_file_id.is_not(None)))))


def clear_fileset_reads(conn: Connection, experiment_id: int) -> None:
    """Forget the experiment's filesets' reads (status back to pending, no document, error or engine)."""
    conn.execute(update(filesets).where(filesets.c.experiment_id == experiment_id).values(
        status="pending", omexml=None, error=None, engine=None, engine_version=None, extracted_at=None))


def record_init(conn: Connection, experiment_id: int, batch: dict[str, Any], host: str, pid: int,
                started: datetime, log: str) -> None:
    """Store ``init`` as the experiment's done init job 1 (its ``batch`` says what it made), with its run."""
    init_id = conn.execute(jobs.insert().values(
        experiment_id=experiment_id, phase="init", number=1, state="done", updated=started, batch=batch)
        .returning(jobs.c.id)).scalar_one()
    conn.execute(job_runs.insert().values(job_id=init_id, attempt=1, host=host, pid=pid, started=started,
                                          ended=utcnow(), state="done", exit_code=0, log=log))


def job_id(store: Store, experiment_id: int, phase: str, number: int) -> int | None:
    """The database id of job ``number`` of ``phase``, or None."""
    with store.connect() as conn:
        found = conn.execute(select(jobs.c.id).where(jobs.c.experiment_id == experiment_id,
                                                     jobs.c.phase == phase, jobs.c.number == number)
                             ).scalar_one_or_none()
    return None if found is None else int(found)


def job_numbers(store: Store, experiment_id: int, phase: str) -> list[int]:
    """The numbers of the experiment's ``phase`` jobs, in order."""
    with store.connect() as conn:
        return [int(n) for n in conn.execute(
            select(jobs.c.number).where(jobs.c.experiment_id == experiment_id, jobs.c.phase == phase)
            .order_by(jobs.c.number)).scalars()]


def has_run_jobs(store: Store, experiment_id: int) -> bool:
    """Whether ``init`` made any run job for the experiment."""
    with store.connect() as conn:
        return conn.execute(select(jobs.c.id).where(jobs.c.experiment_id == experiment_id,
                                                    jobs.c.phase == "run").limit(1)).first() is not None


def reset_results(conn: Connection, experiment_id: int) -> int:
    """``cleanup``'s work in the caller's transaction: forget every result of the experiment and set its run
    jobs back to pending (their run history stays); returns how many files had a result."""
    n = clear_results(conn, image_files.c.experiment_id == experiment_id, image_files.c.status != "pending")
    clear_fileset_reads(conn, experiment_id)
    conn.execute(update(jobs).where(jobs.c.experiment_id == experiment_id, jobs.c.phase == "run")
                 .values(state="pending", updated=utcnow()))
    return n
