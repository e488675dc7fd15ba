"""Run an experiment's jobs here, in extraction processes of the submitter itself (``--cluster local``).

One machine needs no Dask: the submitter claims its jobs a chunk at a time and streams their files
through one :class:`~metaextract.extraction.pool.ExtractionPool` (a process per core, each keeping its engines and,
when a file needs Bio-Formats, its JVM for the whole run). The pool contains every fault per file: a
file past its timeout, or one whose reading kills its process, gets its own recorded verdict while the
other files go on. Results are written in short transactions (at most :data:`STORE_FILES` files or
:data:`STORE_SECONDS` of work each), a job's run is closed in the transaction that stores its last file,
and an interruption stores what was read before the open jobs are cancelled.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from metaextract.extraction.pool import ExtractionPool
from metaextract.jobs.submission import CLAIM_CHUNK, Flight, SubmitOptions
from metaextract.result import Result
from metaextract.store import Store
from metaextract.store.jobs import (
    begin_job_runs,
    experiment_roots,
    jobs_files,
    retrying,
    store_completed,
    this_host,
)

STORE_FILES = 2000  # results written per transaction at most ...
STORE_SECONDS = 0.5  # ... and no result waits longer than this to be written (unless every file is slow)


class _Run:
    """The jobs claimed so far, the files sent and not answered, and the results not yet written."""

    def __init__(self, store: Store, sub_id: int, by_job: dict[int, Flight], echo: Callable[[str], None],
                 engine: str) -> None:
        self.store, self.sub_id, self.by_job, self.echo, self.engine = store, sub_id, by_job, echo, engine
        self.host = this_host()
        self.where = f"{self.host} (extraction processes of the submitter, pid {os.getpid()})"
        self.waiting: dict[str, deque[tuple[int, Flight]]] = {}  # path → (image file id, job), in order sent
        self.started: dict[int, float] = {}  # job id → when its first file was sent
        self.counts: dict[int, dict[str, int]] = {}
        self.pairs: list[tuple[int, Result]] = []
        self.finished: list[tuple[int, str, int | None, str, str | None]] = []
        self.oldest = 0.0  # when the oldest result not yet written came in

    def files(self, selected: list[tuple[int, int]], shown: list[int]) -> Iterator[tuple[str, str]]:
        """Claim the jobs a chunk at a time (as the pool asks for more files) and yield their files; a job
        that cannot be claimed (another process runs it) leaves ``shown``, the jobs the monitor reports."""
        for start in range(0, len(selected), CLAIM_CHUNK):
            chunk = selected[start:start + CLAIM_CHUNK]
            runs, refused = retrying("claiming jobs", partial(
                begin_job_runs, self.store, [job_id for job_id, _ in chunk], submission_id=self.sub_id), self.echo)
            listed = retrying("listing files", partial(jobs_files, self.store, list(runs)), self.echo)
            claimed: list[tuple[Flight, list[tuple[int, str, str]]]] = []
            for job_id, number in chunk:  # every claimed job is known at once, so a cancel reaches them all
                if job_id in refused:
                    self.echo(f"skipping job {number}: {refused[job_id]}")
                    shown.remove(job_id)
                    continue
                fl = Flight(job_id, number, runs[job_id], host=self.host)
                files = listed.get(job_id, [])
                fl.open_tasks = len(files)
                self.by_job[job_id] = fl
                self.counts[job_id] = {}
                claimed.append((fl, files))
            for fl, files in claimed:
                self.started[fl.job_id] = time.time()
                if not files:
                    self._close(fl)
                for fid, path, root in files:
                    self.waiting.setdefault(path, deque()).append((fid, fl))
                    yield path, root

    def take(self, result: Result) -> None:
        """Keep a file's result for the next write; close its job when it was the job's last file."""
        queue = self.waiting.get(result.path)
        if not queue:
            return
        fid, fl = queue.popleft()
        if not queue:
            del self.waiting[result.path]
        if not self.pairs and not self.finished:
            self.oldest = time.monotonic()
        self.pairs.append((fid, result))
        counts = self.counts[fl.job_id]
        counts[result.status] = counts.get(result.status, 0) + 1
        if result.status == "ok":
            fl.ok += 1
        else:
            fl.failed += 1
            if result.error:
                fl.log.append(result.error)
        fl.log += result.note_lines()
        fl.open_tasks -= 1
        if not fl.open_tasks:
            self._close(fl)

    def unanswered(self) -> None:
        """Record a failure for every file sent whose result never came back (the pool answers every file,
        so this is a safety net: no job is left running because of a lost answer)."""
        for path, queue in list(self.waiting.items()):
            for _ in range(len(queue)):
                self.take(Result(path=path, status="failed", engine=self.engine,
                                 error=f"{path}: no result came back from the extraction processes"))

    def _close(self, fl: Flight) -> None:
        counts = self.counts.pop(fl.job_id, {})
        took = time.time() - self.started.pop(fl.job_id, time.time())
        head = (f"{fl.ok + fl.failed} file(s) on {self.where} in {took:.2f} s: "
                + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        log = "\n".join([head, *fl.log, f"job {fl.number}: {fl.ok} ok, {fl.failed} failed"])
        fl.log = []  # written with the run; a million-file run keeps no logs it no longer needs
        if not self.pairs and not self.finished:
            self.oldest = time.monotonic()
        self.finished.append((fl.run_id, "done", 0 if not fl.failed else 1, log, self.host))

    def due(self, now: float) -> bool:
        return len(self.pairs) >= STORE_FILES or (
            bool(self.pairs or self.finished) and now - self.oldest >= STORE_SECONDS)

    def write(self) -> None:
        """Store the kept results and close the finished jobs, in one transaction."""
        if self.pairs or self.finished:
            retrying("storing results", lambda: store_completed(self.store, self.pairs, self.finished,
                                                                submission_id=self.sub_id), self.echo)
            self.pairs, self.finished = [], []


def run_here(store: Store, experiment_id: int, selected: list[tuple[int, int]], sub_id: int,
             opts: SubmitOptions, by_job: dict[int, Flight], echo: Callable[[str], None], *,
             since: Any = None, check: Callable[[], None] = lambda: None) -> None:
    """Claim the ``selected`` jobs, read their files in ``opts.max_jobs`` extraction processes (default:
    one per core), store every result and report progress (at once, every ``opts.interval`` seconds and at
    the end) until every job is closed. Each claimed job goes into ``by_job`` (the caller cancels the open
    ones when interrupted, after this stored what it had read). ``check`` is called at every tick and
    raises when the submission must stop (:class:`~metaextract.store.holders.SubmissionLost`)."""
    from metaextract.jobs.monitor import Monitor

    workers = opts.max_jobs or os.cpu_count() or 1
    heap = opts.memory if "memory" in opts.explicit else None
    roots = experiment_roots(store, experiment_id)  # the processes read nothing outside the experiment's folders
    run = _Run(store, sub_id, by_job, echo, opts.engine)
    shown = [job_id for job_id, _ in selected]
    monitor = Monitor(store, experiment_id, shown, opts.depth, echo, submission_id=sub_id, since=since)
    retrying("reporting progress", monitor.report, echo)
    try:
        with ExtractionPool(workers, engine=opts.engine, timeout=opts.timeout, heap_mb=heap,
                            roots=roots).start() as pool:
            next_report = time.monotonic() + opts.interval
            for item in pool.map_rows(run.files(selected, shown), ticks=True):
                check()
                if item is not None:
                    run.take(item if isinstance(item, Result) else Result.from_row(item))
                now = time.monotonic()
                if run.due(now):
                    run.write()
                if now >= next_report:
                    run.write()
                    retrying("reporting progress", monitor.report, echo)
                    next_report = time.monotonic() + opts.interval
            run.unanswered()
            run.write()
        retrying("reporting progress", monitor.report, echo)
    except BaseException:
        # interrupted (or a database error): whatever was read and can still be written is kept
        with contextlib.suppress(Exception):  # the original error is the one to report
            run.write()
        raise
    finally:
        monitor.close()
