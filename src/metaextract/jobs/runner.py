"""The one job runner: claim jobs, feed their files to an executor, write the Results, close the runs.

``run --job N``, :meth:`MetadataExtractor.run_job <metaextract.jobs.step.MetadataExtractor.run_job>` and
``submit``/``resubmit`` (here, on Dask, on SLURM) all go through :class:`JobRunner`; where the files are
read is the executor's business (:mod:`metaextract.jobs.executors`), everything else happens here, once:

- jobs are claimed a chunk at a time (:data:`CLAIM_CHUNK`), as the executor asks for more files;
- Results are written in short transactions keyed by image file (:class:`Policy`: at most
  :data:`STORE_FILES` files or :data:`STORE_SECONDS` of waiting for ``submit``; each file at once for
  ``run --job N``), so a killed runner loses only what it had not written yet;
- a job's run is closed, with its log (:func:`job_log`, one format whatever the executor), in the
  transaction that stores its last file;
- on an interruption (or any error) what was read is stored first, then the caller ends the open runs
  with :meth:`JobRunner.release`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from metaextract.jobs.executors.base import Batch, Executor, FileItem, Read, Remark
from metaextract.result import Result
from metaextract.store import Store
from metaextract.store.filesets import FilesetJob, fileset_jobs, member_result
from metaextract.store.jobs import (
    begin_job_runs,
    clear_job_results,
    finish_job_run,
    jobs_files,
    retrying,
    store_completed,
)

CLAIM_CHUNK = 100  # jobs claimed (and their files listed) per transaction before they are fed
STORE_FILES = 2000  # results written per transaction at most ...
STORE_SECONDS = 0.5  # ... and no result waits longer than this to be written (unless every file is slow)
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Policy:
    """What differs between ``run --job N`` (:data:`ONE_JOB`) and ``submit`` (the defaults).

    ``strict``: a job with a failing file ends ``failed`` (the seed's ``run``), not ``done`` with exit
    code 1 (a submission, whose jobs all ran). ``clear_first``: a claimed job's earlier results are
    forgotten before its files are read. ``store_files``/``store_seconds``: the write rule above.
    """

    submission_id: int | None = None
    claim_chunk: int = CLAIM_CHUNK
    store_files: int = STORE_FILES
    store_seconds: float = STORE_SECONDS
    clear_first: bool = False
    strict: bool = False
    interval: float = 10.0  # seconds between progress reports


#: ``run --job N``: every finished file is stored at once, so a killed run loses nothing it finished.
ONE_JOB = Policy(claim_chunk=1, store_files=1, store_seconds=0.0, strict=True, interval=float("inf"))


@dataclass(eq=False)
class JobTally:
    """A claimed job: its run, its counts and what its log will say. The log's parts are dropped once the
    run is closed (a million-file submission keeps no logs it no longer needs)."""

    job_id: int
    number: int
    run_id: int
    files: int = 0
    left: int = 0
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    state: str = "running"
    host: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    wheres: dict[str, None] = field(default_factory=dict)  # in order first seen
    remarks: list[str] = field(default_factory=list)
    failing: list[tuple[int, str]] = field(default_factory=list)  # (image file id, line)

    @property
    def ok(self) -> int:
        return self.counts.get("ok", 0)

    @property
    def failed(self) -> int:
        return sum(self.counts.values()) - self.ok


def job_log(t: JobTally, closing: str) -> str:
    """A job run's log, whatever ran it: a header (files read, where, how long, counts per status), the
    remarks, each failing file's one-line error and each file's notes (in file order) and ``closing``."""
    counts = ", ".join(f"{v} {k}" for k, v in sorted(t.counts.items()))
    head = (f"{sum(t.counts.values())} file(s) on {', '.join(t.wheres) or 'no worker'} in {t.seconds:.2f} s"
            + (f": {counts}" if counts else ""))
    return "\n".join([head, *t.remarks, *(line for _, line in sorted(t.failing)), closing]) + "\n"


def _failing_line(r: Result) -> str:
    return f"{r.status.upper()} {r.error or f'{r.path}: {r.status}'}"


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt (in the main thread), so a terminated runner stores what it read
    and cancels its open jobs as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt("terminated")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _nothing() -> None:
    return None


class JobRunner:
    """Runs jobs through one executor and keeps the books (see the module's docstring).

    Parameters
    ----------
    store : Store
        The database; this runner is its only writer of results.
    policy : Policy
    echo : callable
        Told of retried database work (also written into the open jobs' logs).
    refused : callable, optional
        ``(job_id, number, why)`` of a job that could not be claimed (running elsewhere, gone); default:
        told to ``echo``.
    check : callable
        Called at every step; raises to stop the run (e.g. :class:`~metaextract.store.holders.SubmissionLost`).
    report : callable
        Reports progress: at the start, every ``policy.interval`` seconds, at the end.
    on_read : callable, optional
        Told of each file's Result once it is kept (and, with :data:`ONE_JOB`, stored).
    """

    def __init__(self, store: Store, policy: Policy = Policy(), *, echo: Callable[[str], None] = lambda _: None,
                 refused: Callable[[int, int, str], None] | None = None, check: Callable[[], None] = _nothing,
                 report: Callable[[], None] = _nothing, on_read: Callable[[Result], None] | None = None) -> None:
        self.store, self.policy, self.echo, self.check, self.report = store, policy, echo, check, report
        self.on_read = on_read
        self.refused = refused or (lambda _id, number, why: echo(f"skipping job {number}: {why}"))
        self.jobs: dict[int, JobTally] = {}  # every job claimed, by id
        self.open: dict[int, JobTally] = {}  # the claimed jobs not closed yet
        self._waiting: dict[int, tuple[JobTally, str]] = {}  # image file id -> (job, path), sent, not answered
        self._pairs: list[tuple[int, Result]] = []
        self._sets: dict[int, FilesetJob] = {}  # fileset items sent (key: minus the fileset's id)
        self._fileset_reads: list[tuple[FilesetJob, Result]] = []
        self._finished: list[tuple[int, str, int | None, str, str | None]] = []
        self._oldest = 0.0  # when the oldest result not yet written came in

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self, executor: Executor, selected: list[tuple[int, int]]) -> None:
        """Claim the ``selected`` ``(job id, number)`` jobs, read their files with ``executor``, store every
        Result and close every job claimed. On any exception, what was read is stored before it propagates
        (the caller then ends the open jobs with :meth:`release`)."""
        try:
            retrying("reporting progress", self.report, self.echo)
            with executor:
                self.check()
                next_report = time.monotonic() + self.policy.interval
                for event in executor.results(self._batches(selected)):
                    self.check()
                    self._take(event)
                    now = time.monotonic()
                    if self._due(now) or now >= next_report:
                        self._write()
                    if now >= next_report:
                        retrying("reporting progress", self.report, self.echo)
                        next_report = time.monotonic() + self.policy.interval
                    if self.on_read is not None and isinstance(event, Read):
                        self.on_read(event.result)
            self._unanswered()
            self._write()
            retrying("reporting progress", self.report, self.echo)
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to report
                self._write()
            raise

    def release(self, state: str, why: str, exit_code: int, job_state: str | None = None) -> None:
        """End the runs of the jobs still open as ``state`` (their jobs: ``job_state``, default the same),
        their logs closed by ``why``. A run another process ended already is left as it is."""
        for t in list(self.open.values()):
            t.seconds = time.monotonic() - t.started
            with contextlib.suppress(Exception):
                finish_job_run(self.store, t.run_id, state, exit_code, job_log(t, why), job_state=job_state)
            t.state = state
            del self.open[t.job_id]

    # -- claiming ----------------------------------------------------------------------------------------
    def _batches(self, selected: list[tuple[int, int]]) -> Iterator[Batch]:
        """Claim the jobs a chunk at a time (as the executor asks for more) and yield their files. Every
        claimed job is known at once, so a cancel reaches them all."""
        chunk = self.policy.claim_chunk
        for start in range(0, len(selected), chunk):
            part = selected[start:start + chunk]
            claimed = self._claim(part)
            if self.policy.clear_first and claimed:
                retrying("clearing the job's earlier results",
                         partial(clear_job_results, self.store, [t.job_id for t in claimed]), self._note)
            listed = retrying("listing files", partial(jobs_files, self.store, [t.job_id for t in claimed]),
                              self._note)
            sets = retrying("listing filesets", partial(fileset_jobs, self.store, [t.job_id for t in claimed]),
                            self._note)
            for t in claimed:
                fs = sets.get(t.job_id)
                files: list[FileItem] = (list(listed.get(t.job_id, [])) if fs is None
                                         else [(-fs.fileset_id, fs.spec.master, fs.root, fs.spec)])
                t.files, t.left = (len(files), len(files)) if fs is None else (max(1, len(fs.members)), 1)
                t.started = time.monotonic()
                for item in files:
                    self._waiting[item[0]] = (t, item[1])
                if fs is not None:
                    self._sets[-fs.fileset_id] = fs
                if files:
                    yield Batch(t.job_id, files)
                else:
                    self._close(t)

    def _claim(self, part: list[tuple[int, int]]) -> list[JobTally]:
        runs, refused = retrying("claiming jobs", partial(
            begin_job_runs, self.store, [job_id for job_id, _ in part], submission_id=self.policy.submission_id),
            self._note)
        claimed = []
        for job_id, number in part:
            if job_id in refused:
                self.refused(job_id, number, refused[job_id])
                continue
            t = self.jobs[job_id] = self.open[job_id] = JobTally(job_id, number, runs[job_id])
            claimed.append(t)
        return claimed

    # -- results -----------------------------------------------------------------------------------------
    def _take(self, event: Read | Remark | None) -> None:
        if isinstance(event, Remark):
            held = self._waiting.get(event.file_id)
            if held is not None:
                held[0].remarks.append(event.text)
        elif isinstance(event, Read):
            self._keep(event)

    def _keep(self, read: Read) -> None:
        """Keep a file's Result for the next write; close its job when it was the job's last file."""
        held = self._waiting.pop(read.file_id, None)
        if held is None:  # not sent, or answered already
            return
        t, r = held[0], read.result
        if not self._pairs and not self._finished and not self._fileset_reads:
            self._oldest = time.monotonic()
        fs = self._sets.pop(read.file_id, None)
        if fs is None:
            self._pairs.append((read.file_id, r))
            t.counts[r.status] = t.counts.get(r.status, 0) + 1
        else:  # a fileset's one read: its document once, each image member's row pointing at it
            self._fileset_reads.append((fs, r))
            for file_id, path in fs.members:
                m = member_result(fs, path, r)
                self._pairs.append((file_id, m))
                t.counts[m.status] = t.counts.get(m.status, 0) + 1
            if not fs.members:
                t.counts[r.status] = t.counts.get(r.status, 0) + 1
        t.host = read.host or t.host
        t.wheres[read.where] = None
        if not r.ok:
            t.failing.append((read.file_id, _failing_line(r)))
        t.failing += [(read.file_id, line) for line in r.note_lines()]  # notes too, in file order
        t.left -= 1
        if not t.left:
            self._close(t)

    def _unanswered(self) -> None:
        """A failure for every file sent whose Result never came back (an executor answers every file, so
        this is a safety net: no job is left running because of a lost answer)."""
        for fid, (_t, path) in list(self._waiting.items()):
            self._keep(Read(fid, Result(path=path, status="failed",
                                        error=f"{path}: no result came back from the executor"), "", "-"))

    def _close(self, t: JobTally) -> None:
        t.seconds = time.monotonic() - t.started
        t.state = "failed" if self.policy.strict and t.failed else "done"
        log = job_log(t, f"job {t.number}: {t.ok} ok, {t.failed} failed ({t.ok} of {t.files} files ok)")
        t.remarks, t.failing, t.wheres = [], [], {}
        if not self._pairs and not self._finished:
            self._oldest = time.monotonic()
        self._finished.append((t.run_id, t.state, 1 if t.failed else 0, log, t.host))
        del self.open[t.job_id]

    def _due(self, now: float) -> bool:
        return len(self._pairs) >= self.policy.store_files or (
            bool(self._pairs or self._finished) and now - self._oldest >= self.policy.store_seconds)

    def _write(self) -> None:
        """Store the kept Results and close the finished jobs, in one transaction."""
        if self._pairs or self._finished or self._fileset_reads:
            pairs, finished, sets = self._pairs, self._finished, self._fileset_reads
            retrying("storing results", lambda: store_completed(
                self.store, pairs, finished, submission_id=self.policy.submission_id, fileset_reads=sets),
                self._note)
            self._pairs, self._finished, self._fileset_reads = [], [], []

    def _note(self, text: str) -> None:
        """Retried database work: told to ``echo`` and written into every open job's log."""
        self.echo(text)
        for t in self.open.values():
            t.remarks.append(text)
