"""What the plate kinds share: folders of a listing, vendor XML parsed safely, well names, Java timestamps.

Every vendor file goes through :func:`vendor_xml`, which refuses a DOCTYPE or an entity outright (no entity
is ever expanded, no external file is ever read) and names the file in its error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from lxml import etree

from metaextract import ome


class VendorFileError(ValueError):
    """A vendor metadata file that cannot be used (unsafe, not XML, or missing what the layout needs)."""


def by_folder(paths: Iterable[str]) -> dict[str, list[str]]:
    """The paths grouped by their folder (string operations only: no file is touched), in listing order."""
    folders: dict[str, list[str]] = {}
    for path in paths:
        folder, _, _ = path.rpartition("/")
        folders.setdefault(folder, []).append(path)
    return folders


def vendor_xml(path: str) -> etree._Element:
    """The root element of the vendor XML file ``path``; a DTD, an entity or bad XML raises
    :class:`VendorFileError` naming the file (the DTD check comes first, so nothing is ever expanded)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise VendorFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return ome.parse_or(data, lambda why: VendorFileError(f"{path}: {why}"),
                        lambda why: VendorFileError(f"{path}: not well-formed XML ({why})"))


def local(tag: object) -> str:
    """An element's tag without its namespace (``{ns}Name`` -> ``Name``); comments give ``""``."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def row_letters(row: int) -> str:
    """The letters of a 0-based plate row: 0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``."""
    letters = ""
    row += 1
    while row > 0:
        row, rest = divmod(row - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def well_name(row: int, column: int) -> str:
    """The well's name from its 0-based row and column, as the issue spells it: ``B02``."""
    return f"{row_letters(row)}{column + 1:02d}"


_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def instant(text: str | None) -> datetime | None:
    """A vendor timestamp (ISO 8601, any number of fraction digits, with or without a zone) as an aware
    datetime (UTC when the text gives no zone, as Bio-Formats' ``Timestamp`` takes it); None if unreadable."""
    m = _STAMP.fullmatch((text or "").strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if zone and zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * (1 if zone[0] == "+" else -1)
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                         tzinfo=timezone(offset))
    except ValueError:
        return None
    return stamp.astimezone(UTC)


def java_timestamp(text: str | None) -> str | None:
    """A timestamp as Bio-Formats' ``Timestamp`` writes it back: UTC, milliseconds (dropped when zero)."""
    stamp = instant(text)
    if stamp is None:
        return None
    plain = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    millis = stamp.microsecond // 1000
    return f"{plain}.{millis:03d}" if millis else plain
