"""Read the files here, in extraction processes of this process (``run --job N``, ``submit --cluster local``).

One machine needs no Dask: the files stream through one :class:`~metaextract.extraction.pool.ExtractionPool`
(a process per core, each keeping its engines and, when a file needs Bio-Formats, its JVM for the whole
run). The pool contains every fault per file: a file past its timeout, or one whose reading kills its
process, gets its own verdict while the other files go on.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from metaextract.extraction.pool import ExtractionPool
from metaextract.jobs.executors.base import Batch, Event, Read, work
from metaextract.result import Result
from metaextract.store.holders import this_host


class LocalExecutor:
    """An extraction pool of ``workers`` processes here (started as files arrive, at most one per file),
    reading nothing outside ``roots``; or ``pool``, an open one the caller keeps (anything with
    ``map((path, root) items) -> Results``). ``who`` names this process in the logs."""

    def __init__(self, workers: int | None = None, *, engine: str = "auto", timeout: float = 120.0,
                 heap_mb: int | None = None, roots: Sequence[str] | None = None, pool: Any = None,
                 who: str = "the submitter", eager: bool = False) -> None:
        self.host = this_host()
        self.where = f"{self.host} (extraction processes of {who}, pid {os.getpid()})"
        self._given = pool
        self._args = (workers, engine, timeout, heap_mb, roots)
        self._pool: Any = None
        self._eager = eager  # start every process at once (they import their engines while jobs are claimed)

    def __enter__(self) -> LocalExecutor:
        if self._given is None:
            workers, engine, timeout, heap_mb, roots = self._args
            self._pool = ExtractionPool(workers or os.cpu_count() or 1, engine=engine, timeout=timeout,
                                        heap_mb=heap_mb, roots=roots)
            if self._eager:
                self._pool.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def results(self, batches: Iterator[Batch]) -> Iterator[Event]:
        """Every file's Result as the pool answers it; ticks (``None``) between, when the pool is ours."""
        sent: dict[str, deque[int]] = {}  # path -> image file ids, in the order sent

        def paths() -> Iterator[Any]:
            for batch in batches:
                for item in batch.files:
                    sent.setdefault(item[1], deque()).append(item[0])
                    yield work(item)

        items: Iterator[Any] = (self._pool.map_rows(paths(), ticks=True) if self._pool is not None
                                else self._given.map(paths()))
        for item in items:
            if item is None:
                yield None
                continue
            result = item if isinstance(item, Result) else Result.from_row(item)
            ids = sent.get(result.path)
            if ids:
                fid = ids.popleft()
                if not ids:
                    del sent[result.path]
                yield Read(fid, result, self.host, self.where)
