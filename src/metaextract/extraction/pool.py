"""A small pool of extraction processes, each holding one JVM (and its engines) for its whole life.

A process is the unit of containment: a file past its timeout gets its process killed and replaced
(status ``timeout``); a process that dies (JVM abort, segfault, ``kill -9``, OutOfMemoryError) is
replaced and its current file recorded as ``failed`` with the reason; the other files go on.

Files go to a process in chunks and their results come back in batches (one message per
:data:`FLUSH_SECONDS` of work, not one per file). Which file a process is reading, and since when, it
writes into a small shared-memory marker before each file, so a timeout or a death still blames exactly
that file; results it had not sent yet are lost with the process, and those files are read again.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from metaextract.closing import Closing
from metaextract.extraction.fileset import fileset_timeout
from metaextract.extraction.limits import DEFAULT_TIMEOUT
from metaextract.result import ROW_RSS, ROW_SECONDS, Result, Row

# A process sends the results it has every FLUSH_SECONDS (and whenever it runs out of files), so fast files
# cost one message per batch, not one each. Each process is kept about two batches' worth of files ahead
# (at most MAX_QUEUE); slow files (longer than a batch) go one at a time, so they spread over the processes.
FLUSH_SECONDS = 0.025
MAX_QUEUE = 256
# A process that answers nothing and marks no file as started for this long past its timeout is stuck
# between files; it is replaced like a timed-out one.
STALL_GRACE = 30.0
# A worker that dies this many times in a row before it is ready means the setup is broken.
MAX_START_FAILURES = 3
_READY = "ready"
_SETUP_FAILED = "setup-failed"


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


_rss_seen: tuple[float, float | None] = (-1.0, None)
RSS_EVERY = 0.25  # seconds: a file's result reports the resident memory measured at most this long ago


def _rss_mb() -> float | None:
    """This process's resident memory, read at most every :data:`RSS_EVERY` seconds."""
    global _rss_seen
    now = time.monotonic()
    if now - _rss_seen[0] >= RSS_EVERY:
        _rss_seen = (now, _read_rss_mb())
    return _rss_seen[1]


def _read_rss_mb() -> float | None:
    """This process's resident memory, cheaply (``/proc/self/statm``; psutil elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE / 2**20
    except OSError:
        pass
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except Exception:  # noqa: BLE001
        return None


class _Marker:
    """Which task an extraction process is reading and since when (``time.monotonic``, the same clock in
    every process on Linux): 24 bytes of shared memory, written by the child, read by the pool.

    A sequence number makes each write appear whole: odd while the child writes, even when done.
    """

    _FMT = struct.Struct("<qqd")
    IDLE = -1

    def __init__(self, buf: mmap.mmap) -> None:
        self._buf = buf
        self._seq = 0

    @classmethod
    def create(cls) -> tuple[_Marker, int]:
        """A new marker and the file descriptor the child maps it from."""
        try:
            fd = os.memfd_create("metaextract-marker", os.MFD_CLOEXEC)
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            fd, name = tempfile.mkstemp(prefix="metaextract-marker-")
            os.unlink(name)
        os.ftruncate(fd, cls._FMT.size)
        marker = cls(mmap.mmap(fd, cls._FMT.size))
        marker._buf[:] = cls._FMT.pack(0, cls.IDLE, 0.0)
        return marker, fd

    def set(self, task: int, since: float) -> None:
        self._seq += 1
        self._buf[0:8] = self._seq.to_bytes(8, "little", signed=True)
        self._buf[8:24] = struct.pack("<qd", task, since)
        self._seq += 1
        self._buf[0:8] = self._seq.to_bytes(8, "little", signed=True)

    def get(self) -> tuple[int, float]:
        """``(task, since)``, or ``(IDLE, 0.0)`` between files."""
        for _ in range(1000):
            seq, task, since = self._FMT.unpack(self._buf)
            if seq % 2 == 0 and self._FMT.unpack(self._buf)[0] == seq:
                return task, since
        return self.IDLE, 0.0  # pragma: no cover - a writer stuck mid-write

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self._buf.close()


def _worker_main(conn: Connection, engine: str, warm: bool, heap_mb: int | None,
                 marker: _Marker | None = None) -> None:
    """Body of an extraction process: warm up, then answer chunks of (task, path, root, spec) until told to
    stop (``spec``: None for a file, a fileset's :class:`~metaextract.filesets.model.FilesetSpec` for the
    one read of that fileset, ``path`` then its master).

    Results go back as lists of ``(task, result dict, rss MB, retiring)``, in the order the files came.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    if heap_mb:
        os.environ["METAEXTRACT_JAVA_HEAP_MB"] = str(heap_mb)
    from metaextract.extraction.fileset import read_fileset
    from metaextract.extraction.pipeline import FatalWorkerError, extract_file

    if warm:
        try:
            from metaextract import engines

            engines.get("bioformats").version()  # starts the JVM before the first timed file
        except Exception as exc:  # noqa: BLE001
            conn.send((_SETUP_FAILED, f"{type(exc).__name__}: {exc}"))
            return
    conn.send((_READY, os.getpid()))
    outbox: list[tuple[int, Row, bool]] = []
    oldest = 0.0  # when the first result in the outbox was made

    current = _Marker.IDLE

    def mark(task: int, since: float) -> None:
        nonlocal current
        current = task
        if marker is not None:
            marker.set(task, since)

    def grace(extra: float) -> None:
        """A one-off start-up (the JVM) moves the current file's deadline; its clock restarts afterwards."""
        mark(current, time.monotonic() + extra)

    while True:
        if outbox and not conn.poll():  # about to wait for files: first send what is done
            mark(_Marker.IDLE, 0.0)
            conn.send(outbox)
            outbox = []
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        for task, path, root, spec in msg:
            now = time.monotonic()
            if outbox and now - oldest >= FLUSH_SECONDS:
                conn.send(outbox)
                outbox = []
            mark(task, now)
            try:
                result = (extract_file(path, engine, raise_fatal=True, root=root, grace=grace) if spec is None
                          else read_fileset(spec, root, grace))
            except FatalWorkerError as exc:
                exc.result.notes.append("the worker process was replaced after this file")
                exc.result.rss_mb = _rss_mb()
                outbox.append((task, exc.result.to_row(), True))
                mark(_Marker.IDLE, 0.0)
                conn.send(outbox)
                os._exit(3)
            if not outbox:
                oldest = time.monotonic()
            result.rss_mb = _rss_mb()
            outbox.append((task, result.to_row(), False))


def _quit() -> None:
    """End this extraction process now that the pool is done with it: no interpreter teardown (module
    clean-up, a JVM's shutdown) for the pool to wait on; everything it had to say was sent."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


class _Process:
    """A child interpreter started with subprocess (not multiprocessing), so pools also work inside
    daemonic processes such as Dask workers; it talks over a socket pair wrapped as a Connection."""

    def __init__(self, engine: str, warm: bool, heap_mb: int | None, roots: Sequence[str] | None = None) -> None:
        parent, child = socket.socketpair()
        fd = child.fileno()
        self.marker, marker_fd = _Marker.create()
        cmd = [sys.executable, "-c", "from metaextract.extraction.pool import _child_main; _child_main()",
               str(fd), engine, "1" if warm else "0", str(heap_mb or 0), str(marker_fd),
               json.dumps(None if roots is None else [os.fspath(r) for r in roots])]
        try:
            self.popen = subprocess.Popen(cmd, pass_fds=(fd, marker_fd), stdin=subprocess.DEVNULL,
                                          close_fds=True)
        finally:
            child.close()
            os.close(marker_fd)
        self.conn = Connection(parent.detach())
        self.pid = self.popen.pid
        try:
            self.sentinel: int | None = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # pragma: no cover - not Linux >= 5.3
            self.sentinel = None

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        if self.sentinel is not None and timeout is not None:
            # the pidfd turns readable the moment the process ends (Popen.wait polls with growing sleeps)
            with contextlib.suppress(OSError, ValueError):
                select.select([self.sentinel], [], [], timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(0 if self.sentinel is not None and timeout is not None else timeout)

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def close(self) -> None:
        if self.sentinel is not None:
            with contextlib.suppress(OSError):
                os.close(self.sentinel)
            self.sentinel = None
        self.marker.close()


_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def isolate_network() -> bool:
    """Move this (still single-threaded) process into a new network namespace with no interface up.

    Whatever a file references (an external entity, a URL), nothing can then reach a network, not even
    127.0.0.1. Root may do this directly; other users through a new user namespace, where the kernel
    allows unprivileged ones. Returns whether it worked; set ``METAEXTRACT_NETWORK_ISOLATION=0`` to skip.
    """
    if os.environ.get("METAEXTRACT_NETWORK_ISOLATION", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    return any(libc.unshare(flags) == 0 for flags in (_CLONE_NEWNET, _CLONE_NEWUSER | _CLONE_NEWNET))


def _child_main() -> None:
    fd, engine, warm, heap = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
    marker_fd = int(sys.argv[5])
    roots = json.loads(sys.argv[6])
    marker = _Marker(mmap.mmap(marker_fd, _Marker._FMT.size))
    os.close(marker_fd)
    isolate_network()
    if roots is not None:
        from metaextract.extraction.sandbox import restrict_reads

        restrict_reads(roots)
    # the pool's process gone (killed) makes a send fail: nobody is left to read a result or a traceback
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        _worker_main(Connection(int(fd)), engine, warm, heap or None, marker)
    _quit()


#: What a pool is given to read: a path, ``(path, root)``, or ``(master, root, FilesetSpec)`` for a fileset's
#: one read (:mod:`metaextract.extraction.fileset`).
Item = str | os.PathLike[str] | tuple[str, str] | tuple[str, str, Any]
#: A read in hand: ``(task, path, root or None, FilesetSpec or None)``.
Task = tuple[int, str, str | None, Any]


@dataclass
class _Worker:
    proc: _Process
    ready: bool = False
    retired: bool = False
    # files sent to it and not answered yet, in the order it reads them (its marker says which one it is on)
    queue: deque[Task] = field(default_factory=deque)
    heard: float = 0.0  # when it last answered or was sent files

    @property
    def conn(self) -> Connection:
        return self.proc.conn


@dataclass
class PoolStats:
    started_workers: int = 0
    replaced_workers: int = 0
    rss_mb: dict[int, float] = field(default_factory=dict)

    @property
    def max_rss_mb(self) -> float | None:
        return max(self.rss_mb.values()) if self.rss_mb else None


class ExtractionPool(Closing):
    """``workers`` extraction processes; :meth:`map` feeds them paths and yields Results as they finish.

    Parameters
    ----------
    workers : int, optional
        Number of processes (default: the number of CPUs).
    engine : str
        ``"auto"``, ``"bioformats"`` or another registered engine name.
    timeout : float
        Seconds one file may take before its process is killed and the file recorded as ``timeout``.
    heap_mb : int, optional
        JVM maximum heap per process (default 512, or ``METAEXTRACT_JAVA_HEAP_MB``).
    roots : sequence of str, optional
        The registered folders the files come from: each process then reads nothing outside them and
        what it needs itself (:mod:`metaextract.extraction.sandbox`, where the kernel has Landlock).
    """

    def __init__(self, workers: int | None = None, *, engine: str = "auto", timeout: float = DEFAULT_TIMEOUT,
                 heap_mb: int | None = None, roots: Sequence[str] | None = None) -> None:
        from metaextract import engines

        if engine != "auto" and engine not in engines.available():
            raise ValueError(f"unknown engine {engine!r}; available: {', '.join(engines.available())} or auto")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.size = max(1, workers or os.cpu_count() or 1)
        self.engine = engine
        self.timeout = float(timeout)
        self.heap_mb = heap_mb
        self.roots = None if roots is None else sorted({os.path.realpath(r) for r in roots})
        self.stats = PoolStats()
        self._workers: list[_Worker] = []
        self._start_failures = 0
        self._setup_error: str | None = None
        self._pending: deque[Task] = deque()
        self._limits: dict[int, float] = {}  # task -> its timeout, where not the pool's (a fileset's read)
        self._avg = FLUSH_SECONDS  # running mean of seconds per file (starts at one file at a time)

    # -- process management -------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        # Only a Bio-Formats pool starts its JVM before the first file; in ``auto`` the JVM (~1-4 s of CPU,
        # ~100 MB) starts when Bio-Formats first gets a file, so a plate of native-read TIFFs never pays it.
        warm = self.engine == "bioformats"
        proc = _Process(self.engine, warm, self.heap_mb, self.roots)
        self.stats.started_workers += 1
        w = _Worker(proc=proc)
        self._workers.append(w)
        return w

    def start(self) -> ExtractionPool:
        """Start every process now (they import their engines while the caller prepares the files)
        instead of as the first files arrive."""
        while len(self._workers) < self.size:
            self._spawn()
        return self

    def _discard(self, w: _Worker, *, kill: bool) -> None:
        if kill and w.proc.is_alive():
            w.proc.kill()
        w.proc.join(5)
        with contextlib.suppress(OSError):
            w.conn.close()
        w.proc.close()
        self._workers.remove(w)

    def close(self) -> None:
        for w in list(self._workers):
            with contextlib.suppress(OSError, BrokenPipeError):
                w.conn.send(None)
        deadline = time.monotonic() + 5
        for w in list(self._workers):
            w.proc.join(max(0.0, deadline - time.monotonic()))
            self._discard(w, kill=True)

    # -- the loop -----------------------------------------------------------------------------------
    def map(self, paths: Iterable[Item]) -> Iterator[Result]:
        """Extract every path; an item may be ``(path, root)`` so a path resolving outside its registered
        folder ``root`` is refused. Yields Results (``Result.path`` as given) in completion order."""
        for item in self.map_rows(paths):
            if item is not None:
                yield item if isinstance(item, Result) else Result.from_row(item)

    def map_rows(self, paths: Iterable[Item], *, ticks: bool = False
                 ) -> Iterator[Row | Result | None]:
        """:meth:`map`, yielding each result read by a process as the row it sent (``Result.to_row``
        form, ``rss_mb`` set), so a relay (the Dask task) need not build a Result; the pool's own
        verdicts (timeouts, deaths) come as Results. With ``ticks``, ``None`` comes too after every wait
        (at most a second apart), so a caller hears from the pool even while every file is slow."""
        pending: deque[Task] = deque()
        self._limits = {}
        source = iter(paths)
        exhausted = False
        next_id = 0

        def refill() -> None:
            nonlocal exhausted, next_id
            while not exhausted and len(pending) < self.size * MAX_QUEUE * 2:
                try:
                    p = next(source)
                except StopIteration:
                    exhausted = True
                    return
                if isinstance(p, tuple):
                    spec = p[2] if len(p) > 2 else None
                    pending.append((next_id, os.fspath(p[0]), os.fspath(p[1]), spec))
                    if spec is not None:
                        self._limits[next_id] = fileset_timeout(self.timeout, spec)
                else:
                    pending.append((next_id, os.fspath(p), None, None))
                next_id += 1

        self._pending = pending
        refill()
        while pending or any(w.queue for w in self._workers):
            if self._setup_error is not None:
                # The engine cannot start at all: every remaining file gets the reason, not a hang.
                why = f"extraction process could not start: {self._setup_error}"
                for w in self._workers:
                    while w.queue:
                        yield self._failure(w.queue.popleft()[1], why)
                while pending:
                    yield self._failure(pending.popleft()[1], why)
                    refill()
                return
            busy = sum(1 for w in self._workers if w.queue)
            while len(self._workers) < min(self.size, busy + len(pending)):
                self._spawn()
            depth = self._depth()
            for w in self._workers:
                # keep each process about two batches ahead, so it never waits for a round trip; near the
                # end the rest is shared out; slow files (depth 1) go one at a time
                if w.ready and pending and len(w.queue) <= depth // 2:
                    n = max(1, min(depth - len(w.queue), len(pending) // (2 * self.size)))
                    chunk = [pending.popleft() for _ in range(min(n, len(pending)))]
                    w.queue.extend(chunk)
                    w.heard = time.monotonic()
                    with contextlib.suppress(BrokenPipeError, OSError):  # a death is reported below
                        w.conn.send(chunk)
                    refill()
            yield from self._wait_once()
            if ticks:
                yield None

    def _depth(self) -> int:
        """How many files a process should have in hand, from the mean time a file takes."""
        if self._avg >= FLUSH_SECONDS:
            return 1
        return min(MAX_QUEUE, int(2 * FLUSH_SECONDS / self._avg) + 1)

    def _requeue(self, w: _Worker) -> None:
        """Give the files a process was sent and had not answered back to the pool, in order."""
        while w.queue:
            self._pending.appendleft(w.queue.pop())

    def _blame(self, w: _Worker) -> str | None:
        """Take the file ``w`` is reading out of its queue (its marker says which), and hand the rest back
        to the pool; ``None`` when it was between files."""
        task, _since = w.proc.marker.get()
        path = None
        for i, item in enumerate(w.queue):
            if item[0] == task:
                path = item[1]
                del w.queue[i]
                break
        self._requeue(w)
        return path

    def _overdue(self, w: _Worker, now: float) -> tuple[bool, float]:
        """Whether ``w`` is past its timeout on a file (or stuck between files), and when it will be."""
        task, since = w.proc.marker.get()
        if task != _Marker.IDLE and any(item[0] == task for item in w.queue):
            due = since + self._limits.get(task, self.timeout)
        else:
            due = w.heard + self.timeout + STALL_GRACE
        return now > due, due

    def _wait_once(self) -> Iterator[Row | Result]:
        now = time.monotonic()
        dues = [self._overdue(w, now)[1] for w in self._workers if w.queue and w.ready]
        wait_for = max(0.0, min(dues) - now) if dues else 1.0
        ready = self._ready(min(wait_for, 1.0))
        for w in list(self._workers):
            alive = True
            if id(w) in ready:
                try:
                    while w.conn.poll():
                        yield from self._handle(w, w.conn.recv())
                except (EOFError, OSError):
                    alive = False
            if not alive or not w.proc.is_alive():
                died = self._died(w)
                if died is not None:
                    yield died
                continue
            if w.queue and w.ready and self._overdue(w, time.monotonic())[0]:
                limit = self._limits.get(w.proc.marker.get()[0], self.timeout)
                path = self._blame(w)
                self._discard(w, kill=True)
                self.stats.replaced_workers += 1
                if path is not None:
                    yield Result(path=path, status="timeout", engine=self.engine,
                                 error=f"{path}: no result after {limit:g} s; its extraction process "
                                       "was killed and replaced", seconds=limit)

    def _ready(self, timeout: float) -> set[int]:
        """The processes (``id`` of their _Worker) that sent something or ended, waiting up to ``timeout``
        seconds for one (a plain ``poll`` on their descriptors: ``multiprocessing.connection.wait`` builds a
        selector per call)."""
        if not self._workers:
            return set()
        by_fd: dict[int, _Worker] = {}
        for w in self._workers:
            by_fd[w.conn.fileno()] = w
            if w.proc.sentinel is not None:
                by_fd[w.proc.sentinel] = w
        if not hasattr(select, "poll"):  # pragma: no cover - not Linux
            return {id(by_fd[fd if isinstance(fd, int) else fd.fileno()])
                    for fd in wait([w.conn for w in self._workers], timeout=timeout)}
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        try:
            events = poller.poll(timeout * 1000)
        except InterruptedError:  # pragma: no cover - retried by Python since 3.5
            return set()
        return {id(by_fd[fd]) for fd, _ in events}

    def _handle(self, w: _Worker, msg: Any) -> Iterator[Row]:
        if isinstance(msg, tuple):
            if msg[0] == _READY:
                w.ready = True
                self._start_failures = 0
            elif msg[0] == _SETUP_FAILED:
                self._setup_error = str(msg[1])
            return
        w.heard = time.monotonic()
        for task, row, retiring in msg:
            if not w.queue or task != w.queue[0][0]:
                continue
            w.queue.popleft()
            if retiring:
                w.ready, w.retired = False, True  # it exits after this answer; never hand it another file
                self._requeue(w)
            self._avg = 0.9 * self._avg + 0.1 * max(row[ROW_SECONDS], 1e-5)
            rss = row[ROW_RSS]
            if rss is not None:
                self.stats.rss_mb[w.proc.pid] = rss
            yield row

    def _died(self, w: _Worker) -> Result | None:
        w.proc.join(1)
        code = w.proc.exitcode
        path = self._blame(w) if w.queue else None
        was_ready = w.ready or w.retired
        self._discard(w, kill=True)
        if path is None:
            if was_ready:
                self.stats.replaced_workers += 1  # retired itself after a fatal JVM error
            else:
                self._start_failures += 1
                if self._start_failures >= MAX_START_FAILURES and self._setup_error is None:
                    self._setup_error = f"the process died {MAX_START_FAILURES} times at start ({_describe(code)})"
            return None
        self.stats.replaced_workers += 1
        return self._failure(path, f"its extraction process died while reading it ({_describe(code)}); "
                                   "the process was replaced")

    def _failure(self, path: str, why: str) -> Result:
        return Result(path=path, status="failed", engine=self.engine, error=f"{path}: {why}")


def own_folders(paths: Iterable[Item]) -> list[str]:
    """The folders a process reading ``paths`` (and nothing else) must be allowed: each file's registered
    folder when given as ``(path, root)``, else its own folder and, for a symbolic link, its target's."""
    folders: dict[str, None] = {}
    for item in paths:
        if isinstance(item, tuple):
            folders[item[1]] = None
            continue
        path = os.path.abspath(os.fspath(item))
        folders[os.path.dirname(path)] = None
        folders[os.path.dirname(os.path.realpath(path))] = None
    return list(folders)


#: ``metaextract.extract`` keeps one extraction process for the folder it last read from (and its engine),
#: fenced to that folder, so that repeated calls on one folder keep their JVM warm.
_solo: tuple[tuple[str, tuple[str, ...]], ExtractionPool] | None = None
_solo_lock = threading.Lock()


def extract_fenced(path: str, engine: str = "auto") -> Result:
    """Extract one file in an extraction process that can read only the file's own folder (and what it
    needs itself) and has no network, as ``run`` and ``submit`` read files: no file can make this process
    read, expand or fetch anything outside. The process is reused while files come from the same folder."""
    global _solo
    key = (engine, tuple(sorted(os.path.realpath(f) for f in own_folders([path]))))
    with _solo_lock:
        if _solo is not None and _solo[0] != key:
            _solo[1].close()
            _solo = None
        if _solo is None:
            _solo = (key, ExtractionPool(1, engine=engine, timeout=math.inf, roots=list(key[1])))
        results = list(_solo[1].map([path]))
    return results[0]


@atexit.register
def _close_solo() -> None:
    global _solo
    with _solo_lock:
        if _solo is not None:
            _solo[1].close()
            _solo = None


def _describe(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == 3:
        return "the JVM threw a fatal Error"
    return f"exit code {code}"
