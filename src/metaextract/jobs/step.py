"""The metaextract workflow step, as the seed had it: ``init`` cuts batches, ``run`` extracts one batch.

:class:`MetadataExtractor` is the Python API; the ``metaextract EXP ...`` commands are a thin layer over
it. :meth:`MetadataExtractor.run_job` runs a job through the one job runner (:mod:`metaextract.jobs.runner`)
as ``submit`` does; the job bookkeeping (:func:`begin_job_run`, :func:`job_files`, :func:`record_results`,
:func:`finish_job_run`, submissions) lives in :mod:`metaextract.store.jobs` and is re-exported here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, column, delete, or_, select, table, text, update

from metaextract.experiment import NotFoundError, resolve
from metaextract.jobs.arguments import NO_COLLECT, MetaextractBatchArguments, MetaextractSubmissionArguments
from metaextract.jobs.runner import EXIT_INTERRUPTED, ONE_JOB, JobRunner, sigterm_interrupts
from metaextract.result import Result, one_line
from metaextract.store import Store, open_store, reports
from metaextract.store.bulk import bulk
from metaextract.store.holders import Heartbeat, bump_generation
from metaextract.store.jobs import (
    RESULT_COLUMNS,
    JobBusyError,
    begin_job_run,
    begin_submission,
    clear_results,
    experiment_roots,
    finish_job_run,
    finish_submission,
    hold_experiment,
    job_files,
    record_results,
    this_host,
)
from metaextract.store.models import image_files, job_runs, jobs, utcnow

__all__ = [
    "JobBusyError", "JobSummary", "MetadataExtractor", "MetaextractBatchArguments",
    "MetaextractSubmissionArguments", "NotFoundError", "begin_job_run", "begin_submission",
    "finish_job_run", "finish_submission", "job_files", "record_results",
]

_PAGE = 5000
_JOB_CHUNK = 1000

_MAP = "metaextract_init_batches"  # a temporary table: file id -> job number, during init


def _ranges(numbers: list[int]) -> str:
    """Sorted numbers as ``"1-3, 7"``."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


@dataclass
class JobSummary:
    """How one run of a job went."""

    job: int
    state: str
    files: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.state == "done" else 1

    def __str__(self) -> str:
        return (f"job {self.job}: {self.state}; {self.ok} of {self.files} files ok, {self.failed} failed "
                f"({self.seconds:.1f} s)")


class MetadataExtractor:
    """The metaextract step of one experiment.

    Parameters
    ----------
    experiment : int or str
        The experiment: an ``int`` or ``"#3"`` is an id, any other text its name (``"3"`` is a name).
    db : str or Store, optional
        Database URL (default ``METAEXTRACT_DB``, else the user data directory), or an open Store.
    workers : int, optional
        Extraction processes for :meth:`run_job` (default: CPUs, at most the batch's files).
    engine : str
        ``"auto"``, ``"bioformats"`` or another registered engine.
    timeout : float
        Seconds per file before its process is killed (status ``timeout``).

    Raises
    ------
    NotFoundError
        For an unknown experiment.
    ValueError
        For ``workers`` that is not a positive integer.
    """

    has_collect_phase = False
    #: Results per transaction in :meth:`run_job` (1: every finished file is stored at once).
    write_chunk = 1

    def __init__(self, experiment: int | str, *, db: str | Store | None = None, workers: int | None = None,
                 engine: str = "auto", timeout: float = 120.0) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, not {workers!r}")
        self._own_store = not isinstance(db, Store)
        self.store = db if isinstance(db, Store) else open_store(db)
        try:
            with self.store.connect() as conn:
                row = resolve(conn, experiment)
        except Exception:
            self.close()
            raise
        self.experiment_id: int = int(row.id)
        self.experiment_name: str = str(row.name)
        self.workers, self.engine, self.timeout = workers, engine, timeout

    def close(self) -> None:
        if self._own_store:
            self.store.close()

    def __enter__(self) -> MetadataExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- batches -------------------------------------------------------------------------------------------
    def _iter_batches(self, conn: Connection | None, batch_size: int) -> Iterator[dict[str, Any]]:
        """Batches in job order, read a page at a time (on ``conn``, or each page on a new connection)."""

        def query(stmt: Any) -> list[Any]:
            if conn is not None:
                return list(conn.execute(stmt).scalars().all())
            with self.store.connect() as c:
                return list(c.execute(stmt).scalars().all())

        number = 0
        acq_ids = query(select(image_files.c.acquisition_id).distinct()
                        .where(image_files.c.experiment_id == self.experiment_id)
                        .order_by(image_files.c.acquisition_id))
        for acq in acq_ids:
            last, current = 0, []
            while ids := query(select(image_files.c.id)
                               .where(image_files.c.acquisition_id == acq, image_files.c.id > last)
                               .order_by(image_files.c.id).limit(_PAGE)):
                last = ids[-1]
                for i in ids:
                    current.append(int(i))
                    if len(current) == batch_size:
                        number += 1
                        yield {"id": number, "acquisition_id": int(acq), "image_file_ids": current}
                        current = []
            if current:
                number += 1
                yield {"id": number, "acquisition_id": int(acq), "image_file_ids": current}

    def create_run_batches(self, args: MetaextractBatchArguments | None = None) -> Iterator[dict[str, Any]]:
        """Yield the run jobs' descriptions, exactly as :meth:`init` stores them.

        Parameters
        ----------
        args : MetaextractBatchArguments, optional
            Default: batches of 100.

        Yields
        ------
        dict
            ``{"id": job number (1..N), "acquisition_id": ..., "image_file_ids": [...]}``.
        """
        args = args or MetaextractBatchArguments()
        yield from self._iter_batches(None, args.batch_size)

    def _hold(self, conn: Connection, command: str, force: bool, notify: Callable[[str], None] | None) -> None:
        """Take the experiment for ``command`` (``init``, ``cleanup``) in this transaction: its lock, no live
        submission or job left (dead ones are ended; live ones too with ``force``), a new generation (a
        submission that started before stops at its next claim)."""
        hold_experiment(conn, self.experiment_id, self.experiment_name, command, force=force, notify=notify)
        bump_generation(conn, self.experiment_id)

    def _refuse_if_running(self, conn: Connection, what: str) -> None:
        row = conn.execute(select(jobs).where(jobs.c.experiment_id == self.experiment_id,
                                              jobs.c.state == "running").limit(1)).one_or_none()
        if row is not None:
            raise JobBusyError(f"{row.phase} job {row.number} of {self.experiment_name!r} is running "
                               f"(host {row.host}, pid {row.pid}); not {what} while it runs")

    def _store_jobs(self, conn: Connection, batch_size: int) -> tuple[int, int]:
        """Number every file's batch in the database (table ``_MAP``) and insert one run job per batch.

        The numbering is :meth:`create_run_batches`': acquisitions in id order, each cut into runs of
        ``batch_size`` files in id order, jobs numbered 1..N across them.
        """
        conn.execute(text(
            f"CREATE TEMPORARY TABLE {_MAP} AS SELECT id, acquisition_id, "
            "dense_rank() OVER (ORDER BY acquisition_id, (rn - 1) / :size) AS number FROM ("
            "SELECT id, acquisition_id, row_number() OVER (PARTITION BY acquisition_id ORDER BY id) AS rn "
            "FROM image_files WHERE experiment_id = :exp) AS numbered"),
            {"size": batch_size, "exp": self.experiment_id})
        now = utcnow()
        n_jobs = n_files = 0
        rows: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None

        def add(batch: dict[str, Any]) -> None:
            rows.append({"experiment_id": self.experiment_id, "phase": "run", "number": batch["id"],
                         "batch": batch, "state": "pending", "updated": now})
            if len(rows) == _JOB_CHUNK:
                conn.execute(jobs.insert(), rows)
                rows.clear()

        stream = conn.execute(text(f"SELECT number, acquisition_id, id FROM {_MAP} ORDER BY number, id"),
                              execution_options={"stream_results": True, "yield_per": _PAGE})
        for number, acq, file_id in stream:
            if current is None or current["id"] != number:
                if current is not None:
                    add(current)
                current = {"id": int(number), "acquisition_id": int(acq), "image_file_ids": []}
                n_jobs += 1
            current["image_file_ids"].append(int(file_id))
            n_files += 1
        if current is not None:
            add(current)
        if rows:
            conn.execute(jobs.insert(), rows)
        return n_jobs, n_files

    def init(self, args: MetaextractBatchArguments | None = None, *, force: bool = False,
             notify: Callable[[str], None] | None = None) -> int:
        """Delete previous jobs and results, then store one run job per batch; returns how many.

        Decided under the experiment's lock (see :mod:`metaextract.store.holders`): a submission that
        started before either holds the experiment (refused) or stops at its next claim.

        Parameters
        ----------
        force : bool
            Take over a submission or job that looks alive (the operator knows it is dead).
        notify : callable, optional
            Told of each dead (or overridden) submission and job that is ended.

        Raises
        ------
        JobBusyError
            When a live submission or job holds the experiment (and not ``force``).
        """
        args = args or MetaextractBatchArguments()
        t0 = time.perf_counter()
        with bulk(), self.store.begin() as conn:
            self._hold(conn, "init", force, notify)
            # The old jobs step aside (negative numbers) so the new ones can take 1..N; one UPDATE then
            # points every file at its new job and forgets its result, and the old jobs, no longer
            # referred to, are deleted. Each file row is written once, whatever the previous state.
            mine = jobs.c.experiment_id == self.experiment_id
            conn.execute(update(jobs).where(mine, jobs.c.state != "running", jobs.c.number > 0)
                         .values(number=-jobs.c.number))
            self._refuse_if_running(conn, "initialising")  # none: claims wait for the lock (safety net)
            try:
                n_jobs, n_files = self._store_jobs(conn, args.batch_size)
                if conn.dialect.name == "postgresql":  # fresh statistics, so the planner joins by hash
                    conn.exec_driver_sql(f"ANALYZE {_MAP}, {jobs.name}")
                cleared: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
                cleared["status"] = "pending"
                batch_of = table(_MAP, column("id"), column("number"))
                conn.execute(update(image_files).values(job_id=jobs.c.id, **cleared).where(
                    image_files.c.id == batch_of.c.id, mine, jobs.c.phase == "run",
                    jobs.c.number == batch_of.c.number))
            finally:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_MAP}")
            # files of no batch (none, unless the registration changed meanwhile) keep no stale result
            clear_results(conn, image_files.c.experiment_id == self.experiment_id,
                          or_(image_files.c.job_id.is_(None), image_files.c.job_id.in_(
                              select(jobs.c.id).where(mine, jobs.c.number < 0))), job_id=None)
            conn.execute(delete(jobs).where(mine, jobs.c.number < 0))
            now = utcnow()
            log = (f"init: {n_jobs} run jobs of at most {args.batch_size} files for {n_files} image files "
                   f"({time.perf_counter() - t0:.2f} s)\n")
            init_id = conn.execute(jobs.insert().values(
                experiment_id=self.experiment_id, phase="init", number=1, state="done", updated=now,
                batch={"id": 1, "batch_size": args.batch_size, "run_jobs": n_jobs, "image_files": n_files})
                .returning(jobs.c.id)).scalar_one()
            conn.execute(job_runs.insert().values(job_id=init_id, attempt=1, host=this_host(), pid=os.getpid(),
                                                  started=now, ended=utcnow(), state="done", exit_code=0,
                                                  log=log))
        return n_jobs

    # -- running -------------------------------------------------------------------------------------------
    def job_id(self, number: int, phase: str = "run") -> int:
        """The database id of job ``number`` of ``phase``."""
        if phase == "collect":
            raise ValueError(NO_COLLECT)
        with self.store.connect() as conn:
            jid = conn.execute(select(jobs.c.id).where(jobs.c.experiment_id == self.experiment_id,
                                                       jobs.c.phase == phase, jobs.c.number == number)
                               ).scalar_one_or_none()
        if jid is None:
            raise NotFoundError(f"{self.experiment_name!r} has no {phase} job {number}: {self._jobs_held(phase)}")
        return int(jid)

    def _jobs_held(self, phase: str) -> str:
        """Which ``phase`` jobs exist, as ranges (``"its run jobs are 1-2"``), or what to run first."""
        with self.store.connect() as conn:
            numbers = [int(n) for n in conn.execute(
                select(jobs.c.number).where(jobs.c.experiment_id == self.experiment_id, jobs.c.phase == phase)
                .order_by(jobs.c.number)).scalars()]
        if not numbers:
            return "it has none (run init first)" if phase == "run" else "it has none"
        return f"its {phase} jobs are {_ranges(numbers)}"

    def run_job(self, batch: dict[str, Any] | int, assume_clean_state: bool = False, *, pool: Any = None,
                on_result: Callable[[Result], None] | None = None) -> JobSummary:
        """Run one job here with the worker pool, storing every file's result as it finishes.

        It goes through the job runner (:mod:`metaextract.jobs.runner`) as ``submit`` does, with each file
        written at once and a failing file failing the job (:data:`~metaextract.jobs.runner.ONE_JOB`).

        Parameters
        ----------
        batch : dict or int
            A description from :meth:`create_run_batches` (its ``"id"`` is the job number) or the number.
        assume_clean_state : bool
            Keep the job's earlier results until overwritten instead of clearing them first.
        pool : ExtractionPool, optional
            An open pool to use (default: a new one for this job).
        on_result : callable, optional
            Called with each Result after it is stored.

        Returns
        -------
        JobSummary
            ``exit_code`` 0 when every file is ok, else 1.

        Raises
        ------
        JobBusyError
            When the job is already running elsewhere.
        NotFoundError
            When there is no such job.
        """
        from metaextract.jobs.executors.local import LocalExecutor  # the extraction pool, when a job runs

        number = int(batch["id"] if isinstance(batch, dict) else batch)
        job_id = self.job_id(number)

        def busy(_job_id: int, _number: int, why: str) -> None:
            raise JobBusyError(why)

        runner = JobRunner(self.store, replace(ONE_JOB, clear_first=not assume_clean_state), refused=busy,
                           on_read=on_result)
        executor = LocalExecutor(self.workers, engine=self.engine, timeout=self.timeout, pool=pool, who="this run",
                                 roots=experiment_roots(self.store, self.experiment_id))
        beat = Heartbeat(self.store, jobs, job_id, jobs.c.host == this_host(), jobs.c.pid == os.getpid())
        try:
            with sigterm_interrupts(), beat:  # any host tells from the job's heartbeat whether this run lives
                runner.run(executor, [(job_id, number)])
        except BaseException as exc:
            state = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
            runner.release(state, f"{state}: {one_line(f'{type(exc).__name__}: {exc}')}",
                           EXIT_INTERRUPTED if state == "cancelled" else 2)
            raise
        t = runner.jobs[job_id]
        return JobSummary(job=number, state=t.state, files=t.files, ok=t.ok, failed=t.failed, seconds=t.seconds,
                          counts=dict(t.counts))

    def delete_previous_job_output(self, *, force: bool = False,
                                   notify: Callable[[str], None] | None = None) -> int:
        """Clear every extracted result of the experiment in one transaction; returns how many files.

        Run jobs go back to ``pending``; their run history stays. ``force`` and ``notify`` as for
        :meth:`init`.

        Raises
        ------
        JobBusyError
            When a live submission or job holds the experiment (and not ``force``).
        """
        with self.store.begin() as conn:
            self._hold(conn, "cleanup", force, notify)
            n = clear_results(conn, image_files.c.experiment_id == self.experiment_id,
                              image_files.c.status != "pending")
            conn.execute(update(jobs).where(jobs.c.experiment_id == self.experiment_id, jobs.c.phase == "run")
                         .values(state="pending", updated=utcnow()))
        return n

    def collect_job_output(self, *args: Any, **kwargs: Any) -> None:
        """Not available: :data:`NO_COLLECT`.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(NO_COLLECT)

    # -- reports -------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Per job state and file counts, and totals (see :func:`metaextract.store.reports.status`)."""
        return reports.status(self.store, self.experiment_id)

    def info(self, number: int = 1, phase: str = "run") -> dict[str, Any]:
        """A job's description: its files, state and runs (see :func:`metaextract.store.reports.info`)."""
        if phase == "collect":
            raise ValueError(NO_COLLECT)
        return reports.info(self.store, self.job_id(number, phase))

    def log(self, number: int = 1, phase: str = "run") -> str:
        """The newest run's log of a job (per-file errors included).

        Raises
        ------
        NotFoundError
            When the job does not exist or has not run yet.
        """
        text = reports.newest_log(self.store, self.job_id(number, phase))
        if text is None:
            raise NotFoundError(f"{phase} job {number} of {self.experiment_name!r} has not run yet")
        return text
