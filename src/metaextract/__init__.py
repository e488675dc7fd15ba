"""metaextract: microscope file metadata to OME-XML (the OME 2016-06 model), for whole experiments.

The public face::

    metaextract.extract(path, *, engine="auto") -> Result
    metaextract.extract_many(paths, *, engine="auto", workers=None, timeout=120.0) -> Iterator[Result]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from metaextract.engines.base import ExtractionError, UnsupportedFormatError, package_version
from metaextract.extraction.limits import DEFAULT_TIMEOUT
from metaextract.result import STATUSES, Result, Status

__all__ = [
    "STATUSES",
    "ExtractionError",
    "Result",
    "Status",
    "UnsupportedFormatError",
    "__version__",
    "bioformats_version",
    "extract",
    "extract_many",
    "open_experiment",
    "MetadataExtractor",
    "MetaextractBatchArguments",
    "MetaextractSubmissionArguments",
]

_STEP_NAMES = ("MetadataExtractor", "MetaextractBatchArguments", "MetaextractSubmissionArguments")


def __getattr__(name: str) -> Any:
    """The seed's API, and ``__version__``, found on first use so that `import metaextract` stays light for
    worker processes."""
    if name == "__version__":
        found = package_version("metaextract")
        return "0+unknown" if found == "unknown" else found
    if name in _STEP_NAMES:
        from metaextract.jobs import step

        return getattr(step, name)
    raise AttributeError(f"module 'metaextract' has no attribute {name!r}")


def extract(path: str | os.PathLike[str], *, engine: str = "auto") -> Result:
    """Extract the OME-XML of one file, in an extraction process kept to the file's own folder, with no
    network (:func:`metaextract.extraction.pool.extract_fenced`; reused, with its JVM, while files come from
    that folder).

    Parameters
    ----------
    path : str or path-like
        The image file.
    engine : str
        ``"auto"`` (default), ``"bioformats"`` or another registered engine.

    Returns
    -------
    Result
        Never raises for a bad file: a missing, unreadable or unknown file gives a Result with
        ``status`` ``"failed"`` or ``"unsupported"`` and a one-line ``error``.

    Raises
    ------
    ValueError
        For an unknown engine name.
    """
    from metaextract import engines
    from metaextract.extraction.pool import extract_fenced

    if engine != "auto" and engine not in engines.available():
        raise ValueError(f"unknown engine {engine!r}; available: {', '.join(engines.available())} or auto")
    return extract_fenced(os.fspath(path), engine)


def extract_many(
    paths: Iterable[str | os.PathLike[str] | tuple[str, str]],
    *,
    engine: str = "auto",
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    roots: Sequence[str] | None = None,
) -> Iterator[Result]:
    """Extract many files with ``workers`` processes, each keeping one JVM; yields Results as they finish.

    Parameters
    ----------
    paths : iterable of path-like or of (path, root)
        Files to read; consumed lazily. A ``(path, root)`` pair refuses a path that resolves outside the
        folder ``root`` it was registered in (the step's jobs give their files so).
    engine : str
        ``"auto"``, ``"bioformats"`` or another registered engine.
    workers : int, optional
        Number of extraction processes (default: number of CPUs, at most the number of files).
    timeout : float
        Seconds per file; a file past it has its process killed and replaced, and is ``"timeout"``.
    roots : sequence of str, optional
        The folders the files belong to: the processes then read nothing outside them (where the kernel
        has Landlock; :mod:`metaextract.extraction.sandbox`). By default the files' own folders (the paths are
        then read into a list first, since a process is fenced before it reads its first file).

    Yields
    ------
    Result
        One per path, in completion order.
    """
    from metaextract.extraction.pool import ExtractionPool, own_folders

    items = paths if workers is not None and roots is not None else list(paths)
    if roots is None:
        roots = own_folders(items)
    n = workers if workers is not None else max(1, min(os.cpu_count() or 1, len(items)))  # type: ignore[arg-type]
    with ExtractionPool(n, engine=engine, timeout=timeout, roots=roots) as pool:
        yield from pool.map(items)


def open_experiment(name_or_id: int | str, db: str | None = None) -> Any:
    """The files and results of an experiment (see :func:`metaextract.store.results.open_experiment`)."""
    from metaextract.store.results import open_experiment as _open

    return _open(name_or_id, db=db)


def bioformats_version() -> str:
    """The Bio-Formats version in use, read from the jar without starting a JVM."""
    import zipfile

    from metaextract.engines.bioformats.jvm import bioformats_jar

    with zipfile.ZipFile(bioformats_jar()) as jar:
        for name in ("META-INF/MANIFEST.MF",):
            text = jar.read(name).decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith(("Implementation-Version:", "Bundle-Version:")):
                    return line.split(":", 1)[1].strip()
    return "unknown"
