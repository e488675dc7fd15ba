"""The engine registry.

Engines are ordered by how specific their claim on a file is (magic bytes first, then name); third
parties add engines through the entry-point group ``metaextract.engines`` (each entry point names a
zero-argument factory returning an object with the :class:`~metaextract.engines.base.Engine` contract).
In ``auto`` the highest claim wins; Bio-Formats claims everything with the weakest evidence and is the
fallback.

Whole-document parity, in one place (:func:`choose`): in ``auto`` a native engine answers only where its
normalised document equals Bio-Formats' whole. An engine marked ``whole_document_in_auto = False`` is not
asked, and a claim marked :func:`~metaextract.engines.base.key_fields_only` is not taken; both still answer
under their own name (``engine="czi"``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib import import_module
from typing import TYPE_CHECKING, cast

from metaextract.engines.base import (
    ContextEngine,
    Engine,
    ExtractionError,
    FileContext,
    KeyFieldsOnly,
    UnsupportedFormatError,
)

#: the plain ``claim`` a :class:`ContextEngine` builds on ``claim_in``: an engine whose class has it is asked
#: ``claim_in`` (see :func:`~metaextract.engines.base.in_context`)
_CONTEXT_CLAIM = ContextEngine.claim

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "Engine",
    "ExtractionError",
    "UnsupportedFormatError",
    "available",
    "choose",
    "get",
    "pick",
    "reset",
    "whole_document_in_auto",
]

ENTRY_POINT_GROUP = "metaextract.engines"
HEAD_BYTES = 4096


#: The built-in engines: module, class, and the name endings and first bytes their claim requires where
#: they declare them (their ``suffixes``/``magic`` attributes; ``tests/test_engines_registry.py`` checks
#: the two agree). An engine that declares either is imported only when a file has them: a plate of TIFFs
#: never loads the CZI, ND2 or DeltaVision code.
_BUILTIN: dict[str, tuple[str, str, tuple[str, ...] | None, bytes | None]] = {
    "bioformats": ("bioformats", "BioFormatsEngine", None, None),
    "cellomics": ("cellomics", "CellomicsEngine", (".c01",), b"\x00\x00\x00\x10"),
    "czi": ("czi", "CziEngine", None, b"ZISRAWFILE"),
    "dv": ("dv", "DvEngine", (".dv",), None),
    "ics": ("ics", "IcsEngine", (".ics", ".ids"), None),
    "lif": ("lif", "LifEngine", None, b"p\x00\x00\x00"),
    "micromanager": ("ometiff.micromanager", "MicromanagerEngine", None, None),
    "nd2": ("nd2", "Nd2Engine", None, b"\xda\xce\xbe\n"),
    "oib": ("ole.oib", "OibEngine", (".oib",), b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    "ome-xml": ("ometiff.files", "OmeEngine", None, None),
    "pydicom": ("dicom", "DicomEngine", None, None),
    "sidecar": ("sidecar", "SidecarEngine", ("ndtiff.index", "display_settings.txt", ".mlf", ".mrf"), None),
    "sif": ("camera", "SIFEngine", (".sif",), b"Andor Technology Multi-Channel File\n"),
    "spe": ("camera", "SPEEngine", (".spe",), None),
    "svs": ("tiff.svs", "SvsEngine", (".svs",), None),
    "tifffile": ("tiff.plain", "TiffEngine", None, None),
    "tifffile-imagej": ("tiff.kinds", "ImageJEngine", None, None),
    "tifffile-lsm": ("tiff.zeiss_mm", "LsmEngine", None, None),
    "tifffile-stk": ("tiff.zeiss_mm", "StkEngine", None, None),
    "zvi": ("ole.zvi", "ZviEngine", (".zvi",), b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
}


def _load(module: str, cls: str) -> Engine:
    engine: Engine = getattr(import_module(f"{__name__}.{module}"), cls)()
    return engine


def _builtin() -> dict[str, Callable[[], Engine]]:
    return {name: partial(_load, module, cls) for name, (module, cls, _, _) in _BUILTIN.items()}


_factories: dict[str, Callable[[], Engine]] | None = None
_instances: dict[str, Engine] = {}


def _plugin_entry_points() -> list[EntryPoint]:
    """Every installed plug-in engine (the entry-point group :data:`ENTRY_POINT_GROUP`)."""
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _all_factories() -> dict[str, Callable[[], Engine]]:
    global _factories
    if _factories is None:
        found = _builtin()
        for ep in _plugin_entry_points():
            if ep.name not in found:
                found[ep.name] = ep.load()
        _factories = found
    return _factories


def available() -> list[str]:
    """Names of every engine that can be asked for with ``engine=NAME``."""
    return sorted(_all_factories())


def get(name: str) -> Engine:
    """The engine called ``name`` (one instance per process, so its state stays warm)."""
    if name not in _instances:
        factories = _all_factories()
        if name not in factories:
            raise ValueError(f"unknown engine {name!r}; available: {', '.join(available())} or auto")
        _instances[name] = factories[name]()
    return _instances[name]


_Candidate = tuple[str, tuple[str, ...] | None, bytes | None]
_candidates: list[_Candidate] | None = None


def _all_candidates() -> list[_Candidate]:
    """Every engine, in name order, with the name endings and first bytes it declares it requires (a
    built-in one from :data:`_BUILTIN`, without importing it; a plug-in from its attributes)."""
    global _candidates
    if _candidates is None:
        found: list[_Candidate] = []
        for name in available():
            builtin = _BUILTIN.get(name)
            if builtin is not None:  # (a plug-in cannot take a built-in engine's name)
                found.append((name, builtin[2], builtin[3]))
            else:
                eng = get(name)
                found.append((name, getattr(eng, "suffixes", None), getattr(eng, "magic", None)))
        _candidates = found
    return _candidates


def whole_document_in_auto(eng: Engine) -> bool:
    """Whether ``auto`` may ask ``eng`` at all: False for an engine whose documents agree with Bio-Formats'
    on the key fields only (its ``whole_document_in_auto`` attribute; True when it does not say)."""
    return bool(getattr(eng, "whole_document_in_auto", True))


def choose(path: str, head: bytes, engine: str = "auto") -> Engine:
    """The engine that answers for ``path``: the one named, or in ``auto`` the strongest claim (see :func:`pick`)."""
    return pick(FileContext(path, head), engine)[0]


def pick(ctx: FileContext, engine: str = "auto") -> tuple[Engine, object]:
    """The engine that answers for ``ctx``'s file, and what its winning claim read of it (None when there is
    nothing to hand on: an engine named, a plug-in, or an engine that keeps nothing), for its ``extract_in``.

    In ``auto`` only whole-document answers count: an engine that is not :func:`whole_document_in_auto`
    is skipped and a :class:`~metaextract.engines.base.KeyFieldsOnly` claim is ignored, so the file goes
    to the next claim or to Bio-Formats.

    An engine may declare ``suffixes`` (lower-case name endings) and ``magic`` (the bytes its files start
    with): a promise that its ``claim`` is 0 for any other file, so it is not asked about those (a plate's
    TIFFs are not offered to the CZI, ND2 or DeltaVision engines, which are then not even imported).
    """
    if engine != "auto":
        return get(engine), None
    path, head = ctx.path, ctx.head
    lower = path.lower()
    best: tuple[int, str, object] | None = None
    instances = _instances
    for name, suffixes, magic in _all_candidates():
        if suffixes is not None and not lower.endswith(suffixes):
            continue
        if magic is not None and not head.startswith(magic):
            continue
        eng = instances.get(name) or get(name)
        if not whole_document_in_auto(eng):
            continue
        if type(eng).claim is _CONTEXT_CLAIM:  # (in_context(eng, "claim"), inline: asked for every file)
            score, found = cast(ContextEngine[object], eng).claim_in(ctx)
        else:
            score, found = eng.claim(path, head), None
        if isinstance(score, KeyFieldsOnly):
            continue
        if score > 0 and (best is None or score > best[0]):
            best = (score, name, found)
    return (get(best[1]), best[2]) if best else (get("bioformats"), None)


def reset() -> None:
    """Forget engine instances (used by tests and after a fork)."""
    global _candidates
    _instances.clear()
    _candidates = None
