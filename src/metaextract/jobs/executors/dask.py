"""Read the files on Dask: a Dask LocalCluster, an existing scheduler, or SLURM (:mod:`.slurm`).

Jobs travel as Dask tasks (:func:`~.task.run_batch`), whole jobs put together up to :data:`BUNDLE_FILES`
files a task while every worker still gets several tasks (a task costs the scheduler, client and worker
~10 ms of CPU); a Dask worker keeps one extraction pool (and so one JVM) for every task it runs. Results
travel back to the submitter, whose job runner alone writes the database: SQLite stays safe even with
remote workers.

Faults: a worker lost mid-job → Dask runs the task again elsewhere (results are keyed by image file, so
nothing is stored twice); a task that keeps killing workers (``KilledWorker``) is split into one task per
file, and a file whose own task is given up too (Dask also gives up the tasks that were merely queued on a
dying worker) is read once more alone, in an extraction process of the submitter, whose verdict counts.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from metaextract.jobs.arguments import SubmitOptions
from metaextract.jobs.executors import dask_api
from metaextract.jobs.executors.base import Batch, Event, FileItem, Read, Remark, SchedulerUnavailable, work
from metaextract.jobs.executors.task import run_batch
from metaextract.result import Result, one_line
from metaextract.store.holders import this_host

__all__ = ["DaskExecutor", "dask_client"]

RESEND_LOST = 3  # a task lost without an error (its worker gone) is sent again this many times
BUNDLE_FILES = 1000  # whole jobs are sent together in one Dask task up to this many files ...
TASKS_PER_WORKER = 4  # ... as long as each worker still gets this many tasks
CONNECT_TIMEOUT = 10  # seconds to reach a --scheduler before the submission gives up (nothing claimed yet)
TICK = 0.5  # seconds without a finished task before the runner hears from us


def _connect(address: str) -> Any:
    """A client of the scheduler at ``address``, or :class:`SchedulerUnavailable` within
    :data:`CONNECT_TIMEOUT` seconds."""
    try:
        return dask_api.client(address, timeout=f"{CONNECT_TIMEOUT}s")
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

    cluster: Any = None
    if opts.scheduler:
        client = _connect(opts.scheduler)
    elif opts.cluster == "slurm":
        from metaextract.jobs.executors.slurm import slurm_client

        client, cluster = slurm_client(opts)
    elif opts.cluster == "dask":
        n = opts.max_jobs or os.cpu_count() or 1
        cluster = dask_api.local_cluster(n_workers=n,
                                         memory_limit=f"{opts.memory}MB" if "memory" in opts.explicit else "auto",
                                         dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
        client = dask_api.client(cluster)
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


class DaskExecutor:
    """Dask tasks for the batches fed, on the place ``opts`` names; ``total_files`` (of every job to come)
    sizes the bundles, ``name`` prefixes the task keys, ``echo`` hears of the dashboard."""

    def __init__(self, opts: SubmitOptions, *, roots: Sequence[str], total_files: int, name: str = "metaextract",
                 echo: Callable[[str], None] = lambda _: None) -> None:
        self.opts, self.roots, self.total, self.name, self.echo = opts, tuple(roots), total_files, name, echo
        self._stack = contextlib.ExitStack()
        self._client: Any = None
        self._tasks: dict[str, list[Batch]] = {}
        self._completed: Any = None

    def __enter__(self) -> DaskExecutor:
        self._client = self._stack.enter_context(dask_client(self.opts))
        if self._client.dashboard_link:
            self.echo(f"Dask dashboard: {self._client.dashboard_link}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def results(self, batches: Iterator[Batch]) -> Iterator[Event]:
        """Send every batch (bundled), then yield each finished task's Results."""
        self._completed = dask_api.completions()
        size, bundle = self._bundle_size(), []
        for batch in batches:
            bundle.append(batch)
            if sum(len(b.files) for b in bundle) >= size:
                self._send(bundle)
                bundle = []
        if bundle:
            self._send(bundle)
        done: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()

        def pump() -> None:
            # as_completed stops as soon as it holds no future; the retries of a task that killed its
            # workers are added to it only after that task came out, so iterate again until the end
            while not stop.is_set():
                for f in self._completed:
                    done.put(f)
                stop.wait(0.05)

        threading.Thread(target=pump, daemon=True, name="metaextract-completions").start()
        try:
            while self._tasks:
                try:
                    fut = done.get(timeout=TICK)
                except queue.Empty:
                    yield None
                    continue
                yield from self._answer(fut)
        finally:
            stop.set()

    def _send(self, parts: list[Batch], key: str | None = None) -> None:
        files = [f for b in parts for f in b.files]
        first = parts[0].job_id
        key = key or f"{self.name}-j{first}" + (f"-n{len(parts)}" if len(parts) > 1 else "")
        fut = self._client.submit(run_batch, first, files, self.opts.engine, self.opts.timeout, self.roots,
                                  key=key, pure=False)
        self._tasks[fut.key] = parts
        self._completed.add(fut)

    def _bundle_size(self) -> int:
        """Files per Dask task: whole jobs are put together up to :data:`BUNDLE_FILES` files (a task costs
        the scheduler, the client and a worker about 10 ms of CPU, as much as 20 small files), but into at
        least :data:`TASKS_PER_WORKER` tasks per worker, so the work still spreads and the last ones are short."""
        try:
            workers = len(self._client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - a scheduler that cannot say: assume one
            workers = 0
        if self.opts.cluster == "slurm" and not self.opts.scheduler:
            workers = max(workers, (self.opts.max_jobs or 1) * self.opts.cores)
        return max(1, min(BUNDLE_FILES, self.total // (TASKS_PER_WORKER * max(workers, 1))))

    def _answer(self, fut: Any) -> Iterator[Event]:
        """The outcome of one finished (or given up) task."""
        from distributed import KilledWorker

        parts = self._tasks.pop(fut.key, None)
        if parts is None:
            return
        n_files = sum(len(b.files) for b in parts)
        if fut.status == "finished":
            payload = fut.result()
            shared = f" (one task of {n_files} files for {len(parts)} jobs)" if len(parts) > 1 else ""
            where = f"{payload['host']} ({payload['worker']}){shared}"
            for fid, row in payload["results"]:
                yield Read(fid, Result.from_row(row), payload["host"], where)
            return
        exc = fut.exception()
        if exc is None:  # lost or cancelled without an error (its worker died as it ended): send it again
            resent = fut.key.count("-again")
            if resent < RESEND_LOST:
                for b in parts:
                    yield Remark(b.files[0][0], f"a task of {n_files} files was lost with its worker "
                                                f"({fut.status}); sent again")
                self._send(parts, key=f"{fut.key}-again{resent + 1}")
                return
            exc = RuntimeError(f"the task was lost {resent + 1} times ({fut.status})")
        if isinstance(exc, KilledWorker) and n_files > 1:
            for b in parts:
                yield Remark(b.files[0][0], f"a task of {n_files} files killed its workers ({exc}); "
                                            "retrying each file alone")
                for one in b.files:
                    self._send([Batch(b.job_id, [one])], key=f"{fut.key}-f{one[0]}")
            return
        for b in parts:
            if isinstance(exc, KilledWorker):
                yield from self._last_read(b, str(exc))
            else:
                why = f"{type(exc).__name__}: {exc}"
                for fid, path, *_ in b.files:
                    yield Read(fid, Result(path=path, status="failed", engine=self.opts.engine,
                                           error=f"{path}: {why}"), "", f"Dask (the task failed: {one_line(why, 200)})")

    def _last_read(self, batch: Batch, killed: str) -> Iterator[Event]:
        """Dask counts a worker's death against every task that worker held, the innocent queued ones too:
        the file gets a last read alone, in an extraction process of this submitter."""
        fid, path = batch.files[0][:2]
        result = _read_here(batch.files[0], self.opts, killed)
        yield Remark(fid, f"{path}: its Dask workers died while it was queued or read ({killed}); read again "
                          f"alone on the submitter: {result.status}")
        host = this_host()
        yield Read(fid, result, host, f"{host} (read alone on the submitter, pid {os.getpid()})")


def _read_here(item: FileItem, opts: SubmitOptions, killed: str) -> Result:
    """Extract one file in an extraction process of this (submitter) process, where its crash costs that
    process only; a file this host cannot see keeps the verdict of the Dask workers."""
    from metaextract.extraction.pool import ExtractionPool

    path, root = item[1], item[2]
    if not os.path.exists(path):
        return Result(path=path, status="failed", engine=opts.engine,
                      error=f"{path}: it killed its Dask worker ({killed}); not readable from the submitter's "
                            "host for a last try alone")
    with ExtractionPool(1, engine=opts.engine, timeout=opts.timeout, roots=[root]) as pool:
        result = next(iter(pool.map([work(item)])))
    if result.status == "failed" and "extraction process died" in (result.error or ""):
        result.error = f"{result.error} (it also killed its Dask worker: {killed})"
    return result
