"""The task a Dask worker runs for one job: kept apart from the submitter's code so that a worker, which
unpickles it, imports only the extraction pool (not SQLAlchemy, the store or the CLI)."""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
from collections import OrderedDict
from typing import Any

from metaextract.extraction.limits import DEFAULT_TIMEOUT
from metaextract.result import ROW_PATH, Result

_pools: OrderedDict[tuple[str, float, tuple[str, ...]], Any] = OrderedDict()
_pools_lock = threading.Lock()
MAX_POOLS = 2  # a worker keeps the pools of the last two kinds of task (engine, timeout, experiment) it ran


def _worker_pool(engine: str, timeout: float, roots: tuple[str, ...]) -> Any:
    """This worker's extraction pool for such tasks; its process reads nothing outside ``roots``."""
    from metaextract.extraction.pool import ExtractionPool

    key = (engine, timeout, roots)
    with _pools_lock:
        if key in _pools:
            _pools.move_to_end(key)
            return _pools[key]
        while len(_pools) >= MAX_POOLS:
            _pools.popitem(last=False)[1].close()
        pool = ExtractionPool(1, engine=engine, timeout=timeout, roots=roots)
        _pools[key] = pool
        atexit.register(pool.close)
        return pool


def run_batch(job_id: int, files: list[Any], engine: str = "auto",
              timeout: float = DEFAULT_TIMEOUT, roots: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Extract one job's files on this (Dask worker) process; returns the results to the submitter.
    ``files``: :data:`~metaextract.jobs.executors.base.FileItem` s (a fileset's one read among them).

    ``roots``: the experiment's folders (one pool serves all its tasks); default, the files' own."""
    started = time.time()
    pool = _worker_pool(engine, timeout, roots if roots is not None else tuple(sorted({f[2] for f in files})))
    ids: dict[str, list[int]] = {}
    for item in files:
        ids.setdefault(item[1], []).append(item[0])
    results = []
    for r in pool.map_rows([tuple(item[1:]) for item in files]):
        if r is None:
            continue
        row = r.to_row() if isinstance(r, Result) else r
        results.append((ids[row[ROW_PATH]].pop(0), row))
    try:
        from distributed import get_worker

        worker = str(get_worker().address)
    except (ImportError, ValueError):
        worker = ""
    return {"job_id": job_id, "host": socket.gethostname(), "worker": worker, "pid": os.getpid(),
            "started": started, "ended": time.time(), "results": results}


