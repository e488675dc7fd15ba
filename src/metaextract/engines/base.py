"""The engine contract: does this engine claim a file, and what OME-XML does it give for it."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol, runtime_checkable


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
