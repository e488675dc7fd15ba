"""The task a Dask worker runs for one job: kept apart from the submitter's code so that a worker, which
unpickles it, imports only the extraction pool (not SQLAlchemy, the store or the CLI)."""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
from typing import Any

from ..result import Result

_pools: dict[tuple[str, float], Any] = {}
_pools_lock = threading.Lock()


def _worker_pool(engine: str, timeout: float) -> Any:
    from ..pool import ExtractionPool

    key = (engine, timeout)
    with _pools_lock:
        if key not in _pools:
            pool = ExtractionPool(1, engine=engine, timeout=timeout)
            _pools[key] = pool
            atexit.register(pool.close)
        return _pools[key]


def run_batch(job_id: int, files: list[tuple[int, str, str]], engine: str = "auto",
              timeout: float = 120.0) -> dict[str, Any]:
    """Extract one job's files on this (Dask worker) process; returns the results to the submitter."""
    started = time.time()
    pool = _worker_pool(engine, timeout)
    ids: dict[str, list[int]] = {}
    for fid, path, _root in files:
        ids.setdefault(path, []).append(fid)
    results = []
    for r in pool.map_dicts([(p, root) for _, p, root in files]):
        if r is None:
            continue
        data = r.to_dict() if isinstance(r, Result) else r
        results.append((ids[data["path"]].pop(0), data))
    try:
        from distributed import get_worker

        worker = str(get_worker().address)
    except (ImportError, ValueError):
        worker = ""
    return {"job_id": job_id, "host": socket.gethostname(), "worker": worker, "pid": os.getpid(),
            "started": started, "ended": time.time(), "results": results}


