"""The engine contract: does this engine claim a file, and what OME-XML does it give for it."""

from __future__ import annotations

import os
import struct
import threading
from functools import cache
from typing import Generic, Protocol, TypeVar, runtime_checkable

from metaextract.extraction import snapshot

T = TypeVar("T")

#: What a native engine claims a file with: its magic bytes plus a structural check (beats Bio-Formats' catch-all 1;
#: an engine with stronger evidence, such as a document of its own kind inside a TIFF, claims more).
CLAIM = 50


class KeyFieldsOnly(int):
    """A claim on a file whose document this engine gives with Bio-Formats' key fields but not whole.

    ``auto`` never takes such a claim (:func:`metaextract.engines.choose`): there a native engine answers
    only where its document, after :func:`metaextract.ome.normalise`, equals Bio-Formats' whole, so the
    default never gives less than Bio-Formats. The answer stays available under the engine's own name.
    """


def key_fields_only(score: int) -> KeyFieldsOnly:
    """``score`` marked as a claim :func:`metaextract.engines.choose` ignores in ``auto`` (see
    :class:`KeyFieldsOnly`)."""
    return KeyFieldsOnly(score)


@cache
def package_version(name: str) -> str:
    """An installed distribution's version, looked up once per process (without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

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

    Whole-document parity: ``auto`` lets a native engine answer only where its document equals
    Bio-Formats' whole (after :func:`metaextract.ome.normalise`). An engine that agrees on the key fields
    only for every file it reads says so with a class attribute ``whole_document_in_auto = False``; one
    that agrees whole for some of its files returns :func:`key_fields_only` from ``claim`` for the others.
    Either way ``auto`` leaves the file to the next claim (in the end Bio-Formats), and the engine still
    answers when asked for by name.
    """

    name: str

    def version(self) -> str: ...

    def claim(self, path: str, head: bytes) -> int: ...

    def extract(self, path: str) -> str: ...


class ClaimMemo(Generic[T]):
    """What an engine's ``claim`` found out about the last file, for its ``extract`` to use once.

    It answers only for the same path, unchanged since: within one extraction (the file's bytes held by
    :mod:`metaextract.extraction.snapshot`) by that read's token, otherwise by the file's modification time.
    """

    def __init__(self) -> None:
        self._last: tuple[str, tuple[int, float], T] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _stamp(path: str) -> tuple[int, float]:
        snap = snapshot.current(path)
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


class Declined(Exception):
    """A file of a kind an engine has not been shown to read as Bio-Formats does; the message says which."""


class ReaderEngine(Generic[T]):
    """The claim and extract of a native engine built on one reader of its own.

    A subclass says which files may be its kind (:meth:`wants`, from the name and the first bytes), how to
    read one (:meth:`read`: raises :class:`Declined` for a kind not proven, :class:`ExtractionError` for
    damage) and how to write its OME-XML (:meth:`render`). What ``claim`` read is kept for ``extract``.
    """

    name: str
    score: int = CLAIM  #: what ``claim`` answers for a file this engine reads
    #: the name endings (lower case) and the first bytes :meth:`wants` requires, when it does: ``auto`` then
    #: asks this engine only about files that have them (see :func:`metaextract.engines.choose`)
    suffixes: tuple[str, ...] | None = None
    magic: bytes | None = None
    kind: str = "a file"  #: for messages: "{kind} of a kind this engine does not read"
    label: str = "the file"  #: for messages: "{label} cannot be read: ..."
    #: errors of a broken file that ``extract`` reports as an :class:`ExtractionError`
    unreadable: tuple[type[Exception], ...] = (OSError, ValueError, struct.error, MemoryError)

    def __init__(self) -> None:
        self._memo: ClaimMemo[T] = ClaimMemo()

    def version(self) -> str:
        """metaextract's version: the reader is its own code."""
        return f"{package_version('metaextract')}-{self.name}"

    def wants(self, path: str, head: bytes) -> bool:
        raise NotImplementedError

    def read(self, path: str) -> T:
        raise NotImplementedError

    def render(self, found: T) -> str:
        raise NotImplementedError

    def check_unclaimed(self, path: str) -> None:
        """Before ``extract`` reads a file ``claim`` did not take: raise for one that is plainly not its format."""

    def claim(self, path: str, head: bytes) -> int:
        if not self.wants(path, head):
            return 0
        try:
            found = self.read(path)
        except Exception:  # noqa: BLE001 - a file this engine cannot parse is simply not claimed
            return 0
        self._memo.keep(path, found)
        return self.score

    def extract(self, path: str) -> str:
        """The OME-XML of ``path`` (raises :class:`ExtractionError` for a file this engine declines)."""
        return self.render(self.found(path))

    def found(self, path: str) -> T:
        """What :meth:`claim` read of ``path``, or :meth:`read` now; a declined or broken file raises
        :class:`ExtractionError` saying why."""
        found = self._memo.take(path)
        if found is None:
            self.check_unclaimed(path)
            try:
                found = self.read(path)
            except Declined as exc:
                raise ExtractionError(f"{self.kind} of a kind this engine does not read (use Bio-Formats): {exc}") \
                    from None
            except ExtractionError:
                raise
            except self.unreadable as exc:
                raise ExtractionError(f"{self.label} cannot be read: {exc}") from None
        return found
