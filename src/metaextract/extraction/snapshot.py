"""The bytes of the file being extracted, read once.

:func:`metaextract.extraction.pipeline.extract_file` reads the first :data:`WHOLE` bytes of a file (the whole of a
small one, such as a plate's single-plane TIFF) and hands them, in the file's
:class:`~metaextract.engines.base.FileContext`, to the sanity checks and the engines, which take them from
memory instead of opening the file again. What is worked out from its bytes lives in its ``derived``:
nothing about a file outlives its extraction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

WHOLE = 64 << 10


@dataclass(frozen=True)
class Snapshot:
    """The first bytes of ``path`` as read at one moment; ``complete`` when they are the whole file."""

    path: str
    data: bytes
    complete: bool
    #: what was worked out from these bytes for this one extraction (e.g. the TIFF walk the checks before
    #: and after the engine share), by what it is: it lives and dies with the snapshot, never across files
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def read_prefix(path: str | os.PathLike[str], size: int, known: int | None = None) -> bytes:
    """Up to ``size`` bytes from the start of ``path``, with plain system calls (raises OSError like ``open``);
    a short read is read on (e.g. on network file systems). ``known``, the file's size as just seen by
    ``stat``, spares the read that would only find the end of a smaller file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks = []
        got = 0
        want = size if known is None or known <= 0 else min(size, known)
        while got < want:
            chunk = os.read(fd, size - got)  # (asks for all of size: a file grown since stat is read on)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def take(path: str, known: int | None = None) -> Snapshot:
    """Read ``path``'s first :data:`WHOLE` bytes (raises OSError like ``open``); ``known``: its size, if just seen."""
    data = read_prefix(path, WHOLE + 1, known)  # one byte more tells whether that was the whole file
    return Snapshot(path, data[:WHOLE], len(data) <= WHOLE)


