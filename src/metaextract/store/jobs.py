"""Job bookkeeping shared by ``run`` and the Dask submitter: claim a job, list its files, write results.

Every function takes a :class:`~metaextract.store.Store` and runs its own short transaction(s), so that
a process killed at any point leaves finished files stored, the rest pending, and no half-written row.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select, update

from metaextract.result import Result, one_line
from metaextract.store.db import Store
from metaextract.store.filesets import store_fileset_read
from metaextract.store.holders import (
    JobBusyError,
    check_current,
    dead_at,
    describe,
    end_submission,
    job_alive,
    job_beat,
    lock_experiment,
    running_jobs,
    take_over_submissions,
    this_host,
)
from metaextract.store.models import acquisitions, image_files, job_runs, jobs, plates, submissions, utcnow

__all__ = ["JobBusyError", "this_host"]  # re-exported: where they used to be defined

#: The image_files columns a Result fills (:func:`_result_row` builds their values, in this order; the
#: time it was stored comes last). A new Result field is stored by adding its column here, to the model and
#: a migration, and its value to :func:`_result_row`.
RESULT_COLUMNS = ("status", "omexml", "error", "engine", "engine_version", "seconds", "valid",
                  "validation_error", "notes", "extracted_at")


DB_RETRIES = 3  # a transaction whose connection was lost (a database restart, a killed backend) is retried
T = TypeVar("T")


def retrying(what: str, fn: Callable[[], T], notify: Callable[[str], None] | None = None) -> T:
    """``fn()``, run again (up to :data:`DB_RETRIES` times, a second apart) when the database connection was
    lost under it: SQLAlchemy then discards that connection, so the next try gets a fresh one. For
    transactions that may run twice (writing a file's result, closing a job run, claiming jobs); ``notify``
    hears of each retry."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(1, DB_RETRIES + 1):
        try:
            return fn()
        except DBAPIError as exc:
            if not exc.connection_invalidated or attempt == DB_RETRIES:
                raise
            if notify is not None:
                notify(f"the database connection was lost while {what} ({one_line(str(exc.orig), 200)}); "
                       f"trying again ({attempt}/{DB_RETRIES - 1})")
            time.sleep(attempt)
    raise AssertionError("unreachable")


def release_stale(conn: Connection, experiment_id: int, *, force: bool = False) -> int:
    """Mark as failed every running job of the experiment whose holder is dead (:mod:`.holders`), or every
    running job with ``force``; returns how many."""
    released = 0
    for row in running_jobs(conn, jobs.c.experiment_id == experiment_id):
        if force or not job_alive(row):
            released += _take_stale(conn, row.id, row.host, row.pid, "failed", host=None, pid=None)
    return released


def hold_experiment(conn: Connection, experiment_id: int, name: str, command: str, *, force: bool = False,
                    notify: Callable[[str], None] | None = None) -> None:
    """For ``init``, ``cleanup`` and ``experiment delete``: take the experiment's lock, end its dead
    submissions and release its dead jobs (any, with ``force``, saying so), and refuse while a live
    one remains (:class:`JobBusyError`, saying when it will count as dead and how to override)."""
    lock_experiment(conn, experiment_id)
    hint = f"metaextract {name} {command if command != 'delete' else 'cleanup'}"  # delete has no --force
    by = f"`{command}` on {this_host()} (pid {os.getpid()})"
    what = {"init": "initialising", "cleanup": "cleaning up", "delete": "deleting"}.get(command, command)
    take_over_submissions(conn, experiment_id, force=force, hint=hint, notify=notify, by=by)
    for row in running_jobs(conn, jobs.c.experiment_id == experiment_id):
        beat = job_beat(row)
        if force or not job_alive(row):
            if _take_stale(conn, row.id, row.host, row.pid, "failed", host=None, pid=None) and notify:
                notify(f"{row.phase} job {row.number} ({describe(row.host, row.pid, beat)}): released by {by}")
            continue
        raise JobBusyError(f"{row.phase} job {row.number} of {name!r} is running ({describe(row.host, row.pid, beat)});"
                           f" not {what} while it runs; it counts as dead if it stays silent until "
                           f"{dead_at(beat)}; if you know it is dead: `{hint} --force`")


def _take_stale(conn: Connection, job_id: int, old_host: str | None, old_pid: int | None, state: str,
                **values: Any) -> int:
    """Compare-and-swap a running job held by a dead process to ``state``; close its open runs."""
    host, pid = old_host, old_pid
    now = utcnow()  # the job's heartbeat is the new holder's business: it starts afresh
    res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running",
                                          jobs.c.host.is_(None) if host is None else jobs.c.host == host,
                                          jobs.c.pid.is_(None) if pid is None else jobs.c.pid == pid)
                       .values(state=state, updated=now, heartbeat=None, **values))
    if res.rowcount:
        conn.execute(update(job_runs).where(job_runs.c.job_id == job_id, job_runs.c.state == "running")
                     .values(state="failed", ended=now,
                             log=func.coalesce(job_runs.c.log, "") +
                             f"\nabandoned: its holder ({host}, pid {pid}) is dead or was taken over\n"))
    return int(res.rowcount or 0)


def begin_job_run(store: Store, job_id: int, *, host: str | None = None, pid: int | None = None,
                  submission_id: int | None = None) -> int:
    """Claim a job for this process and open a new run of it (attempt = previous + 1).

    Parameters
    ----------
    store : Store
    job_id : int
        The job's database id (not its number).
    host, pid : optional
        The process that will write the results and finish the run (default: this one); a later claim
        takes the job over when that process is gone from this host.
    submission_id : int, optional
        The submission this run belongs to.

    Returns
    -------
    int
        The job run's id, for :func:`finish_job_run`.

    Raises
    ------
    JobBusyError
        When another live process runs the job.
    LookupError
        When the job does not exist (e.g. ``init`` replaced it).
    """
    with store.begin() as conn:
        exp_id = conn.execute(select(jobs.c.experiment_id).where(jobs.c.id == job_id)).scalar_one_or_none()
        if exp_id is not None:  # init and cleanup exclude claims (see .holders)
            lock_experiment(conn, exp_id, shared=True)
        return _begin(conn, job_id, host or this_host(), pid if pid is not None else os.getpid(), submission_id)


def begin_job_runs(store: Store, job_ids: Iterable[int], *, submission_id: int | None = None
                   ) -> tuple[dict[int, int], dict[int, str]]:
    """:func:`begin_job_run` for many jobs in one transaction (the job runner claims its jobs so).

    Returns the run id of each job claimed, and why each other job was not (busy, or gone).
    """
    runs: dict[int, int] = {}
    refused: dict[int, str] = {}
    host, pid = this_host(), os.getpid()
    ids = list(dict.fromkeys(job_ids))
    with store.begin() as conn:
        if submission_id is not None:  # raises SubmissionLost: its jobs were replaced, or it was taken over
            check_current(conn, submission_id)
        else:  # init and cleanup exclude claims (see .holders)
            for exp_id in sorted(set(conn.execute(select(jobs.c.experiment_id).where(jobs.c.id.in_(ids)))
                                     .scalars())):
                lock_experiment(conn, exp_id, shared=True)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            now = utcnow()
            # the common case in three statements: every job that is not running is taken at once ...
            taken = {int(r[0]) for r in conn.execute(
                update(jobs).where(jobs.c.id.in_(part), jobs.c.state != "running")
                .values(state="running", host=host, pid=pid, updated=now, heartbeat=now).returning(jobs.c.id))}
            attempts = dict(conn.execute(select(job_runs.c.job_id, func.max(job_runs.c.attempt))
                                         .where(job_runs.c.job_id.in_(sorted(taken))).group_by(job_runs.c.job_id)).all())
            rows = [{"job_id": j, "submission_id": submission_id, "attempt": int(attempts.get(j) or 0) + 1,
                     "host": host, "pid": pid, "started": now, "state": "running"} for j in part if j in taken]
            if rows:
                made = conn.execute(job_runs.insert().returning(job_runs.c.id, job_runs.c.job_id,
                                                                sort_by_parameter_order=True), rows).all()
                runs.update({int(r.job_id): int(r.id) for r in made})
            for job_id in part:  # ... the others one by one: running elsewhere, held by a dead process, gone
                if job_id in taken:
                    continue
                try:
                    runs[job_id] = _begin(conn, job_id, host, pid, submission_id)
                except (JobBusyError, LookupError) as exc:  # nothing was written for it
                    refused[job_id] = str(exc)
    return {j: runs[j] for j in ids if j in runs}, refused


def _begin(conn: Connection, job_id: int, host: str, pid: int, submission_id: int | None) -> int:
    now = utcnow()
    claim = {"state": "running", "host": host, "pid": pid, "updated": now, "heartbeat": now}
    res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state != "running").values(**claim))
    if not res.rowcount:
        held = running_jobs(conn, jobs.c.id == job_id)
        if not held:
            if conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
                raise LookupError(f"job id {job_id} does not exist (was the step initialised again?)")
            raise JobBusyError(f"job id {job_id} changed while it was claimed; try again")
        row = held[0]
        if job_alive(row) or not _take_stale(conn, job_id, row.host, row.pid, "running", host=host, pid=pid):
            raise JobBusyError(f"{row.phase} job {row.number} is already running "
                               f"({describe(row.host, row.pid, job_beat(row))}); refusing to run it twice")
    attempt = conn.execute(select(func.coalesce(func.max(job_runs.c.attempt), 0))
                           .where(job_runs.c.job_id == job_id)).scalar_one() + 1
    return int(conn.execute(job_runs.insert().values(
        job_id=job_id, submission_id=submission_id, attempt=attempt, host=host, pid=pid, started=now,
        state="running").returning(job_runs.c.id)).scalar_one())


def finish_job_run(store: Store, run_id: int, state: str, exit_code: int | None, log: str, *,
                   host: str | None = None, job_state: str | None = None) -> None:
    """Close a job run and set its job's state (``done``, ``failed`` or ``cancelled``), releasing the job.

    ``host``, if given, replaces the run's host (e.g. the Dask worker that did the work); ``job_state``,
    if given, is the job's new state instead of ``state`` (``pending``: the run never started its work).
    A run that another process ended already (its job taken over) is left as it is.
    """
    with store.begin() as conn:
        _finish(conn, run_id, state, exit_code, log, host, job_state)


def _finish(conn: Connection, run_id: int, state: str, exit_code: int | None, log: str, host: str | None,
            job_state: str | None = None) -> None:
    values: dict[str, Any] = {"state": state, "exit_code": exit_code, "log": storable_text(log), "ended": utcnow()}
    if host is not None:
        values["host"] = host
    # only a run still open closes its job: one ended by another process (its job taken over) leaves it be
    job_id = conn.execute(update(job_runs).where(job_runs.c.id == run_id, job_runs.c.state == "running")
                          .values(**values).returning(job_runs.c.job_id)).scalar_one_or_none()
    if job_id is None:
        if conn.execute(select(job_runs.c.id).where(job_runs.c.id == run_id)).first() is None:
            raise LookupError(f"job run {run_id} does not exist")
        return
    conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running")
                 .values(state=job_state or state, host=None, pid=None, updated=utcnow()))


def store_completed(store: Store, pairs: Iterable[tuple[int, Result]],
                    finished: Iterable[tuple[int, str, int | None, str, str | None]], *,
                    submission_id: int | None = None, fileset_reads: Iterable[tuple[Any, Result]] = ()) -> None:
    """In one transaction: write ``(image_file_id, Result)`` pairs and ``(FilesetJob, Result)`` fileset
    reads (:func:`~metaextract.store.filesets.store_fileset_read`), then close the job runs ``finished``
    (``(run_id, state, exit_code, log, host)``, as for :func:`finish_job_run`).

    With ``submission_id``, nothing is written unless that submission still runs (its row is locked for
    the transaction, so a takeover waits for this write): :class:`~.holders.SubmissionLost` otherwise.
    """
    with store.begin() as conn:
        if submission_id is not None:
            conn.execute(select(submissions.c.id).where(submissions.c.id == submission_id)
                         .with_for_update(read=True))
            check_current(conn, submission_id, lock=False)
        _write_results(conn, list(pairs))
        for job, read in fileset_reads:
            store_fileset_read(conn, job, read)
        _finish_many(conn, list(finished))


def _finish_many(conn: Connection, finished: list[tuple[int, str, int | None, str, str | None]]) -> None:
    """:func:`_finish` for many runs in a few statements; a run that no longer exists (its job was
    replaced meanwhile) is skipped."""
    if not finished:
        return
    from sqlalchemy import bindparam

    now = utcnow()
    for start in range(0, len(finished), 500):
        part = finished[start:start + 500]
        owners = dict(conn.execute(select(job_runs.c.id, job_runs.c.job_id)  # runs still open, as in _finish
                                   .where(job_runs.c.id.in_([f[0] for f in part]),
                                          job_runs.c.state == "running")).all())
        part = [f for f in part if f[0] in owners]
        if not part:
            continue
        conn.execute(update(job_runs).where(job_runs.c.id == bindparam("run_id"))
                     .values(state=bindparam("new_state"), exit_code=bindparam("code"), log=bindparam("text"),
                             ended=now, host=func.coalesce(bindparam("new_host"), job_runs.c.host)),
                     [{"run_id": r, "new_state": st, "code": code, "text": storable_text(log), "new_host": host}
                      for r, st, code, log, host in part])
        conn.execute(update(jobs).where(jobs.c.id == bindparam("job"), jobs.c.state == "running")
                     .values(state=bindparam("new_state"), host=None, pid=None, updated=now),
                     [{"job": owners[r], "new_state": st} for r, st, _code, _log, _host in part])


def experiment_roots(store: Store, experiment_id: int) -> tuple[str, ...]:
    """The registered folders of an experiment's acquisitions: what its extraction processes may read."""
    with store.connect() as conn:
        return tuple(sorted(str(r) for r in conn.execute(
            select(acquisitions.c.root).join(plates, plates.c.id == acquisitions.c.plate_id)
            .where(plates.c.experiment_id == experiment_id, acquisitions.c.root.is_not(None))).scalars()))


def job_files(store: Store, job_id: int) -> list[tuple[int, str, str]]:
    """``(image_file_id, absolute_path, acquisition root)`` of every file in a run job, in batch order.

    The root lets the extraction refuse a path that resolves outside its registered folder.
    """
    return jobs_files(store, [job_id]).get(job_id, [])


def jobs_files(store: Store, job_ids: list[int]) -> dict[int, list[tuple[int, str, str]]]:
    """:func:`job_files` of several jobs, in one query."""
    out: dict[int, list[tuple[int, str, str]]] = {}
    if not job_ids:
        return out
    stmt = (select(image_files.c.job_id, image_files.c.id, image_files.c.location, acquisitions.c.root)
            .join(acquisitions, acquisitions.c.id == image_files.c.acquisition_id)
            .where(image_files.c.job_id.in_(job_ids)).order_by(image_files.c.id))
    with store.connect() as conn:
        # the driver's rows (plain tuples of ints and strings): a submitter lists every file of the run here
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        args = tuple(params[name] for name in compiled.positiontup) if compiled.positiontup else params
        cursor = conn.exec_driver_sql(str(compiled), args).cursor
        assert cursor is not None
        rows = cursor.fetchall()
    roots: dict[str, str] = {}
    for job_id, file_id, location, root in rows:
        root = roots.setdefault(root, root)  # one string per acquisition, shared by its files
        out.setdefault(job_id, []).append((file_id, location, root))
    return out


def clear_job_results(store: Store, job_ids: list[int]) -> int:
    """Set the files of these jobs back to pending, forgetting their results (one transaction)."""
    with store.begin() as conn:
        return clear_results(conn, image_files.c.job_id.in_(job_ids))


def clear_results(conn: Connection, *where: Any, **extra: Any) -> int:
    """Set the matching image files back to pending, forgetting their results (caller's transaction)."""
    values: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    values["status"] = "pending"
    values.update(extra)
    return int(conn.execute(update(image_files).where(*where).values(**values)).rowcount or 0)


def storable_text(text: str, limit: int | None = None) -> str:
    """``text`` as every database stores it: NUL (which PostgreSQL refuses in text) written ``\\x00``, lone
    surrogates (which no UTF-8 encoder takes) backslash-escaped, and at most ``limit`` characters (the
    column's length; the last kept character then is ``…``). Text that needs none of this is returned as is."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def _column_limit(name: str) -> int | None:
    return getattr(image_files.c[name].type, "length", None)


_STATUS, _ENGINE, _VERSION = _column_limit("status"), _column_limit("engine"), _column_limit("engine_version")


def _optional(text: str | None, limit: int | None = None) -> str | None:
    return None if text is None else storable_text(text, limit)


def _result_row(result: Result, at: Any) -> list[Any]:
    """The values of :data:`RESULT_COLUMNS` for one Result, in that order, each one the database stores
    (:func:`storable_text`), whatever the Result holds."""
    ok = result.status == "ok"
    return [storable_text(result.status, _STATUS), _optional(result.omexml) if ok else None,
            _optional(result.error), storable_text(result.engine or "", _ENGINE) or None,
            storable_text(result.engine_version or "", _VERSION) or None, float(result.seconds), result.valid,
            _optional(result.validation_error), joined_notes(result.notes), at]


def _refused_row(result: Result, why: str, at: Any) -> list[Any]:
    """The row that stands for a Result the database (or the conversion to its row) refused: failed, with
    the reason in one line naming the file."""
    error = f"{result.path}: its result could not be stored ({one_line(why, 300)})"
    return ["failed", None, storable_text(error), None, None, None, None, None, None, at]


def joined_notes(notes: Iterable[str]) -> str | None:
    """Notes as the ``notes`` column stores them: one a line (a note's own line breaks become spaces),
    None when there are none; :func:`split_notes` reads them back."""
    lines = [" ".join(str(n).split()) for n in notes]
    return storable_text("\n".join(n for n in lines if n)) or None


def split_notes(stored: str | None) -> list[str]:
    """The notes of a ``notes`` column value (:func:`joined_notes`)."""
    return stored.split("\n") if stored else []


def result_values(result: Result, at: Any = None) -> dict[str, Any]:
    """The image_files columns for one Result, stored ``at`` (default: now)."""
    return dict(zip(RESULT_COLUMNS, _result_row(result, at if at is not None else utcnow()), strict=True))


_WRITES: dict[str, tuple[str, list[Any]]] = {}


def _write_sql(dialect: Any) -> tuple[str, list[Any]]:
    """The result UPDATE in the driver's own parameter style, and each column's bind processor (as
    SQLAlchemy would apply it: datetimes as SQLite text, booleans as SQLite integers, ...)."""
    if dialect.name not in _WRITES:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        sets = ", ".join(f"{c} = {mark}" for c in RESULT_COLUMNS)
        procs = [image_files.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in RESULT_COLUMNS]
        _WRITES[dialect.name] = (f"UPDATE {image_files.name} SET {sets} WHERE id = {mark}", procs)
    return _WRITES[dialect.name]


def _write_results(conn: Connection, pairs: list[tuple[int, Result]]) -> None:
    """Write ``(image_file_id, Result)`` pairs with the driver's ``executemany``: the same values and
    conversions as an ORM-free SQLAlchemy UPDATE, without its per-row parameter processing (the submitter
    stores every file of an experiment through here).

    A Result that cannot be stored fails its own file only: a row that cannot be built is stored as failed
    at once, and when the database refuses the batch for its content (a data or integrity error, not a
    lost connection) the batch is written again row by row, each refused row as failed with the
    database's reason. Each attempt runs in a savepoint, so the caller's transaction stays usable.
    """
    if not pairs:
        return
    sql, procs = _write_sql(conn.dialect)
    at = utcnow()  # one time for the transaction: when these results were stored
    last = len(RESULT_COLUMNS) - 1  # extracted_at, the same for every row: converted once
    stored_at = procs[last](at) if procs[last] else at
    convert = [(i, p) for i, p in enumerate(procs) if p is not None and i != last]

    def driver_row(row: list[Any], file_id: int) -> tuple[Any, ...]:
        for i, p in convert:
            row[i] = p(row[i])
        return (*row, file_id)

    def refused_row(file_id: int, result: Result, why: str) -> tuple[Any, ...]:
        return driver_row(_refused_row(result, why, stored_at), file_id)

    rows = []
    for file_id, result in pairs:
        try:
            rows.append(driver_row(_result_row(result, stored_at), file_id))
        except (ValueError, TypeError, OverflowError) as exc:
            rows.append(refused_row(file_id, result, f"{type(exc).__name__}: {exc}"))
    try:
        with conn.begin_nested():
            for start in range(0, len(rows), 1000):
                conn.exec_driver_sql(sql, rows[start:start + 1000])
    except Exception as exc:
        if not _refused(exc):
            raise
        for (file_id, result), row in zip(pairs, rows, strict=True):
            _write_alone(conn, sql, row, functools.partial(refused_row, file_id, result))


def _refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the database (or its driver) refusing a row's content, not a lost connection or
    a broken schema: then the rows are worth writing one by one."""
    from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

    if isinstance(exc, DBAPIError):
        return not exc.connection_invalidated and isinstance(exc, DataError | IntegrityError)
    return isinstance(exc, StatementError) and isinstance(exc.orig, ValueError | TypeError | OverflowError)


def _write_alone(conn: Connection, sql: str, row: tuple[Any, ...],
                 refused: Callable[[str], tuple[Any, ...]]) -> None:
    """Write one result row in its own savepoint; a row the database refuses is replaced by ``refused``
    (given the database's reason), which must then be stored."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(sql, [row])
    except Exception as exc:
        if not _refused(exc):
            raise
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [""])[0]  # PostgreSQL's DETAIL lines quote the row itself
        with conn.begin_nested():
            conn.exec_driver_sql(sql, [refused(f"{type(orig).__name__}: {first}")])


def record_results(store: Store, pairs: Iterable[tuple[int, Result]], *, chunk: int = 200,
                   max_delay: float = 2.0, notify: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write ``(image_file_id, Result)`` pairs as they come, in short transactions.

    A transaction is committed every ``chunk`` results or ``max_delay`` seconds, whichever comes first,
    so a killed writer loses only the results not yet committed. Writing a file again overwrites it; a
    transaction whose connection was lost is written again (:func:`retrying`, which tells ``notify``).

    Returns
    -------
    dict
        How many results of each status were written.
    """
    counts: dict[str, int] = {}
    buffer: list[tuple[int, Result]] = []
    last = time.monotonic()

    def write() -> None:
        with store.begin() as conn:
            _write_results(conn, buffer)

    def flush() -> None:
        nonlocal last
        if buffer:
            retrying("storing results", write, notify)
            buffer.clear()
        last = time.monotonic()

    for file_id, result in pairs:
        buffer.append((file_id, result))
        counts[result.status] = counts.get(result.status, 0) + 1
        if len(buffer) >= chunk or time.monotonic() - last >= max_delay:
            flush()
    flush()
    return counts


S = TypeVar("S")


def open_submission(store: Store, experiment_id: int, options: dict[str, Any], select_jobs: Callable[[Connection], S],
                    *, force: bool = False, notify: Callable[[str], None] | None = None,
                    hint: str = "metaextract EXP resubmit", host: str | None = None, pid: int | None = None
                    ) -> tuple[int | None, S]:
    """Under the experiment's lock: end the dead running submissions of the experiment (every running one
    with ``force``, saying what it overrides to ``notify``), select the jobs to run with ``select_jobs``
    and, when it found any, open a submission that records the experiment's generation.

    The jobs are selected in the same transaction as the submission is opened, so an ``init`` either
    finished before (its jobs are selected) or waits and then refuses (the submission is alive).

    Returns
    -------
    tuple
        The submission's id (None when nothing was selected) and what ``select_jobs`` returned.

    Raises
    ------
    JobBusyError
        When a submission of this experiment is running and alive (and not ``force``).
    """
    host = host or this_host()
    pid = pid if pid is not None else os.getpid()
    with store.begin() as conn:
        generation = lock_experiment(conn, experiment_id)
        take_over_submissions(conn, experiment_id, force=force, hint=hint, notify=notify,
                              by=f"a submission on {host} (pid {pid})")
        selected = select_jobs(conn)
        if not selected:
            return None, selected
        now = utcnow()
        return int(conn.execute(submissions.insert().values(
            experiment_id=experiment_id, options=options, host=host, pid=pid, state="running", started=now,
            heartbeat=now, generation=generation).returning(submissions.c.id)).scalar_one()), selected


def begin_submission(store: Store, experiment_id: int, options: dict[str, Any], *,
                     host: str | None = None, pid: int | None = None, force: bool = False) -> int:
    """Open a submission for an experiment (:func:`open_submission` without a job selection).

    Raises
    ------
    JobBusyError
        When a submission of this experiment is running and alive.
    """
    sub_id, _ = open_submission(store, experiment_id, options, lambda conn: True, force=force, host=host, pid=pid)
    assert sub_id is not None
    return sub_id


def finish_submission(store: Store, submission_id: int, state: str, note: str | None = None) -> None:
    """Close a submission with ``done``, ``failed`` or ``cancelled`` (unless another process ended it
    already: then its verdict stays)."""
    with store.begin() as conn:
        end_submission(conn, submission_id, state, note)
