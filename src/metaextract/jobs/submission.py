"""``submit`` / ``resubmit``: claim an experiment's jobs, run them somewhere, store every result, report.

The jobs go through the one job runner (:mod:`metaextract.jobs.runner`); where the files are read is the
executor's business: :mod:`.executors.local` reads them in extraction processes of the submitting process
itself (``--cluster local``, the default: one machine needs no Dask), :mod:`.executors.dask` sends them as
Dask tasks to a Dask LocalCluster (``--cluster dask``), an existing scheduler (``--scheduler``) or SLURM
jobs (``--cluster slurm``). Either way the submitter alone writes the database, in short transactions;
each job keeps its own run, log and state; Ctrl-C / SIGTERM cancel the
open jobs (exit 130) after storing what was read; after ``kill -9`` of the submitter, ``resubmit`` takes
the orphaned jobs over.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from metaextract.jobs.arguments import SubmitOptions
from metaextract.jobs.executors.base import Executor, SchedulerUnavailable
from metaextract.jobs.runner import EXIT_INTERRUPTED, JobRunner, Policy, sigterm_interrupts
from metaextract.result import one_line
from metaextract.store import Store
from metaextract.store.batches import has_run_jobs
from metaextract.store.bulk import bulk
from metaextract.store.experiments import find_experiment
from metaextract.store.holders import Heartbeat, SubmissionLost, check_submission, submission_heartbeat
from metaextract.store.jobs import experiment_roots, finish_submission, open_submission, retrying
from metaextract.store.models import utcnow
from metaextract.store.progress import files_of_jobs, select_jobs

__all__ = ["CLUSTERS", "EXIT_INTERRUPTED", "SchedulerUnavailable", "SubmissionFailed", "SubmitOptions", "submit"]

CLUSTERS = ("local", "dask", "slurm")


class SubmissionFailed(RuntimeError):
    """The submission stopped before its end; the message is the reason, in one line (exit 1)."""


def _lost_check(store: Store, beat: Heartbeat, sub_id: int) -> Callable[[], None]:
    """What the executors call between steps: raises :class:`SubmissionLost` (with the reason the database
    gives) once the heartbeat found the submission ended by another process."""

    def check() -> None:
        if beat.lost.is_set():
            check_submission(store, sub_id)
            raise SubmissionLost("it was ended by another process; stopping")

    return check


def submit(store: Store, experiment: int | str, opts: SubmitOptions,
           echo: Callable[[str], None] = print) -> int:
    """Run the experiment's jobs (here, or on Dask) and store every result; returns the exit code.

    0 when every file of the submitted jobs is ok, 1 when any failed, 130 when interrupted. The jobs are
    selected and the submission opened under the experiment's lock (:func:`open_submission`); from then on
    a heartbeat thread tells every host that it lives.

    Raises
    ------
    JobBusyError
        When another live submission of this experiment is running (and not ``opts.force``).
    SubmissionFailed
        When it stopped before its end: its jobs were replaced or it was taken over, the scheduler cannot
        be reached or refused the worker jobs, or no job could be claimed. Its open jobs are released
        (pending, when the scheduler failed) and the submission is recorded as failed.
    ValueError
        For an unknown ``opts.cluster``.
    """
    if opts.cluster not in CLUSTERS and not opts.scheduler:
        raise ValueError(f"unknown cluster {opts.cluster!r}: use {', '.join(CLUSTERS)}, or --scheduler ADDRESS")
    exp_id, exp_name = find_experiment(store, experiment)
    since = utcnow()  # the monitor counts the results written from now on: this submission's work
    sub_id, selected = open_submission(store, exp_id, asdict(opts),
                                       lambda conn: select_jobs(conn, exp_id, opts.mode), force=opts.force,
                                       notify=echo, hint=f"metaextract {exp_name} resubmit")
    if sub_id is None:
        any_jobs = has_run_jobs(store, exp_id)
        echo("nothing to submit: " + ("every job is done" if any_jobs else
                                      f"no run jobs; run `metaextract {exp_name} init` first"))
        return 0 if any_jobs else 1
    echo(f"submission {sub_id}: {len(selected)} job(s) of experiment {exp_name!r}")
    beat = submission_heartbeat(store, sub_id)
    run = _Submission(store, exp_id, sub_id, selected, opts, echo, since, _lost_check(store, beat, sub_id))
    try:
        beat.start()
        return run.go(exp_name)
    finally:
        beat.stop()
        # a connection lost at the very end is no reason to fail a submission that stored everything
        retrying("closing the submission", lambda: finish_submission(store, sub_id, run.state, run.note), echo)


class _Submission:
    """One submission between its opening and its closing: runs its jobs through the job runner, turns how
    it ended into a state (and a note), an exit code or :class:`SubmissionFailed`."""

    def __init__(self, store: Store, experiment_id: int, sub_id: int, selected: list[tuple[int, int]],
                 opts: SubmitOptions, echo: Callable[[str], None], since: Any, check: Callable[[], None]) -> None:
        self.store, self.experiment_id, self.sub_id, self.selected = store, experiment_id, sub_id, selected
        self.opts, self.echo, self.since, self.check = opts, echo, since, check
        self.runner: JobRunner | None = None
        self.state: str = "failed"
        self.note: str | None = None

    def go(self, name: str) -> int:
        try:
            with sigterm_interrupts():
                return self._run()
        except KeyboardInterrupt:
            self.state = "cancelled"
            self._release("cancelled", "cancelled: the submitter was interrupted", None)
            self.echo(f"submission {self.sub_id} cancelled; `metaextract {name} resubmit` finishes the work")
            return EXIT_INTERRUPTED
        except SubmissionLost as exc:
            self._fail(str(exc), None)
        except SchedulerUnavailable as exc:
            self._fail(str(exc), "pending")
        raise AssertionError("unreachable")

    def _release(self, state: str, why: str, job_state: str | None) -> None:
        if self.runner is not None:
            self.runner.release(state, why, EXIT_INTERRUPTED if state == "cancelled" else 1, job_state)

    def _fail(self, why: str, job_state: str | None) -> None:
        self.note = one_line(why, 500)
        self._release("failed", f"failed: {self.note}", job_state)
        raise SubmissionFailed(f"submission {self.sub_id} failed: {self.note}") from None

    def _executor(self, roots: tuple[str, ...]) -> Executor:
        """Where the files are read: extraction processes here (``--cluster local``), or Dask."""
        opts = self.opts
        if opts.scheduler or opts.cluster != "local":
            from metaextract.jobs.executors.dask import DaskExecutor

            total = files_of_jobs(self.store, [job_id for job_id, _ in self.selected])
            return DaskExecutor(opts, roots=roots, total_files=total, name=f"metaextract-s{self.sub_id}",
                                echo=self.echo)
        from metaextract.jobs.executors.local import LocalExecutor

        heap = opts.memory if "memory" in opts.explicit else None
        return LocalExecutor(opts.max_jobs or os.cpu_count() or 1, engine=opts.engine, timeout=opts.timeout,
                             heap_mb=heap, roots=roots, eager=True)

    def _run(self) -> int:
        from metaextract.jobs.monitor import Monitor

        shown = [job_id for job_id, _ in self.selected]  # the jobs the monitor reports

        def refused(job_id: int, number: int, why: str) -> None:
            self.echo(f"skipping job {number}: {why}")
            shown.remove(job_id)

        monitor = Monitor(self.store, self.experiment_id, shown, self.opts.depth, self.echo,
                          submission_id=self.sub_id, since=self.since)
        runner = self.runner = JobRunner(self.store, Policy(submission_id=self.sub_id, interval=self.opts.interval),
                                         echo=self.echo, refused=refused, check=self.check, report=monitor.report)
        try:
            # the processes (or a worker's one pool for the experiment) read nothing outside its folders
            executor = self._executor(experiment_roots(self.store, self.experiment_id))
            with bulk():
                runner.run(executor, self.selected)
        finally:
            monitor.close()
        if not runner.jobs:  # every job was refused (each said why): nothing was done, which is no success
            self._fail(f"none of its {len(self.selected)} job(s) could be claimed", None)
        failed = sum(t.failed for t in runner.jobs.values())
        self.state = "done"
        self.echo(f"submission {self.sub_id} done: {sum(t.ok for t in runner.jobs.values())} file(s) ok, "
                  f"{failed} failed")
        return 1 if failed else 0
