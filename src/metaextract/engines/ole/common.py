"""What the OLE2 engines (OIB, ZVI) share: the engine's claim on a compound document of its suffix, the
opening of one, and the rules both apply to the values they read as Bio-Formats does.

Every name here is public to the ``engines.ole`` family: one place to change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from metaextract.engines.base import Declined, ExtractionError, ReaderEngine, T, UnsupportedFormatError
from metaextract.engines.ole.storage import MAGIC, OleError, OleFile, is_ole

R = TypeVar("R")
EPSILON = 1e-6  # loci.common.Constants.EPSILON (FormatTools' positive-quantity check)
CONTROL = re.compile(r"[\x01-\x09\x0b\x0c\x0e-\x1f]")  # not XML text, or a tab (its spelling not checked)


def positive(value: float | None) -> float | None:
    """FormatTools' quantity check: kept only when above EPSILON and finite."""
    if value is None or not value - EPSILON > 0 or value == float("inf"):
        return None
    return value


def not_tiny(value: float, what: str) -> float:
    """``value`` unless it is positive and at most EPSILON: Bio-Formats 7.3.1 writes such a physical size in
    nm and keeps such a wavelength where the engines' rule drops it (checked live), so it is declined."""
    if 0 < value <= EPSILON:
        raise Declined(f"{what} {value!r} is positive but at most 1e-6 (Bio-Formats writes it its own way)")
    return value


def read_storage(path: str, suffix: str, label: str, read: Callable[[OleFile], R]) -> R:
    """``read`` of the compound document at ``path``: a name without ``suffix`` is declined, a damaged
    document raises :class:`ExtractionError` ("{label} cannot be read: …")."""
    if not path.lower().endswith(suffix):
        raise Declined(f"not named {suffix}")
    try:
        with OleFile(path) as ole:
            return read(ole)
    except OleError as exc:
        raise ExtractionError(f"{label} cannot be read: {exc}") from None


class OleEngine(ReaderEngine[T]):
    """A native engine for compound documents named with one of its ``suffixes``."""

    magic = MAGIC

    def wants(self, path: str, head: bytes) -> bool:
        return path.lower().endswith(self.suffixes or ()) and is_ole(head)

    def check_unclaimed(self, path: str) -> None:
        with open(path, "rb") as fh:
            if not is_ole(fh.read(8)):
                raise UnsupportedFormatError(f"not {self.kind} (no OLE2 signature)")
