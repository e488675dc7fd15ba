"""Bulk work (registering, initialising, submitting up to a million files) without full garbage
collections over everything that existed before it began.

A full collection walks every object the process holds; after the imports of SQLAlchemy, Dask and the
engines that is some 100,000 objects and ~40 ms, and a bulk loop that keeps thousands of rows or
results in hand triggers such collections again and again. :func:`bulk` moves the objects that exist
when the work begins out of the collector's sight (``gc.freeze``) and gives them back when it ends
(``gc.unfreeze``); what the work itself creates is collected as usual.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_ours = False  # whether the freeze in force is ours (a process that froze objects itself is left alone)


@contextmanager
def bulk() -> Iterator[None]:
    """Run the enclosed bulk work with the objects that exist now frozen (nested and threaded use are fine)."""
    global _depth, _ours
    with _lock:
        if _depth == 0:
            _ours = gc.get_freeze_count() == 0
            if _ours:
                gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _ours:
                gc.unfreeze()
                _ours = False
