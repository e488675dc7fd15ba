"""The engine registry.

Engines are ordered by how specific their claim on a file is (magic bytes first, then name); third
parties add engines through the entry-point group ``metaextract.engines`` (each entry point names a
zero-argument factory returning an object with the :class:`~metaextract.engines.base.Engine` contract).
In ``auto`` the highest claim wins; Bio-Formats claims everything with the weakest evidence and is the
fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from .base import Engine, ExtractionError, UnsupportedFormatError

__all__ = [
    "Engine",
    "ExtractionError",
    "UnsupportedFormatError",
    "available",
    "choose",
    "get",
    "reset",
]

ENTRY_POINT_GROUP = "metaextract.engines"
HEAD_BYTES = 4096


def _builtin() -> dict[str, Callable[[], Engine]]:
    from .bioformats import BioFormatsEngine
    from .camera import SIFEngine, SPEEngine
    from .cellomics import CellomicsEngine
    from .czi import CziEngine
    from .dicom import DicomEngine
    from .dv import DvEngine
    from .ics import IcsEngine
    from .lif import LifEngine
    from .micromanager import MicromanagerEngine
    from .nd2 import Nd2Engine
    from .oib import OibEngine
    from .ome_files import OmeEngine
    from .sidecar import SidecarEngine
    from .svs import SvsEngine
    from .tiff import TiffEngine
    from .tiff_kinds import ImageJEngine
    from .tiff_zeiss_mm import LsmEngine, StkEngine
    from .zvi import ZviEngine

    return {
        "bioformats": BioFormatsEngine,
        "cellomics": CellomicsEngine,
        "czi": CziEngine,
        "dv": DvEngine,
        "ics": IcsEngine,
        "lif": LifEngine,
        "micromanager": MicromanagerEngine,
        "nd2": Nd2Engine,
        "oib": OibEngine,
        "ome-xml": OmeEngine,
        "pydicom": DicomEngine,
        "sidecar": SidecarEngine,
        "sif": SIFEngine,
        "spe": SPEEngine,
        "svs": SvsEngine,
        "tifffile": TiffEngine,
        "tifffile-imagej": ImageJEngine,
        "tifffile-lsm": LsmEngine,
        "tifffile-stk": StkEngine,
        "zvi": ZviEngine,
    }


_factories: dict[str, Callable[[], Engine]] | None = None
_instances: dict[str, Engine] = {}


def _all_factories() -> dict[str, Callable[[], Engine]]:
    global _factories
    if _factories is None:
        found = _builtin()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep.load())
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


_Candidate = tuple[str, Engine, tuple[str, ...] | None, bytes | None]
_candidates: list[_Candidate] | None = None


def _all_candidates() -> list[_Candidate]:
    """Every engine, in name order, with the name endings and first bytes it declares it requires."""
    global _candidates
    if _candidates is None:
        found = []
        for name in available():
            eng = get(name)
            found.append((name, eng, getattr(eng, "suffixes", None), getattr(eng, "magic", None)))
        _candidates = found
    return _candidates


def choose(path: str, head: bytes, engine: str = "auto") -> Engine:
    """The engine that answers for ``path``: the one named, or in ``auto`` the strongest claim.

    An engine may declare ``suffixes`` (lower-case name endings) and ``magic`` (the bytes its files start
    with): a promise that its ``claim`` is 0 for any other file, so it is not asked about those (a plate's
    TIFFs are not offered to the CZI, ND2 or DeltaVision engines, ...).
    """
    if engine != "auto":
        return get(engine)
    lower = path.lower()
    best: tuple[int, str] | None = None
    for name, eng, suffixes, magic in _all_candidates():
        if suffixes is not None and not lower.endswith(suffixes):
            continue
        if magic is not None and not head.startswith(magic):
            continue
        score = eng.claim(path, head)
        if score > 0 and (best is None or score > best[0]):
            best = (score, name)
    return get(best[1] if best else "bioformats")


def reset() -> None:
    """Forget engine instances (used by tests and after a fork)."""
    global _candidates
    _instances.clear()
    _candidates = None
