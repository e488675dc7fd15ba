"""Read a whole fileset once, in an extraction process, as a file is read: its one Result.

The fileset's native reader (:func:`metaextract.filesets.read`) comes first; where it fails (a vendor file
that is unsafe or unreadable, any unexpected error) the fileset gets ONE Bio-Formats ``setId`` on its master
file — the Bio-Formats engine's extract of the master, which reads the whole fileset — with a note saying
so. Either way the Result is the master's (``path`` the master), its ``omexml`` the fileset's document; a
native read adds every image member's places (:attr:`Result.places`).

Invariants: nothing outside ``root`` is read (every member is fenced before any is opened; the process is
sandboxed to the experiment's folders besides); never raises for a bad fileset (only
:class:`~metaextract.extraction.pipeline.FatalWorkerError`, as a file's read would, when the JVM is unfit).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from metaextract.extraction import fence
from metaextract.filesets.model import FilesetSpec
from metaextract.result import Result, one_line

#: Seconds a fileset's read may take per member on top of the pool's per-file timeout (a plate's read
#: grows with its members; a 1,152-file plate gets the file timeout plus ~10 minutes).
SECONDS_PER_MEMBER = 0.5


def fileset_timeout(per_file: float, spec: FilesetSpec) -> float:
    """The timeout of a fileset's one read: the per-file one plus :data:`SECONDS_PER_MEMBER` per member."""
    return per_file + SECONDS_PER_MEMBER * len(spec.members())


def engine_name(kind: str) -> str:
    """The engine a native read of a ``kind`` fileset is stored under, e.g. ``metaextract-metaxpress-htd``."""
    return f"metaextract-{kind}"


def _version() -> str:
    import metaextract

    return str(metaextract.__version__)


def read_fileset(spec: FilesetSpec, root: str | None = None,
                 grace: Callable[[float], None] | None = None) -> Result:
    """The fileset's one read as a Result of its master (see the module docstring)."""
    started = time.monotonic()
    if root is not None:
        for path in spec.members():
            outside = fence.outside_root(path, root)
            if outside is not None:
                return Result(path=spec.master, status="failed", seconds=time.monotonic() - started,
                              error=f"{spec.master}: fileset member {path} {outside}; not read")
    try:
        from metaextract import filesets

        got = filesets.read(spec)
    except Exception as exc:  # noqa: BLE001 - any failure of the native read falls back to Bio-Formats
        return _by_bioformats(spec, root, grace, f"{type(exc).__name__}: {one_line(str(exc), 300)}", started)
    return Result(path=spec.master, status="ok", omexml=str(got.omexml), engine=engine_name(spec.kind),
                  engine_version=_version(), seconds=time.monotonic() - started, notes=list(got.notes),
                  places={p: list(v) for p, v in got.places.items()})


def _by_bioformats(spec: FilesetSpec, root: str | None, grace: Callable[[float], None] | None, why: str,
                   started: float) -> Result:
    """ONE Bio-Formats read of the master for the whole fileset, noting why the native read was not used."""
    from metaextract.extraction.pipeline import extract_file

    result = extract_file(spec.master, "bioformats", raise_fatal=True, root=root, grace=grace)
    result.notes.insert(0, f"read by one Bio-Formats setId on {spec.master}: the native {spec.kind} "
                           f"reader failed ({why})")
    result.seconds = time.monotonic() - started
    return result
