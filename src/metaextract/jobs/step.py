"""The metaextract workflow step, as the seed had it: ``init`` cuts batches, ``run`` extracts one batch.

:class:`MetadataExtractor` is the Python API; the ``metaextract EXP ...`` commands are a thin layer over
it. The job bookkeeping it shares with the Dask submitter (:func:`begin_job_run`, :func:`job_files`,
:func:`record_results`, :func:`finish_job_run`, submissions) lives in :mod:`metaextract.store.jobs`
and is re-exported here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from metaextract.experiment import NotFoundError
from metaextract.extraction.limits import DEFAULT_TIMEOUT
from metaextract.jobs.arguments import NO_COLLECT, MetaextractBatchArguments, MetaextractSubmissionArguments
from metaextract.jobs.runner import EXIT_INTERRUPTED, ONE_JOB, JobRunner, sigterm_interrupts
from metaextract.result import Result, one_line
from metaextract.store import Store, StoreHolder, batches, open_store, reports
from metaextract.store.bulk import bulk
from metaextract.store.experiments import find_experiment
from metaextract.store.holders import job_heartbeat
from metaextract.store.jobs import (
    JobBusyError,
    begin_job_run,
    begin_submission,
    experiment_roots,
    finish_job_run,
    finish_submission,
    job_files,
    record_results,
    this_host,
)
from metaextract.store.models import utcnow

__all__ = [
    "JobBusyError", "JobSummary", "MetadataExtractor", "MetaextractBatchArguments",
    "MetaextractSubmissionArguments", "NotFoundError", "begin_job_run", "begin_submission",
    "finish_job_run", "finish_submission", "job_files", "record_results",
]


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


class MetadataExtractor(StoreHolder):
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
                 engine: str = "auto", timeout: float = DEFAULT_TIMEOUT) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, not {workers!r}")
        self._own_store = not isinstance(db, Store)
        self.store = db if isinstance(db, Store) else open_store(db)
        try:
            self.experiment_id, self.experiment_name = find_experiment(self.store, experiment)
        except Exception:
            self.close()
            raise
        self.workers, self.engine, self.timeout = workers, engine, timeout


    # -- batches -------------------------------------------------------------------------------------------
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
        yield from batches.run_batches(self.store, self.experiment_id, args.batch_size)

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
            batches.take_experiment(conn, self.experiment_id, self.experiment_name, "init", force, notify)
            n_jobs, n_files = batches.replace_run_jobs(conn, self.experiment_id, self.experiment_name,
                                                       args.batch_size)
            log = (f"init: {n_jobs} run jobs of at most {args.batch_size} files for {n_files} image files "
                   f"({time.perf_counter() - t0:.2f} s)\n")
            batches.record_init(conn, self.experiment_id, {"id": 1, "batch_size": args.batch_size,
                                                           "run_jobs": n_jobs, "image_files": n_files},
                                this_host(), os.getpid(), utcnow(), log)
        return n_jobs

    # -- running -------------------------------------------------------------------------------------------
    def job_id(self, number: int, phase: str = "run") -> int:
        """The database id of job ``number`` of ``phase``."""
        if phase == "collect":
            raise ValueError(NO_COLLECT)
        jid = batches.job_id(self.store, self.experiment_id, phase, number)
        if jid is None:
            raise NotFoundError(f"{self.experiment_name!r} has no {phase} job {number}: {self._jobs_held(phase)}")
        return jid

    def _jobs_held(self, phase: str) -> str:
        """Which ``phase`` jobs exist, as ranges (``"its run jobs are 1-2"``), or what to run first."""
        numbers = batches.job_numbers(self.store, self.experiment_id, phase)
        if not numbers:
            return "it has none (run init first)" if phase == "run" else "it has none"
        return f"its {phase} jobs are {_ranges(numbers)}"

    def run_job(self, batch: dict[str, Any] | int, assume_clean_state: bool = False, *, pool: Any = None,
                on_result: Callable[[Result], None] | None = None) -> JobSummary:
        """Run one job here with the worker pool, storing every file's result as it finishes.

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
        number = int(batch["id"] if isinstance(batch, dict) else batch)
        job_id = self.job_id(number)
        from metaextract.jobs.executors.local import LocalExecutor  # the extraction pool, when a job runs

        def busy(_job_id: int, _number: int, why: str) -> None:
            raise JobBusyError(why)

        runner = JobRunner(self.store, replace(ONE_JOB, clear_first=not assume_clean_state), refused=busy,
                           on_read=on_result)
        executor = LocalExecutor(self.workers, engine=self.engine, timeout=self.timeout, pool=pool, who="this run",
                                 roots=experiment_roots(self.store, self.experiment_id))
        beat = job_heartbeat(self.store, job_id)
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
            batches.take_experiment(conn, self.experiment_id, self.experiment_name, "cleanup", force, notify)
            return batches.reset_results(conn, self.experiment_id)

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
