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

from sqlalchemy import and_, exists, or_, select

from .._gc import bulk
from ..experiment import resolve
from ..store import Store
from ..store.jobs import begin_submission, finish_job_run, finish_submission
from ..store.models import image_files, jobs

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
    timeout: float = 120.0
    mode: str = "submit"  # submit | resubmit | resubmit-all
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


def _select_jobs(store: Store, experiment_id: int, mode: str) -> list[tuple[int, int]]:
    q = select(jobs.c.id, jobs.c.number).where(jobs.c.experiment_id == experiment_id, jobs.c.phase == "run")
    if mode == "submit":
        q = q.where(jobs.c.state != "done")
    elif mode == "resubmit":
        bad = exists().where(and_(image_files.c.job_id == jobs.c.id, image_files.c.status != "ok"))
        q = q.where(or_(jobs.c.state != "done", bad))
    with store.connect() as conn:
        return [(int(r.id), int(r.number)) for r in conn.execute(q.order_by(jobs.c.number)).all()]


class _Interrupted(Exception):
    pass


def submit(store: Store, experiment: int | str, opts: SubmitOptions,
           echo: Callable[[str], None] = print) -> int:
    """Run the experiment's jobs (here, or on Dask) and store every result; returns the exit code.

    0 when every file of the submitted jobs is ok, 1 when any failed, 130 when interrupted.

    Raises
    ------
    JobBusyError
        When another submission of this experiment is running.
    ValueError
        For an unknown ``opts.cluster``.
    """
    if opts.cluster not in CLUSTERS and not opts.scheduler:
        raise ValueError(f"unknown cluster {opts.cluster!r}: use {', '.join(CLUSTERS)}, or --scheduler ADDRESS")
    with store.connect() as conn:
        exp = resolve(conn, experiment)
    selected = _select_jobs(store, exp.id, opts.mode)
    if not selected:
        with store.connect() as conn:
            any_jobs = conn.execute(select(jobs.c.id).where(jobs.c.experiment_id == exp.id,
                                                             jobs.c.phase == "run").limit(1)).first()
        echo("nothing to submit: " + ("every job is done" if any_jobs else
                                      f"no run jobs; run `metaextract {exp.name} init` first"))
        return 0 if any_jobs else 1
    sub_id = begin_submission(store, exp.id, asdict(opts))
    echo(f"submission {sub_id}: {len(selected)} job(s) of experiment {exp.name!r}")
    by_job: dict[int, Flight] = {}
    state = "failed"
    previous = signal.getsignal(signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: Any) -> None:
        raise _Interrupted()

    if in_main:
        signal.signal(signal.SIGTERM, on_term)
    try:
        if opts.scheduler or opts.cluster != "local":
            from .dask import run_on_dask

            with bulk():
                run_on_dask(store, exp.id, selected, sub_id, opts, by_job, echo)
        else:
            from .local import run_here

            with bulk():
                run_here(store, exp.id, selected, sub_id, opts, by_job, echo)
        failed = sum(fl.failed for fl in by_job.values())
        state = "done"
        echo(f"submission {sub_id} done: {sum(fl.ok for fl in by_job.values())} file(s) ok, {failed} failed")
        return 1 if failed else 0
    except (KeyboardInterrupt, _Interrupted):
        state = "cancelled"
        for fl in by_job.values():
            if fl.open_tasks:
                with contextlib.suppress(Exception):
                    finish_job_run(store, fl.run_id, "cancelled", EXIT_INTERRUPTED,
                                   "\n".join([*fl.log, "cancelled: the submitter was interrupted"]))
        echo(f"submission {sub_id} cancelled; `metaextract {exp.name} resubmit` finishes the work")
        return EXIT_INTERRUPTED
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        finish_submission(store, sub_id, state)
