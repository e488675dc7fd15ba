"""Run an experiment's jobs on Dask: a Dask LocalCluster, an existing scheduler, or SLURM (dask-jobqueue).

Jobs travel as Dask tasks (:func:`run_batch`), whole jobs put together up to 1,000 files a task while
every worker still gets several tasks (a task costs the scheduler, client and worker ~10 ms of CPU); a
Dask worker keeps one extraction pool (and so one JVM) for every task it runs. Each job keeps its own
run, log and state. Results travel back to the submitter, which alone writes the database, in short
transactions as each job finishes: SQLite stays safe even with remote workers.

Faults: a worker lost mid-job → Dask runs the task again elsewhere (results are keyed by image file, so
nothing is stored twice); a job whose tasks keep killing workers (``KilledWorker``) is split into one
task per file, and a file whose own task is given up too (Dask also gives up the tasks that were merely
queued on a dying worker) is read once more alone, in an extraction process of the submitter, whose
verdict is recorded. Interruptions and ``kill -9`` of the submitter: see :mod:`.submission`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from metaextract.jobs.executors.task import run_batch
from metaextract.jobs.submission import (
    CLAIM_CHUNK,
    EXIT_INTERRUPTED,
    Flight,
    SchedulerUnavailable,
    SubmitOptions,
    submit,
)
from metaextract.result import Result, one_line
from metaextract.store import Store
from metaextract.store.jobs import begin_job_runs, experiment_roots, jobs_files, store_completed
from metaextract.store.progress import files_of_jobs

__all__ = ["EXIT_INTERRUPTED", "SubmitOptions", "dask_client", "run_on_dask", "slurm_cluster", "submit"]

STORE_CHUNK = 32  # finished tasks stored per transaction at most
BUNDLE_FILES = 1000  # whole jobs are sent together in one Dask task up to this many files ...
TASKS_PER_WORKER = 4  # ... as long as each worker still gets this many tasks
CONNECT_TIMEOUT = 10  # seconds to reach a --scheduler before the submission gives up (nothing claimed yet)


# -- cluster ---------------------------------------------------------------------------------------------
def slurm_cluster(opts: SubmitOptions) -> Any:
    """dask-jobqueue's SLURMCluster with our options as each SLURM job's cores, memory and walltime.

    ``--queue`` names the partition; otherwise it, the account and the network interface come from
    dask-jobqueue's configuration
    (e.g. ``DASK_JOBQUEUE__SLURM__QUEUE``, ``DASK_JOBQUEUE__SLURM__INTERFACE``). The job asks SLURM for
    ``--mem={memory}M`` as given (dask-jobqueue alone rounds it up to whole GiB, e.g. 1500 → 2G); SLURM's
    MiB are never less than the Dask workers' limit of ``memory`` MB.
    """
    from dask_jobqueue.slurm import SLURMCluster

    cores, memory = opts.cores, opts.memory
    extra: dict[str, Any] = {"queue": opts.queue} if opts.queue else {}
    return SLURMCluster(cores=cores, processes=cores, memory=f"{memory}MB", job_mem=f"{memory}M",
                        walltime=opts.duration, scheduler_options={"dashboard_address": "127.0.0.1:0"},
                        job_name="metaextract", **extra)


def _submit_slurm_jobs(cluster: Any, n: int) -> None:
    """Ask SLURM for ``n`` worker jobs now and wait for sbatch's answers.

    ``cluster.scale`` would only schedule the sbatch calls on the cluster's event loop, where a refusal
    is logged as a traceback and never reaches us (the submission would then wait for ever for workers).
    Here the same worker specs are added and the cluster's correction is awaited, so a failing sbatch
    raises :class:`SchedulerUnavailable` with sbatch's own error line, before any job is claimed.
    """
    for _ in range(n):
        cluster.worker_spec.update(cluster.new_worker_spec())
    try:
        cluster.sync(cluster._correct_state)
    except Exception as exc:  # noqa: BLE001 - whatever sbatch or dask-jobqueue raised is the reason
        text = str(exc)
        said = [ln.strip() for ln in text.partition("stderr:")[2].splitlines() if ln.strip()]
        raise SchedulerUnavailable("SLURM refused the Dask worker jobs: "
                                   + one_line(said[0] if said else f"{type(exc).__name__}: {text}", 300)) from None


def _close_refused(cluster: Any) -> None:
    """Close a cluster whose worker jobs SLURM refused: those never started, so they are marked failed
    (closing insists that every worker it created has ended; otherwise it stays "closing" and Dask's own
    exit hook waits on it)."""
    from distributed.core import Status

    for job in list(cluster.workers.values()):
        if job.status == Status.created:
            job.status = Status.failed
    cluster.worker_spec.clear()
    with contextlib.suppress(Exception):
        cluster.close()


def _connect(address: str) -> Any:
    """A client of the scheduler at ``address``, or :class:`SchedulerUnavailable` within
    :data:`CONNECT_TIMEOUT` seconds."""
    from distributed import Client

    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT}s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise SchedulerUnavailable(f"cannot reach the Dask scheduler {address}: "
                                   f"{one_line(str(exc) or type(exc).__name__, 300)}") from None


@contextlib.contextmanager
def dask_client(opts: SubmitOptions) -> Iterator[Any]:
    """A Dask client for the chosen place: an existing scheduler, SLURM, or a local cluster.

    Raises
    ------
    SchedulerUnavailable
        When the scheduler cannot be reached or SLURM refuses the worker jobs.
    """
    import logging

    from distributed import Client, LocalCluster

    cluster: Any = None
    if opts.scheduler:
        client = _connect(opts.scheduler)
    elif opts.cluster == "slurm":
        cluster = slurm_cluster(opts)
        try:
            _submit_slurm_jobs(cluster, opts.max_jobs or 1)
        except SchedulerUnavailable:
            _close_refused(cluster)
            raise
        client = Client(cluster)
    elif opts.cluster == "dask":
        n = opts.max_jobs or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               memory_limit=f"{opts.memory}MB" if "memory" in opts.explicit else "auto",
                               dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        raise ValueError(f"unknown Dask cluster {opts.cluster!r}: use dask or slurm, or --scheduler ADDRESS")
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


# -- the submitter --------------------------------------------------------------------------------------
_Part = tuple[Flight, list[tuple[int, str, str]]]  # a job and its files, in a Dask task


def run_on_dask(store: Store, experiment_id: int, selected: list[tuple[int, int]], sub_id: int,
                opts: SubmitOptions, by_job: dict[int, Flight], echo: Callable[[str], None], *,
                since: Any = None, check: Callable[[], None] = lambda: None) -> None:
    """Claim the ``selected`` jobs, send them as Dask tasks, store each task's results as it finishes and
    report progress (at once, every ``opts.interval`` seconds and at the end) until every job is closed.
    Each claimed job goes into ``by_job`` (the caller cancels the open ones when interrupted). The cluster
    or scheduler is reached before any job is claimed (:class:`SchedulerUnavailable` otherwise); ``check``
    is called between steps and raises when the submission must stop."""
    from metaextract.jobs.monitor import Monitor

    tasks: dict[str, list[_Part]] = {}
    stop_pump = threading.Event()
    roots = experiment_roots(store, experiment_id)  # a worker's one pool for the experiment reads only these
    shown = [job_id for job_id, _ in selected]
    monitor = Monitor(store, experiment_id, shown, opts.depth, echo, submission_id=sub_id, since=since)
    monitor.report()
    try:
        with dask_client(opts) as client:
            check()
            if client.dashboard_link:
                echo(f"Dask dashboard: {client.dashboard_link}")
            from distributed import as_completed

            completed = as_completed()
            size = _bundle_size(client, store, [job_id for job_id, _ in selected], opts)
            bundle: list[_Part] = []

            def send(parts: list[_Part]) -> None:
                files = [f for _, part_files in parts for f in part_files]
                first = parts[0][0]
                key = f"metaextract-s{sub_id}-j{first.job_id}" + (f"-n{len(parts)}" if len(parts) > 1 else "")
                fut = client.submit(run_batch, first.job_id, files, opts.engine, opts.timeout, roots, key=key,
                                    pure=False)
                tasks[fut.key] = parts
                for fl, _ in parts:
                    fl.open_tasks += 1
                completed.add(fut)

            for start in range(0, len(selected), CLAIM_CHUNK):  # claimed, listed and sent a chunk at a time
                chunk = selected[start:start + CLAIM_CHUNK]
                runs, refused = begin_job_runs(store, [job_id for job_id, _ in chunk], submission_id=sub_id)
                listed = jobs_files(store, list(runs))
                for job_id, number in chunk:
                    if job_id in refused:
                        echo(f"skipping job {number}: {refused[job_id]}")
                        shown.remove(job_id)
                        continue
                    fl = Flight(job_id, number, runs[job_id])
                    by_job[job_id] = fl
                    bundle.append((fl, listed.get(job_id, [])))
                    if sum(len(files) for _, files in bundle) >= size:
                        send(bundle)
                        bundle = []
            if bundle:
                send(bundle)
            done_q: queue.Queue[Any] = queue.Queue()

            def pump() -> None:
                # as_completed stops as soon as it holds no future; the retries of a task that killed its
                # workers are added to it only after that task came out, so iterate again until the end
                while not stop_pump.is_set():
                    for f in completed:
                        done_q.put(f)
                    stop_pump.wait(0.05)

            threading.Thread(target=pump, daemon=True, name="metaextract-completions").start()
            remaining = sum(1 for fl in by_job.values() if fl.open_tasks)
            next_report = time.monotonic() + opts.interval
            while remaining:
                check()
                try:
                    done = [done_q.get(timeout=max(0.05, next_report - time.monotonic()))]
                except queue.Empty:
                    done = []
                while done and len(done) < STORE_CHUNK:  # whatever else has finished meanwhile, stored with it
                    try:
                        done.append(done_q.get_nowait())
                    except queue.Empty:
                        break
                done = [f for f in done if f is not None]
                if done:
                    remaining -= _handle(client, store, done, tasks, completed, opts, roots, sub_id)
                if time.monotonic() >= next_report and remaining:
                    monitor.report()
                    next_report = time.monotonic() + opts.interval
            monitor.report()
    finally:
        stop_pump.set()
        monitor.close()


def _bundle_size(client: Any, store: Store, job_ids: list[int], opts: SubmitOptions) -> int:
    """Files per Dask task: whole jobs are put together up to :data:`BUNDLE_FILES` files (a task costs
    the scheduler, the client and a worker about 10 ms of CPU, as much as 20 small files), but into at
    least :data:`TASKS_PER_WORKER` tasks per worker, so the work still spreads and the last ones are short."""
    total = files_of_jobs(store, job_ids)
    try:
        workers = len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - a scheduler that cannot say: assume one
        workers = 0
    if opts.cluster == "slurm" and not opts.scheduler:
        workers = max(workers, (opts.max_jobs or 1) * opts.cores)
    return max(1, min(BUNDLE_FILES, total // (TASKS_PER_WORKER * max(workers, 1))))


def _handle(client: Any, store: Store, done: list[Any], tasks: dict[str, list[_Part]], completed: Any,
            opts: SubmitOptions, roots: tuple[str, ...], sub_id: int | None = None) -> int:
    """Store finished tasks, and close the jobs they complete, in one transaction; returns how many jobs
    were completed."""
    from distributed import KilledWorker

    pairs: list[tuple[int, Result]] = []
    finished: list[tuple[int, str, int | None, str, str | None]] = []
    touched: list[Flight] = []
    for fut in done:
        if fut.key not in tasks:
            continue
        parts = tasks.pop(fut.key)
        n_files = sum(len(files) for _, files in parts)
        for fl, _ in parts:
            fl.open_tasks -= 1
            touched.append(fl)
        if fut.status == "finished":
            payload = fut.result()
            owner = {fid: fl for fl, files in parts for fid, _, _ in files}
            by_flight: dict[int, list[tuple[int, Result]]] = {}
            for fid, row in payload["results"]:
                by_flight.setdefault(owner[fid].job_id, []).append((fid, Result.from_row(row)))
            took = payload["ended"] - payload["started"]
            shared = f" (one task of {n_files} files for {len(parts)} jobs)" if len(parts) > 1 else ""
            for fl, _ in parts:
                got = by_flight.get(fl.job_id, [])
                counts: dict[str, int] = {}
                for _, r in got:
                    counts[r.status] = counts.get(r.status, 0) + 1
                pairs += got
                fl.ok += counts.get("ok", 0)
                fl.failed += sum(v for k, v in counts.items() if k != "ok")
                fl.host = payload["host"]
                fl.log.append(f"{len(got)} file(s) on {payload['host']} ({payload['worker']}) in {took:.2f} s"
                              f"{shared}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
                fl.log += [r.error for _, r in got if r.error]
                fl.log += [line for _, r in got for line in r.note_lines()]
            continue
        exc = fut.exception()
        if isinstance(exc, KilledWorker) and n_files > 1:
            for fl, files in parts:
                fl.log.append(f"a task of {n_files} files killed its workers ({exc}); retrying each file alone")
                for one in files:
                    sub = client.submit(run_batch, fl.job_id, [one], opts.engine, opts.timeout, roots,
                                        key=f"{fut.key}-f{one[0]}", pure=False)
                    tasks[sub.key] = [(fl, [one])]
                    fl.open_tasks += 1
                    completed.add(sub)
            continue
        for fl, files in parts:
            if isinstance(exc, KilledWorker):
                # Dask counts a worker's death against every task that worker held, the innocent queued
                # ones too: the file gets a last read alone, in an extraction process of this submitter
                fid, path, root = files[0]
                result = _read_here(path, root, opts, str(exc))
                pairs.append((fid, result))
                fl.ok += result.ok
                fl.failed += not result.ok
                fl.log.append(f"{path}: its Dask workers died while it was queued or read ({exc}); read again "
                              f"alone on the submitter: {result.status}")
                if result.error:
                    fl.log.append(result.error)
                fl.log += result.note_lines()
            else:
                why = f"{type(exc).__name__}: {exc}"
                failed = [(fid, Result(path=path, status="failed", engine=opts.engine,
                                       error=f"{path}: {why}")) for fid, path, _root in files]
                pairs += failed
                fl.failed += len(failed)
                fl.log += [r.error or "" for _, r in failed]
    for fl in dict.fromkeys(touched):  # each job once, in order
        if not fl.open_tasks:
            summary = f"job {fl.number}: {fl.ok} ok, {fl.failed} failed"
            finished.append((fl.run_id, "done", 0 if not fl.failed else 1, "\n".join([*fl.log, summary]), fl.host))
    if pairs or finished:
        store_completed(store, pairs, finished, submission_id=sub_id)
    return len(finished)


def _read_here(path: str, root: str, opts: SubmitOptions, killed: str) -> Result:
    """Extract one file in an extraction process of this (submitter) process, where its crash costs that
    process only; a file this host cannot see keeps the verdict of the Dask workers."""
    from metaextract.extraction.pool import ExtractionPool

    if not os.path.exists(path):
        return Result(path=path, status="failed", engine=opts.engine,
                      error=f"{path}: it killed its Dask worker ({killed}); not readable from the submitter's "
                            "host for a last try alone")
    with ExtractionPool(1, engine=opts.engine, timeout=opts.timeout, roots=[root]) as pool:
        result = next(iter(pool.map([(path, root)])))
    if result.status == "failed" and "extraction process died" in (result.error or ""):
        result.error = f"{result.error} (it also killed its Dask worker: {killed})"
    return result
