"""``submit`` / ``resubmit``: claim an experiment's jobs, run them somewhere, store every result, report.

Where the files are read is the executor's business: :mod:`.local` reads them in extraction processes of
the submitting process itself (``--cluster local``, the default: one machine needs no Dask), :mod:`.dask`
sends them as Dask tasks to a Dask LocalCluster (``--cluster dask``), an existing scheduler
(``--scheduler``) or SLURM jobs (``--cluster slurm``). Either way the submitter alone writes the
database, in short transactions; each job keeps its own run, log and state; Ctrl-C / SIGTERM cancel the
open jobs (exit 130) after storing what was read; after ``kill -9`` of the submitter, ``resubmit`` takes
the orphaned jobs over.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from metaextract.extraction.limits import DEFAULT_TIMEOUT
from metaextract.result import one_line
from metaextract.store import Store
from metaextract.store.batches import has_run_jobs
from metaextract.store.bulk import bulk
from metaextract.store.experiments import find_experiment
from metaextract.store.holders import Heartbeat, SubmissionLost, check_submission, submission_heartbeat
from metaextract.store.jobs import finish_job_run, finish_submission, open_submission
from metaextract.store.models import utcnow
from metaextract.store.progress import select_jobs

EXIT_INTERRUPTED = 130
CLAIM_CHUNK = 100  # jobs claimed (and their files listed) per transaction before they are sent
CLUSTERS = ("local", "dask", "slurm")


@dataclass
class SubmitOptions:
    """What ``submit``/``resubmit`` were asked for (stored with the submission)."""

    cores: int = 1  # per SLURM job
    memory: int = 4096  # MB per SLURM job (and per Dask worker, or JVM heap per local process, when given)
    duration: str = "06:00:00"
    queue: str | None = None
    interval: float = 10.0
    depth: int = 1
    scheduler: str | None = None
    cluster: str = "local"  # local (extraction processes here, no Dask) | dask (a Dask LocalCluster) | slurm
    max_jobs: int | None = None
    engine: str = "auto"
    timeout: float = DEFAULT_TIMEOUT
    mode: str = "submit"  # submit | resubmit | resubmit-all
    force: bool = False  # take over a running submission that looks alive (resubmit --force)
    explicit: list[str] = field(default_factory=list)  # options the user gave (not defaults)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Flight:
    """A claimed job on its way: its run, log lines and counts so far."""

    job_id: int
    number: int
    run_id: int
    log: list[str] = field(default_factory=list)
    open_tasks: int = 0  # Dask tasks (or, run here, files) not answered yet
    ok: int = 0
    failed: int = 0
    host: str | None = None


class SubmissionFailed(RuntimeError):
    """The submission stopped before its end; the message is the reason, in one line (exit 1)."""


class SchedulerUnavailable(RuntimeError):
    """The Dask scheduler cannot be reached, or the batch system refused the worker jobs."""


class _Interrupted(Exception):
    pass


def _lost_check(store: Store, beat: Heartbeat, sub_id: int) -> Callable[[], None]:
    """What the executors call between steps: raises :class:`SubmissionLost` (with the reason the database
    gives) once the heartbeat found the submission ended by another process."""

    def check() -> None:
        if beat.lost.is_set():
            check_submission(store, sub_id)
            raise SubmissionLost("it was ended by another process; stopping")

    return check


def _release(store: Store, by_job: dict[int, Flight], state: str, job_state: str | None, why: str) -> None:
    """Close the runs of the jobs still open (``state``); their jobs go to ``job_state`` (default: the
    same). A run another process ended already is left as it is."""
    for fl in by_job.values():
        if fl.open_tasks:
            with contextlib.suppress(Exception):
                finish_job_run(store, fl.run_id, state, EXIT_INTERRUPTED if state == "cancelled" else 1,
                               "\n".join([*fl.log, why]), job_state=job_state)


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
        finish_submission(store, sub_id, run.state, run.note)


class _Submission:
    """One submission between its opening and its closing: runs the executor, turns how it ended into a
    state (and a note), an exit code or :class:`SubmissionFailed`."""

    def __init__(self, store: Store, experiment_id: int, sub_id: int, selected: list[tuple[int, int]],
                 opts: SubmitOptions, echo: Callable[[str], None], since: Any, check: Callable[[], None]) -> None:
        self.store, self.experiment_id, self.sub_id, self.selected = store, experiment_id, sub_id, selected
        self.opts, self.echo, self.since, self.check = opts, echo, since, check
        self.by_job: dict[int, Flight] = {}
        self.state: str = "failed"
        self.note: str | None = None

    def go(self, name: str) -> int:
        previous = signal.getsignal(signal.SIGTERM)
        in_main = threading.current_thread() is threading.main_thread()

        def on_term(signum: int, frame: Any) -> None:
            raise _Interrupted()

        if in_main:
            signal.signal(signal.SIGTERM, on_term)
        try:
            return self._run(name)
        except (KeyboardInterrupt, _Interrupted):
            self.state = "cancelled"
            _release(self.store, self.by_job, "cancelled", None, "cancelled: the submitter was interrupted")
            self.echo(f"submission {self.sub_id} cancelled; `metaextract {name} resubmit` finishes the work")
            return EXIT_INTERRUPTED
        except SubmissionLost as exc:
            self._fail(str(exc), None)
        except SchedulerUnavailable as exc:
            self._fail(str(exc), "pending")
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
        raise AssertionError("unreachable")

    def _fail(self, why: str, job_state: str | None) -> None:
        self.note = one_line(why, 500)
        _release(self.store, self.by_job, "failed", job_state, f"failed: {self.note}")
        raise SubmissionFailed(f"submission {self.sub_id} failed: {self.note}") from None

    def _run(self, name: str) -> int:
        opts, by_job = self.opts, self.by_job
        args = (self.store, self.experiment_id, self.selected, self.sub_id, opts, by_job, self.echo)
        if opts.scheduler or opts.cluster != "local":
            from metaextract.jobs.executors.dask import run_on_dask

            with bulk():
                run_on_dask(*args, since=self.since, check=self.check)
        else:
            from metaextract.jobs.executors.local import run_here

            with bulk():
                run_here(*args, since=self.since, check=self.check)
        if not by_job:  # every job was refused (each said why): nothing was done, which is no success
            self._fail(f"none of its {len(self.selected)} job(s) could be claimed", None)
        failed = sum(fl.failed for fl in by_job.values())
        self.state = "done"
        self.echo(f"submission {self.sub_id} done: {sum(fl.ok for fl in by_job.values())} file(s) ok, "
                  f"{failed} failed")
        return 1 if failed else 0
