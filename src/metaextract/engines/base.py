"""The engine contract: does this engine claim a file, and what OME-XML does it give for it."""

from __future__ import annotations

import os
import threading
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Generic, Protocol, TypeVar, runtime_checkable

from .. import _snapshot

T = TypeVar("T")


@cache
def package_version(name: str) -> str:
    """An installed distribution's version, looked up once per process (without importing it)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


class ExtractionError(Exception):
    """An engine could not read a file; the message says why, in one line.

    Parameters
    ----------
    message : str
        What went wrong.
    fatal : bool
        True when the process that raised it should not be trusted with more files (e.g. the JVM
        threw ``OutOfMemoryError``); the worker pool then replaces that process.
    """

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class UnsupportedFormatError(ExtractionError):
    """The engine does not know the file's format (the file is not an image it can read)."""


@runtime_checkable
class Engine(Protocol):
    """What every engine provides.

    ``claim`` returns 0 when the engine does not want the file, otherwise a number that is higher the
    more specific its evidence is (magic bytes beat file names); ``auto`` takes the highest claim.
    """

    name: str

    def version(self) -> str: ...

    def claim(self, path: str, head: bytes) -> int: ...

    def extract(self, path: str) -> str: ...


class ClaimMemo(Generic[T]):
    """What an engine's ``claim`` found out about the last file, for its ``extract`` to use once.

    It answers only for the same path, unchanged since: within one extraction (the file's bytes held by
    :mod:`metaextract._snapshot`) by that read's token, otherwise by the file's modification time.
    """

    def __init__(self) -> None:
        self._last: tuple[str, tuple[int, float], T] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _stamp(path: str) -> tuple[int, float]:
        snap = _snapshot.current(path)
        if snap is not None:
            return (snap.token, 0.0)
        try:
            return (0, os.stat(path).st_mtime)
        except OSError:
            return (0, -1.0)

    def keep(self, path: str, found: T) -> None:
        with self._lock:
            self._last = (path, self._stamp(path), found)

    def take(self, path: str) -> T | None:
        """What was kept for ``path`` if it is still the same file (forgotten either way)."""
        with self._lock:
            last, self._last = self._last, None
        if last is not None and last[0] == path and last[1] == self._stamp(path):
            return last[2]
        return None
