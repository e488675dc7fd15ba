"""Extract one file in this process: pick the engine, run it, validate, and always return a Result."""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable

from metaextract import engines
from metaextract.engines.base import ContextEngine, ExtractionError, FileContext, UnsupportedFormatError, in_context
from metaextract.engines.notimage import why_not_an_image
from metaextract.engines.rescue import rescuers
from metaextract.extraction import fence, sanity, snapshot
from metaextract.ome import Written, validate, written_key
from metaextract.result import Result, one_line


class FatalWorkerError(Exception):
    """Carries a Result whose engine left this process unfit for more files (e.g. JVM OutOfMemoryError)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.error)
        self.result = result


_ESCAPE = re.compile(rb"\\x([0-9a-f]{2})")


def undecodable_name(path: str) -> bool:
    """Whether ``path`` is the stored form of a file whose name is not valid UTF-8 (and that file exists)."""
    return os_path(path) != path


def os_path(path: str) -> str:
    """The path to open for a stored name: ``path`` itself when it exists, else, when it holds ``\\xNN``
    escapes (:func:`metaextract.experiment.storable_name`) and the bytes they stand for name a file, those
    bytes as the operating system's ``str`` form (surrogate escapes, :func:`os.fsdecode`). A file whose
    name is not UTF-8 is thus read like any other; results and errors keep the stored name."""
    if "\\x" not in path or os.path.lexists(path):
        return path
    raw = _ESCAPE.sub(lambda m: bytes.fromhex(m.group(1).decode()), path.encode("utf-8", "surrogateescape"))
    return os.fsdecode(raw) if os.path.lexists(raw) else path


def _precheck(path: str, st: os.stat_result | None = None) -> tuple[str | None, os.stat_result | None]:
    """Why ``path`` cannot be read at all (or None), and its ``stat`` when it can; ``st``: its ``stat``, if
    just taken.

    ``path`` is the one to open (:func:`os_path`), not necessarily the stored name."""
    try:
        st = st or os.stat(path)
    except FileNotFoundError:
        return "file not found", None
    except PermissionError:
        return "permission denied", None
    except OSError as exc:
        return f"cannot stat: {exc.strerror or exc}", None
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a file", None
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file", None
    if st.st_size == 0:
        return "empty file (0 bytes)", None
    return None, st


def read_head(path: str | os.PathLike[str], size: int = engines.HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of ``path`` (what an engine's ``claim`` is given)."""
    with open(path, "rb") as fh:
        return fh.read(size)


def _beyond(eng: engines.Engine, path: str, head: bytes, failure: ExtractionError,
            notes: list[str]) -> tuple[str, tuple[str, str] | None]:
    """In ``auto``, where Bio-Formats fails: read the file alone (grouping off), say it is no image, or let
    a rescue engine (:mod:`metaextract.engines.rescue`) read what Bio-Formats cannot.

    Returns the XML and, when a rescuer read it, that engine's name and version. Raises the original failure when
    nothing helps, :class:`UnsupportedFormatError` for a non-image.
    """
    bf_said = one_line(str(failure), 200)
    alone = getattr(eng, "extract_alone", None)
    if alone is not None:
        try:
            xml = str(alone(path))
        except ExtractionError as exc:
            if exc.fatal:
                raise
        else:
            notes.append(f"read alone: the grouped read failed ({bf_said})")
            return xml, None
    reason = why_not_an_image(path, head)
    if reason is not None:
        raise UnsupportedFormatError(f"{reason}; Bio-Formats: {bf_said}") from None
    candidates = []
    for name in engines.available():
        try:
            candidates.append(engines.get(name))
        except Exception:  # noqa: BLE001, S112 - a broken plug-in engine must not hide Bio-Formats' failure
            continue
    for rescuer in rescuers(candidates, path, head):
        try:
            xml, own_notes = rescuer.rescue(path)
        except ExtractionError:
            continue
        label = (rescuer.name, rescuer.version())
        notes.append(f"read by {' '.join(label)} because Bio-Formats cannot read it ({bf_said})")
        notes.extend(own_notes)
        return xml, label
    raise failure


def _run(eng: engines.Engine, ctx: FileContext, found: object, notes: list[str]) -> str:
    """The engine's XML for ``ctx``'s file, given what its claim read (``found``); its notes (e.g. that it
    answered for a file Bio-Formats cannot read, without asking Bio-Formats) are added to the Result's. A
    plug-in engine is asked ``extract(path)``, or ``extract_noted(path) -> (xml, notes)`` when it has that."""
    if isinstance(eng, ContextEngine) and in_context(eng, "extract"):
        xml, own = eng.extract_noted_in(ctx, found)
        notes.extend(own)
        return xml
    noted = getattr(eng, "extract_noted", None)
    if noted is None:
        return eng.extract(ctx.path)
    xml, own = noted(ctx.path)
    notes.extend(own)
    return str(xml)


#: What XML 1.0 forbids in a document (lone surrogates aside: :func:`_storable` escapes those)
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _storable(xml: str, notes: list[str]) -> str:
    """XML that any database, encoder and XML parser takes: lone surrogates (from undecodable file names)
    escaped, characters XML 1.0 forbids removed (said in ``notes``).

    The last guard: the native writer (whose documents are not searched again) and Bio-Formats leave none
    of these, so the checks cost one pass each over any other document that passes them.
    """
    try:
        xml.encode("utf-8")
    except UnicodeEncodeError:
        xml = xml.encode("utf-8", "backslashreplace").decode("utf-8")
    if not isinstance(xml, Written) and _FORBIDDEN.search(xml) is not None:
        xml, removed = _FORBIDDEN.subn("", xml)
        notes.append(f"{removed} character(s) that XML 1.0 forbids removed from the engine's OME-XML")
    return xml


def extract_file(path: str, engine: str = "auto", *, raise_fatal: bool = False, root: str | None = None,
                 grace: Callable[[float], None] | None = None) -> Result:
    """Extract ``path``; never raises for a bad file (only for an unknown engine name).

    ``root``, when given, is the registered folder the file belongs to: a path that now resolves outside
    it (a symlink retargeted after registration) is refused, not read.

    With ``raise_fatal`` a failure that leaves the process unfit (the JVM threw an ``Error``) is
    raised as :class:`FatalWorkerError` after the Result is built, so a worker can report and exit.

    ``grace``, from a pool's extraction process, is called with the extra seconds a one-off start-up (the
    JVM) may take on top of the file's timeout, and with 0 when it is done (:class:`FileContext`).

    ``path`` may be a stored name with ``\\xNN`` escapes (a name that is not UTF-8): the file its bytes
    name is read (:func:`os_path`), and the Result keeps ``path``.
    """
    real = os_path(path)
    if real == path:
        return _extract_file(path, engine, raise_fatal=raise_fatal, root=root, grace=grace)
    try:
        return _as_stored(_extract_file(real, engine, raise_fatal=raise_fatal, root=root, grace=grace), path, real)
    except FatalWorkerError as exc:
        raise FatalWorkerError(_as_stored(exc.result, path, real)) from None


def _as_stored(result: Result, stored: str, real: str) -> Result:
    """``result`` of the file ``real`` named by its stored name (no surrogates reach a database)."""
    result.path = stored
    if result.error:  # an engine's message may name the file too: its undecodable bytes as \\xNN, like the name
        escaped = result.error.replace(real, stored).encode("utf-8", "surrogateescape")
        result.error = escaped.decode("utf-8", "backslashreplace")
    return result


def _extract_file(path: str, engine: str, *, raise_fatal: bool, root: str | None,
                  grace: Callable[[float], None] | None) -> Result:
    start = time.perf_counter()
    problem, st = fence.outside_root_stat(path, root) if root is not None else (None, None)
    if problem is None:
        problem, st = _precheck(path, st)
    snap: snapshot.Snapshot | None = None
    if problem is None:
        try:
            snap = snapshot.take(path, st.st_size if st is not None else None)
        except PermissionError:
            problem = "permission denied"
        except OSError as exc:
            problem = f"cannot read: {exc.strerror or exc}"
    if snap is None:
        return _finish(FileContext(path), engine, problem, start)
    ctx = FileContext(path, snap.data[:engines.HEAD_BYTES], snap, st, grace)
    return _finish(ctx, engine, problem, start, raise_fatal=raise_fatal)


def _finish(ctx: FileContext, engine: str, problem: str | None, start: float, *,
            raise_fatal: bool = False) -> Result:
    path, head = ctx.path, ctx.head
    if problem is None:
        problem = sanity.refuse(path, head, ctx.held)
    eng = engines.get("bioformats" if engine == "auto" else engine)
    found: object = None
    if problem is None:
        try:
            eng, found = engines.pick(ctx, engine)
        except Exception as exc:  # noqa: BLE001 - a claim that crashes must not cost the process
            problem = f"choosing an engine failed: {type(exc).__name__}: {one_line(str(exc))}"
    label = (eng.name, "")  # the engine's name and version, kept apart (the version once it is asked)
    if problem is not None:
        return Result(path=path, status="failed", engine=label[0], engine_version=label[1],
                      error=f"{path}: {problem}", seconds=time.perf_counter() - start)
    fatal = False
    notes: list[str] = []
    try:
        if isinstance(eng, ContextEngine):
            eng.prepare(ctx)
        label = (eng.name, eng.version())
        try:
            xml = _storable(_run(eng, ctx, found, notes), notes)
        except ExtractionError as exc:
            if engine != "auto" or exc.fatal or isinstance(exc, UnsupportedFormatError):
                raise
            rescued, rescuer = _beyond(eng, path, head, exc, notes)
            xml, label = _storable(rescued, notes), rescuer or label
    except UnsupportedFormatError as exc:
        result = Result(path=path, status="unsupported", engine=label[0], engine_version=label[1],
                        error=f"{path}: {one_line(str(exc))}")
    except ExtractionError as exc:
        fatal = exc.fatal
        result = Result(path=path, status="failed", engine=label[0], engine_version=label[1],
                        error=f"{path}: {one_line(str(exc))}")
    except Exception as exc:  # noqa: BLE001 - an engine bug must become a recorded failure
        result = Result(path=path, status="failed", engine=label[0], engine_version=label[1],
                        error=f"{path}: {type(exc).__name__}: {one_line(str(exc))}")
    else:
        damage = sanity.check(path, head, xml, ctx.held)
        if damage is not None:
            result = Result(path=path, status="failed", engine=label[0], engine_version=label[1],
                            error=f"{path}: {one_line(damage)}")
        else:
            result = _checked(path, xml, label, notes)
    result.seconds = time.perf_counter() - start
    if fatal and raise_fatal:
        raise FatalWorkerError(result)
    return result


def _checked(path: str, xml: str, label: tuple[str, str], notes: list[str]) -> Result:
    """An ``ok`` Result for ``xml``, validated; a document that does not even parse is never stored as
    ``ok`` (no reader could use it) but fails the file, saying why."""
    valid, why = validate(xml, key=written_key(xml))
    xml = str(xml)  # the text alone (a Written's key has served): what is stored, pickled and compared
    if not valid and (why or "").startswith("not well-formed"):
        return Result(path=path, status="failed", engine=label[0], engine_version=label[1],
                      error=f"{path}: the engine's OME-XML does not parse ({one_line(why or '', 200)})", notes=notes)
    return Result(path=path, status="ok", omexml=xml, engine=label[0], engine_version=label[1], valid=valid,
                  validation_error=None if valid else one_line(why or ""), notes=notes)
