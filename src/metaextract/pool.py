"""A small pool of extraction processes, each holding one JVM (and its engines) for its whole life.

A process is the unit of containment: a file past its timeout gets its process killed and replaced
(status ``timeout``); a process that dies (JVM abort, segfault, ``kill -9``, OutOfMemoryError) is
replaced and its current file recorded as ``failed`` with the reason; the other files go on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .result import Result

DEFAULT_TIMEOUT = 120.0
# Files handed to a process at once (it answers each as it finishes): saves a round trip per file where
# files are fast; a chunk aims at CHUNK_SECONDS of work so slow files are still spread over the processes.
MAX_CHUNK = 16
CHUNK_SECONDS = 0.02
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


def _worker_main(conn: Connection, engine: str, warm: bool, heap_mb: int | None) -> None:
    """Body of an extraction process: warm up, then answer (task, path) messages until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    if heap_mb:
        os.environ["METAEXTRACT_JAVA_HEAP_MB"] = str(heap_mb)
    from ._extract import FatalWorkerError, extract_file

    if warm:
        try:
            from . import engines

            engines.get("bioformats").version()  # starts the JVM before the first timed file
        except Exception as exc:  # noqa: BLE001
            conn.send((_SETUP_FAILED, f"{type(exc).__name__}: {exc}"))
            return
    conn.send((_READY, os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        for task, path, root in msg:  # a chunk of files, answered one by one
            try:
                result = extract_file(path, engine, raise_fatal=True, root=root)
            except FatalWorkerError as exc:
                exc.result.notes.append("the worker process was replaced after this file")
                conn.send((task, exc.result.to_dict(), _rss_mb(), True))
                os._exit(3)
            conn.send((task, result.to_dict(), _rss_mb(), False))


class _Process:
    """A child interpreter started with subprocess (not multiprocessing), so pools also work inside
    daemonic processes such as Dask workers; it talks over a socket pair wrapped as a Connection."""

    def __init__(self, engine: str, warm: bool, heap_mb: int | None) -> None:
        parent, child = socket.socketpair()
        fd = child.fileno()
        cmd = [sys.executable, "-c", "from metaextract.pool import _child_main; _child_main()",
               str(fd), engine, "1" if warm else "0", str(heap_mb or 0)]
        self.popen = subprocess.Popen(cmd, pass_fds=(fd,), stdin=subprocess.DEVNULL, close_fds=True)
        child.close()
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
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def close(self) -> None:
        if self.sentinel is not None:
            with contextlib.suppress(OSError):
                os.close(self.sentinel)
            self.sentinel = None


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
    isolate_network()
    _worker_main(Connection(int(fd)), engine, warm, heap or None)


@dataclass
class _Worker:
    proc: _Process
    ready: bool = False
    retired: bool = False
    # files sent to it and not answered yet, in the order it reads them; the first is being read
    queue: deque[tuple[int, str, str | None]] = field(default_factory=deque)
    deadline: float = 0.0

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


class ExtractionPool:
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
    """

    def __init__(self, workers: int | None = None, *, engine: str = "auto", timeout: float = DEFAULT_TIMEOUT,
                 heap_mb: int | None = None) -> None:
        from . import engines

        if engine != "auto" and engine not in engines.available():
            raise ValueError(f"unknown engine {engine!r}; available: {', '.join(engines.available())} or auto")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.size = max(1, workers or os.cpu_count() or 1)
        self.engine = engine
        self.timeout = float(timeout)
        self.heap_mb = heap_mb
        self.stats = PoolStats()
        self._workers: list[_Worker] = []
        self._start_failures = 0
        self._setup_error: str | None = None
        self._pending: deque[tuple[int, str, str | None]] = deque()
        self._avg = CHUNK_SECONDS  # running mean of seconds per file (starts at one file per chunk)

    # -- process management -------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        # Only a Bio-Formats pool starts its JVM before the first file; in ``auto`` the JVM (~1-4 s of CPU,
        # ~100 MB) starts when Bio-Formats first gets a file, so a plate of native-read TIFFs never pays it.
        warm = self.engine == "bioformats"
        proc = _Process(self.engine, warm, self.heap_mb)
        self.stats.started_workers += 1
        w = _Worker(proc=proc)
        self._workers.append(w)
        return w

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

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop -----------------------------------------------------------------------------------
    def map(self, paths: Iterable[str | os.PathLike[str] | tuple[str, str]]) -> Iterator[Result]:
        """Extract every path; an item may be ``(path, root)`` so a path resolving outside its registered
        folder ``root`` is refused. Yields Results (``Result.path`` as given) in completion order."""
        pending: deque[tuple[int, str, str | None]] = deque()
        source = iter(paths)
        exhausted = False
        next_id = 0

        def refill() -> None:
            nonlocal exhausted, next_id
            while not exhausted and len(pending) < self.size * MAX_CHUNK * 4:
                try:
                    p = next(source)
                except StopIteration:
                    exhausted = True
                    return
                if isinstance(p, tuple):
                    pending.append((next_id, os.fspath(p[0]), os.fspath(p[1])))
                else:
                    pending.append((next_id, os.fspath(p), None))
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
            for w in self._workers:
                n = max(1, min(MAX_CHUNK, len(pending) // (2 * self.size), int(CHUNK_SECONDS / self._avg)))
                # the next chunk goes out while the process is still on the second half of its current
                # one, so it never waits for a round trip; slow files (n == 1) go one at a time
                if w.ready and pending and len(w.queue) <= n // 2:
                    chunk = [pending.popleft() for _ in range(min(n, len(pending)))]
                    if not w.queue:  # the clock runs for the file being read: the first in the queue
                        w.deadline = time.monotonic() + self.timeout
                    w.queue.extend(chunk)
                    with contextlib.suppress(BrokenPipeError, OSError):  # a death is reported below
                        w.conn.send(chunk)
                    refill()
            yield from self._wait_once()

    def _requeue(self, w: _Worker) -> None:
        """Give the files a process was sent but had not started back to the pool, in order."""
        while w.queue:
            self._pending.appendleft(w.queue.pop())

    def _wait_once(self) -> Iterator[Result]:
        now = time.monotonic()
        deadlines = [w.deadline for w in self._workers if w.queue]
        wait_for = max(0.0, min(deadlines) - now) if deadlines else 1.0
        objs: list[Any] = []
        for w in self._workers:
            objs.append(w.conn)
            if w.proc.sentinel is not None:
                objs.append(w.proc.sentinel)
        ready = set(wait(objs, timeout=min(wait_for, 1.0))) if objs else set()
        for w in list(self._workers):
            alive = True
            if w.conn in ready or w.proc.sentinel in ready:
                try:
                    while w.conn.poll():
                        result = self._handle(w, w.conn.recv())
                        if result is not None:
                            yield result
                except (EOFError, OSError):
                    alive = False
            if not alive or not w.proc.is_alive():
                died = self._died(w)
                if died is not None:
                    yield died
                continue
            if w.queue and time.monotonic() > w.deadline:
                path = w.queue.popleft()[1]
                self._requeue(w)
                self._discard(w, kill=True)
                self.stats.replaced_workers += 1
                yield Result(path=path, status="timeout", engine=self.engine,
                             error=f"{path}: no result after {self.timeout:g} s; its extraction process was "
                                   "killed and replaced", seconds=self.timeout)

    def _handle(self, w: _Worker, msg: tuple[Any, ...]) -> Result | None:
        tag = msg[0]
        if tag == _READY:
            w.ready = True
            self._start_failures = 0
            return None
        if tag == _SETUP_FAILED:
            self._setup_error = str(msg[1])
            return None
        task, data, rss, retiring = msg
        if not w.queue or task != w.queue[0][0]:
            return None
        w.queue.popleft()
        w.deadline = time.monotonic() + self.timeout  # the clock starts again for its next file
        if retiring:
            w.ready, w.retired = False, True  # it exits after this answer; never hand it another file
            self._requeue(w)
        result = Result.from_dict(data)
        result.rss_mb = rss
        self._avg = 0.9 * self._avg + 0.1 * max(result.seconds, 1e-4)
        if rss is not None:
            self.stats.rss_mb[w.proc.pid] = rss
        return result

    def _died(self, w: _Worker) -> Result | None:
        w.proc.join(1)
        code = w.proc.exitcode
        path = w.queue.popleft()[1] if w.queue else None
        self._requeue(w)
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
