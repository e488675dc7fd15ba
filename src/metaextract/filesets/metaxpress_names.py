"""ImageXpress/MetaXpress naming: the ``.HTD`` plate description and the TIFF names MetaXpress writes.

A MetaXpress plate export is ``<plate>.HTD`` plus TIFFs named ``<plate>_<well>[_s<site>][_w<wave>][<uuid>].TIF``
(``_s`` only with more than one site, ``_w`` only with wavelengths), either beside the ``.HTD`` or in
``TimePoint_<t>/`` (1-based) and ``TimePoint_<t>/ZStep_<z>/`` folders below it, each folder holding a copy
of the ``.HTD``. ``ZStep_0`` holds the maximum projections (``"ZProjection", TRUE``), which Bio-Formats 7.3.1
does not read; ``_thumb`` files are thumbnails. Everything here works on names and ``.HTD`` text only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: ``<plate>_<well>[_s<site>][_w<wave>][<uuid>].tif`` (group ``rest`` must be empty for a match)
_NAME = re.compile(
    r"(?P<plate>.+?)_(?P<well>[A-Za-z]{1,2})(?P<col>\d{1,3})(?:_s(?P<site>\d+))?(?:_w(?P<wave>\d+))?"
    r"(?P<uuid>[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12})?"
    r"\.tiff?", re.IGNORECASE)
_TIMEPOINT = re.compile(r"TimePoint_(\d+)", re.IGNORECASE)
_ZSTEP = re.compile(r"ZStep_(\d+)", re.IGNORECASE)
_LINE = re.compile(r'"([^"]+)",\s*(.*)')


@dataclass(frozen=True, slots=True)
class Name:
    """What a TIFF's name and folders say: plate prefix, well (row, column from 0), site and wavelength
    (1-based, 1 when the name leaves them out), TimePoint (1-based, 1 outside ``TimePoint_*``) and ZStep
    (as the folder says: 0 is the projection, None outside ``ZStep_*``)."""

    plate: str
    row: int
    col: int
    site: int
    wave: int
    timepoint: int
    zstep: int | None

    @property
    def well(self) -> str:
        return f"{row_letters(self.row)}{self.col + 1:02d}"


def row_letters(row: int) -> str:
    """Row 0 -> ``A``, 25 -> ``Z``, 26 -> ``AA`` (1536-well plates)."""
    return chr(ord("A") + row) if row < 26 else chr(ord("A") + row // 26 - 1) + chr(ord("A") + row % 26)


def _row_number(letters: str) -> int:
    letters = letters.upper()
    if len(letters) == 1:
        return ord(letters) - ord("A")
    return (ord(letters[0]) - ord("A") + 1) * 26 + ord(letters[1]) - ord("A")


def split(path: str) -> tuple[str, str, str, str]:
    """``(folder, name, parent folder name, grandparent folder name)`` of an absolute path, without I/O."""
    folder, _, name = path.rpartition("/")
    up1, _, parent = folder.rpartition("/")
    _, _, grand = up1.rpartition("/")
    return folder, name, parent, grand


def plate_root(path: str) -> tuple[str, int, int | None]:
    """The folder an ``.HTD`` plate's master would sit in for a file at ``path``, and the file's TimePoint
    (1-based, 1 when none) and ZStep (None when none), from its folders."""
    folder, _, parent, grand = split(path)
    z = _ZSTEP.fullmatch(parent)
    if z is not None:
        t = _TIMEPOINT.fullmatch(grand)
        if t is not None:
            return folder.rsplit("/", 2)[0], int(t.group(1)), int(z.group(1))
    t = _TIMEPOINT.fullmatch(parent)
    if t is not None:
        return folder.rsplit("/", 1)[0], int(t.group(1)), None
    return folder, 1, None


def parse_name(path: str, root: tuple[str, int, int | None] | None = None) -> Name | None:
    """The vendor's layout of a TIFF from its name and folders; None when it is not named as MetaXpress
    names plate TIFFs (thumbnails included: they are not planes of the plate). ``root`` is
    :func:`plate_root` of ``path`` where the caller has it already (it depends on the folder only)."""
    name = path.rpartition("/")[2]
    m = _NAME.fullmatch(name)
    if m is None or "_thumb" in name.lower():
        return None
    _, t, z = plate_root(path) if root is None else root
    col = int(m.group("col")) - 1
    if col < 0:
        return None
    return Name(plate=m.group("plate"), row=_row_number(m.group("well")), col=col,
                site=int(m.group("site") or 1), wave=int(m.group("wave") or 1), timepoint=t, zstep=z)


@dataclass(slots=True)
class Htd:
    """The layout an ``.HTD`` describes (or, for ``metaxpress-names``, the names imply).

    ``wells`` are the selected (row, column) pairs in row-major order; ``sites`` the selected site grid
    cells in row-major order (their count is the field count); ``waves`` the wavelength names (None where
    unnamed); ``zsteps`` as written (0 in time-lapse exports without Z: Bio-Formats then fails).
    """

    rows: int = 0
    columns: int = 0
    wells: list[tuple[int, int]] = field(default_factory=list)
    site_grid: tuple[int, int] = (1, 1)
    sites: list[tuple[int, int]] = field(default_factory=list)
    timepoints: int = 1
    zsteps: int = 1
    waves: list[str | None] = field(default_factory=list)
    description: str = ""

    @property
    def size_z(self) -> int:
        return max(self.zsteps, 1)

    @property
    def field_count(self) -> int:
        return max(len(self.sites), 1)


def _bools(value: str) -> list[bool]:
    return [v.strip().upper() == "TRUE" for v in value.split(",")]


def _int(value: str, default: int) -> int:
    try:
        return int(value.strip())
    except ValueError:
        return default


def parse_htd(text: str) -> Htd:
    """An ``.HTD``'s layout (``"key", value`` lines; unknown keys ignored, bad numbers taken as absent)."""
    htd = Htd()
    selections: dict[int, list[bool]] = {}
    site_rows: dict[int, list[bool]] = {}
    names: dict[int, str] = {}
    nwaves, xsites, ysites = 0, 1, 1
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m is None:
            continue
        key, value = m.group(1).strip(), m.group(2).strip()
        if key == "XWells":
            htd.columns = _int(value, 0)
        elif key == "YWells":
            htd.rows = _int(value, 0)
        elif key.startswith("WellsSelection"):
            selections[_int(key[14:], 0) - 1] = _bools(value)
        elif key == "XSites":
            xsites = _int(value, 1)
        elif key == "YSites":
            ysites = _int(value, 1)
        elif key.startswith("SiteSelection"):
            site_rows[_int(key[13:], 0) - 1] = _bools(value)
        elif key == "TimePoints":
            htd.timepoints = max(_int(value, 1), 1)
        elif key == "ZSteps":
            htd.zsteps = _int(value, 1)
        elif key == "NWavelengths":
            nwaves = _int(value, 0)
        elif key.startswith("WaveName"):
            names[_int(key[8:], 0) - 1] = value.strip().strip('"')
        elif key == "Description":
            htd.description = value.strip('"')
    htd.wells = [(r, c) for r in range(htd.rows) for c, on in enumerate(selections.get(r, [])[:htd.columns]) if on]
    htd.site_grid = (ysites, xsites)
    if xsites == 1 and ysites == 1:
        htd.sites = [(0, 0)]  # one site: selected even when SiteSelection1 is absent (as Bio-Formats assumes)
    else:
        htd.sites = [(r, c) for r in range(ysites) for c, on in enumerate(site_rows.get(r, [])[:xsites]) if on]
    htd.waves = [names.get(i) for i in range(max(nwaves, 1))]
    return htd


def htd_from_names(names: list[Name]) -> Htd:
    """The layout the names alone imply: every well seen, sites 1..max, wavelengths 1..max, TimePoints
    1..max and one Z (no ``ZStep`` folders), on a plate just large enough for the wells seen."""
    htd = Htd()
    htd.rows = max(n.row for n in names) + 1
    htd.columns = max(n.col for n in names) + 1
    htd.wells = sorted({(n.row, n.col) for n in names})
    nsites = max(n.site for n in names)
    htd.site_grid = (1, nsites)
    htd.sites = [(0, i) for i in range(nsites)]
    htd.timepoints = max(n.timepoint for n in names)
    htd.zsteps = 1
    htd.waves = [None] * max(n.wave for n in names)
    return htd
