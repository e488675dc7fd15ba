"""The per-file clock of an extraction process, and the one-off start-ups that do not count on it.

A pool's timeout is meant for a file, not for the first JVM start in a fresh process (seconds on a busy
machine, plus loading Bio-Formats' reader classes). An engine wraps such a start-up in
:func:`starting_up`; inside a pool's extraction process the file's deadline is then moved
:data:`START_GRACE` seconds later for its duration, and its clock starts again when the start-up is done.
Outside a pool nothing happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Extra seconds a one-off start-up may take on top of a file's timeout before its process is replaced.
START_GRACE = 120.0

#: Set by the pool's extraction process: called with the extra seconds to allow from now on.
hook: Callable[[float], None] | None = None


@contextmanager
def starting_up() -> Iterator[None]:
    """Run a one-off start-up (e.g. the JVM) outside the current file's timeout."""
    if hook is not None:
        hook(START_GRACE)
    try:
        yield
    finally:
        if hook is not None:
            hook(0.0)
