"""The engine contract: does this engine claim a file, and what OME-XML does it give for it."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

from metaextract.extraction.limits import START_GRACE
from metaextract.extraction.snapshot import Snapshot

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


def head_of(path: str, size: int, error: type[ExtractionError] = ExtractionError) -> bytes:
    """The first ``size`` bytes of ``path``; a file that cannot be read raises ``error`` ("cannot read: why")."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}") from None


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


class FileContext(NamedTuple):
    """What a built-in engine is told about the one file it is asked about; it reads nothing else about it.

    ``held``: the file's first bytes as :func:`metaextract.extraction.pipeline.extract_file` read them once
    (:class:`~metaextract.extraction.snapshot.Snapshot`; its ``derived`` holds what was worked out from them,
    such as the TIFF walk the checks share), or None when the engine is called directly. ``stat``: the file's
    ``os.stat`` when it was taken. ``grace``: called with the extra seconds a one-off start-up (the JVM) may
    take on top of the file's timeout, and with 0 when it is done (a pool's extraction process gives it;
    None elsewhere). A context lives for one extraction of one file and is never kept. (A named tuple:
    made once per file, it costs no more than one.)
    """

    path: str
    head: bytes = b""
    held: Snapshot | None = None
    stat: os.stat_result | None = None
    grace: Callable[[float], None] | None = None

    @property
    def whole(self) -> bytes | None:
        """The whole file when the held bytes are all of it, else None (read it from disk)."""
        held = self.held
        return held.data if held is not None and held.complete and held.path == self.path else None

    @contextmanager
    def starting_up(self) -> Iterator[None]:
        """Run a one-off start-up (e.g. the JVM) outside this file's timeout (no-op without ``grace``)."""
        grace = self.grace
        if grace is not None:
            grace(START_GRACE)
        try:
            yield
        finally:
            if grace is not None:
                grace(0.0)


class Claim(NamedTuple, Generic[T]):
    """An engine's answer about one file: its score (0: not wanted), and what it read to find out, which
    :meth:`ContextEngine.extract_in` is then given instead of reading the file again. (A named tuple: every
    engine that may read a file answers one per file.)"""

    score: int
    found: T | None = None


#: the answer of an engine that does not want a file (one object for all: a claim is immutable)
NOT_WANTED: Claim[Any] = Claim(0)


class ContextEngine(Generic[T]):
    """The contract of a built-in engine: ``claim_in(ctx)`` says how much it wants a file and hands on what
    it read; ``extract_in(ctx, found)`` gives the OME-XML from that (or reads the file when ``found`` is
    None). The plain ``claim(path, head)``/``extract(path)`` of :class:`Engine` are built on them, with a
    context made of the path alone (plug-in engines and direct callers use those).
    """

    name: str

    def version(self) -> str:
        raise NotImplementedError

    def claim_in(self, ctx: FileContext) -> Claim[T]:
        raise NotImplementedError

    def extract_in(self, ctx: FileContext, found: T | None = None) -> str:
        raise NotImplementedError

    def extract_noted_in(self, ctx: FileContext, found: T | None = None) -> tuple[str, list[str]]:
        """The OME-XML and notes for the Result (an engine with something to say overrides this)."""
        return self.extract_in(ctx, found), []

    def prepare(self, ctx: FileContext) -> None:
        """Before anything else is asked of this engine about ``ctx``'s file: a one-off start-up (under
        ``ctx.starting_up()``). Nothing by default."""

    def claim(self, path: str, head: bytes) -> int:
        return self.claim_in(FileContext(path, head)).score

    def extract(self, path: str) -> str:
        """The OME-XML of ``path`` (raises :class:`ExtractionError` for a file this engine declines)."""
        return self.extract_in(FileContext(path))


def in_context(eng: object, method: str) -> bool:
    """Whether ``eng`` is asked through its context method for ``method`` (``"claim"`` or ``"extract"``): a
    :class:`ContextEngine` whose class keeps the plain method built on it. One that replaces the plain method
    (a subclass, a test's stand-in) is asked that, as a plug-in engine is."""
    return isinstance(eng, ContextEngine) and getattr(type(eng), method) is getattr(ContextEngine, method)


class Declined(Exception):
    """A file of a kind an engine has not been shown to read as Bio-Formats does; the message says which."""


class ReaderEngine(ContextEngine[T]):
    """The claim and extract of a native engine built on one reader of its own.

    A subclass says which files may be its kind (:meth:`wants`, from the name and the first bytes), how to
    read one (:meth:`read`: raises :class:`Declined` for a kind not proven, :class:`ExtractionError` for
    damage) and how to write its OME-XML (:meth:`render`). What ``claim_in`` read is handed to
    ``extract_in`` (:class:`Claim`). A reader that uses the held bytes overrides :meth:`wants_in` and
    :meth:`read_in` (which take the whole :class:`FileContext`) instead.
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

    def version(self) -> str:
        """metaextract's version: the reader is its own code."""
        return f"{package_version('metaextract')}-{self.name}"

    def wants(self, path: str, head: bytes) -> bool:
        raise NotImplementedError

    def read(self, path: str) -> T:
        raise NotImplementedError

    def render(self, found: T) -> str:
        raise NotImplementedError

    def wants_in(self, ctx: FileContext) -> bool:
        return self.wants(ctx.path, ctx.head)

    def read_in(self, ctx: FileContext) -> T:
        return self.read(ctx.path)

    def read_unclaimed(self, ctx: FileContext) -> T:
        """:meth:`read_in` for a file ``claim_in`` did not take (e.g. without the claim's folder caches)."""
        return self.read_in(ctx)

    def check_unclaimed(self, path: str) -> None:
        """Before ``extract`` reads a file ``claim`` did not take: raise for one that is plainly not its format."""

    def claim_in(self, ctx: FileContext) -> Claim[T]:
        if not self.wants_in(ctx):
            return NOT_WANTED
        try:
            found = self.read_in(ctx)
        except Exception:  # noqa: BLE001 - a file this engine cannot parse is simply not claimed
            return NOT_WANTED
        return Claim(self.score, found)

    def extract_in(self, ctx: FileContext, found: T | None = None) -> str:
        """The OME-XML of the file (raises :class:`ExtractionError` for a file this engine declines)."""
        return self.render(self.found_in(ctx, found))

    def found(self, path: str) -> T:
        """:meth:`read` of ``path``, a declined or broken file raising :class:`ExtractionError` saying why."""
        return self.found_in(FileContext(path))

    def found_in(self, ctx: FileContext, found: T | None = None) -> T:
        """``found`` (what ``claim_in`` read), or :meth:`read_unclaimed` now; a declined or broken file raises
        :class:`ExtractionError` saying why."""
        if found is None:
            self.check_unclaimed(ctx.path)
            try:
                found = self.read_unclaimed(ctx)
            except Exception as exc:  # noqa: BLE001 - every failure becomes the engine's own error
                raise self.failure(exc) from None
        return found

    def failure(self, exc: Exception) -> Exception:
        """The error ``extract`` raises for ``exc`` from reading a file it did not claim."""
        if isinstance(exc, Declined):
            return ExtractionError(f"{self.kind} of a kind this engine does not read (use Bio-Formats): {exc}")
        if isinstance(exc, ExtractionError) or not isinstance(exc, self.unreadable):
            return exc
        return ExtractionError(f"{self.label} cannot be read: {exc}")
