"""The one record every extraction produces, whatever happened."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "failed", "timeout", "unsupported"]
STATUSES: tuple[str, ...] = ("ok", "failed", "timeout", "unsupported")


@dataclass
class Result:
    """The outcome of extracting one file.

    Attributes
    ----------
    path : str
        The file, as it was given.
    status : {"ok", "failed", "timeout", "unsupported"}
    omexml : str or None
        The OME-XML (``<OME ...>...</OME>``, as showinf ``-omexml-only`` prints it) when ``status == "ok"``.
    engine : str
        The engine's name, e.g. ``"bioformats"`` (engine names hold no space).
    engine_version : str
        That engine's version, e.g. ``"7.3.1"`` (empty when no engine ran: a file refused before, a timeout).
    error : str or None
        One line saying what went wrong with which file, or None.
    seconds : float
        Wall time spent on this file.
    valid : bool or None
        Whether ``omexml`` validates against the OME 2016-06 schema (None when there is no XML).
    validation_error : str or None
        The first schema error, when ``valid`` is False.
    notes : list of str
        Things worth knowing that are not errors (e.g. "read alone: grouped read failed").
    rss_mb : float or None
        Resident memory of the extraction process after this file (set by the worker pool).
    places : dict or None
        Only for a fileset's read (``path`` its master): every image member's planes in its document
        (absolute path -> :class:`~metaextract.filesets.model.Place` list) as a native read gave them;
        None for a file, and for a fileset read by Bio-Formats (the registered layout then stands).
    """

    path: str
    status: Status
    omexml: str | None = None
    engine: str = ""
    engine_version: str = ""
    error: str | None = None
    seconds: float = 0.0
    valid: bool | None = None
    validation_error: str | None = None
    notes: list[str] = field(default_factory=list)
    rss_mb: float | None = None
    places: dict[str, list[Any]] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def engine_label(self) -> str:
        """``"name version"`` for people to read (never parsed back: the two fields are kept apart)."""
        return " ".join(x for x in (self.engine, self.engine_version) if x)

    def note_lines(self) -> list[str]:
        """The file's notes as lines of its job's log, ``note PATH: NOTE`` (every runner logs them so)."""
        return [f"note {self.path}: {n}" for n in self.notes]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "omexml": self.omexml, "engine": self.engine,
                "engine_version": self.engine_version, "error": self.error, "seconds": self.seconds,
                "valid": self.valid, "validation_error": self.validation_error, "notes": list(self.notes),
                "rss_mb": self.rss_mb}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})

    def to_row(self) -> Row:
        """The fields as a tuple, in their order: what extraction processes send (smaller than a dict)."""
        return (self.path, self.status, self.omexml, self.engine, self.engine_version, self.error, self.seconds,
                self.valid, self.validation_error, list(self.notes), self.rss_mb, self.places)

    @classmethod
    def from_row(cls, row: Row) -> Result:
        return cls(*row)


#: :meth:`Result.to_row`'s form, and where its path, seconds and resident memory are in it
Row = tuple[Any, ...]
_ORDER = [f.name for f in dataclasses.fields(Result)]
ROW_PATH, ROW_SECONDS, ROW_RSS = _ORDER.index("path"), _ORDER.index("seconds"), _ORDER.index("rss_mb")

_FIELDS = frozenset(_ORDER)


def one_line(text: str, limit: int = 500) -> str:
    """Collapse a message to a single line of bounded length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
