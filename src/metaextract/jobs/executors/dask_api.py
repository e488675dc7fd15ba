"""Typed doors to the three ``distributed`` constructors the Dask executor calls.

``Client``, ``LocalCluster`` and ``as_completed`` carry no annotations on ``__init__``, so strict mypy
refuses a call to them in typed code. Each function here states the parameters we pass and returns the
class it builds; the one cast per function says only that the constructor returns its own class.
``distributed`` is imported when a function runs (it costs ~0.5 s), never when this module is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from distributed import Client, LocalCluster, as_completed
    from distributed.deploy.cluster import Cluster

__all__ = ["client", "completions", "local_cluster"]


def client(address: str | Cluster, *, timeout: str | None = None) -> Client:
    """A client of the scheduler at ``address`` (or of ``cluster``'s), waiting at most ``timeout``
    (e.g. ``"10s"``; Dask's configured default when ``None``) for it to answer."""
    from distributed import Client

    make = cast("Callable[..., Client]", Client)
    return make(address) if timeout is None else make(address, timeout=timeout)


def local_cluster(*, n_workers: int, memory_limit: str, dashboard_address: str, silence_logs: int) -> LocalCluster:
    """A LocalCluster of ``n_workers`` single-threaded worker processes."""
    from distributed import LocalCluster

    make = cast("Callable[..., LocalCluster]", LocalCluster)
    return make(n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                dashboard_address=dashboard_address, silence_logs=silence_logs)


def completions() -> as_completed:
    """An empty ``as_completed`` to which futures are added as they are sent."""
    from distributed import as_completed

    return cast("Callable[[], as_completed]", as_completed)()
