"""ImageXpress/MetaXpress plates as one fileset: found by their ``.HTD`` (or, without it, by their names)
and read natively.

:func:`detect` groups paths by name alone (O(N), no file opened); :func:`read` reads the ``.HTD`` and every
TIFF's header (a few KB each, see :mod:`.metaxpress_head`) and writes one document for the plate
(:mod:`.metaxpress_doc`), each TIFF's place in it from its own name and folders (:mod:`.metaxpress_names`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from metaextract.filesets.metaxpress_doc import Layout, Plane, document
from metaextract.filesets.metaxpress_head import Head, Settings, read_head, settings
from metaextract.filesets.metaxpress_names import (
    Htd,
    Name,
    htd_from_names,
    parse_htd,
    parse_name,
    plate_root,
    split,
)
from metaextract.filesets.model import FilesetLayout, FilesetRead, FilesetSpec, Place

HTD_KIND = "metaxpress-htd"
NAMES_KIND = "metaxpress-names"
BIOFORMATS_ZSTEPS = (
    "Bio-Formats 7.3.1 fails on this plate (ArrayIndexOutOfBoundsException in "
    "MetaxpressTiffReader.getTiffFiles: its .HTD says \"ZSteps\", 0); read from the .HTD and the file names")


def _is_htd(name: str) -> bool:
    return name.lower().endswith(".htd")


def _is_tiff(name: str) -> bool:
    return name.lower().endswith((".tif", ".tiff"))


def detect(paths: Sequence[str]) -> tuple[list[FilesetSpec], list[str]]:
    """ImageXpress plates among ``paths`` (absolute file paths of one acquisition folder, any order):
    ``metaxpress-htd`` for an ``.HTD`` outside ``TimePoint_*``/``ZStep_*`` folders with the TIFFs named
    ``<htd name>_<well>…`` beside it or in its ``TimePoint_<t>[/ZStep_<z>]`` folders, and the ``.HTD``
    copies in those folders as metadata; ``metaxpress-names`` for the remaining TIFFs named as MetaXpress
    names them, one fileset per folder and plate prefix. Returns the specs and the paths not taken.
    Linear in ``len(paths)``; no file is opened."""
    roots: dict[str, tuple[str, int, int | None]] = {}  # plate_root depends on the folder only: once each

    def root_of(path: str, folder: str) -> tuple[str, int, int | None]:
        found = roots.get(folder)
        if found is None:
            found = roots[folder] = plate_root(path)
        return found

    masters: dict[tuple[str, str], str] = {}  # (folder, lower-case plate name) -> master .HTD
    for path in paths:
        if _is_htd(path):
            folder, _, name = path.rpartition("/")
            if root_of(path, folder)[0] == folder:
                masters[(folder, name[:-4].lower())] = path
    images: dict[str, list[str]] = defaultdict(list)
    metadata: dict[str, list[str]] = defaultdict(list)
    rest: list[str] = []
    names: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in paths:
        folder, _, name = path.rpartition("/")
        where = root_of(path, folder)
        root = where[0]
        if _is_htd(name):
            master = masters.get((root, name[:-4].lower()))
            if master is not None and master != path:
                metadata[master].append(path)
            elif master is None:
                rest.append(path)
            continue
        parsed = parse_name(path, where) if _is_tiff(name) else None
        master = masters.get((root, parsed.plate.lower())) if parsed is not None else None
        if master is not None:
            images[master].append(path)
        elif parsed is not None:
            names[(folder, parsed.plate)].append(path)
        else:
            rest.append(path)
    specs = [FilesetSpec(HTD_KIND, m, tuple(sorted(images[m])), tuple(sorted(metadata[m])))
             for m in sorted(masters.values())]
    for key in sorted(names):
        members = tuple(sorted(names[key]))
        specs.append(FilesetSpec(NAMES_KIND, members[0], members))
    return specs, rest


def _read_text(path: str) -> str:
    return Path(path).read_text(encoding="latin-1")


def _layout_of(htd: Htd, wells: dict[tuple[int, int], int], parsed: Name) -> tuple[int, int, int, int] | None:
    """(image, z, c, t) of a file in an ``.HTD`` plate (``wells``: each selected well's index), None when
    the layout has no place for it."""
    well = wells.get((parsed.row, parsed.col))
    if well is None:
        return None
    fld, c, t = parsed.site - 1, parsed.wave - 1, parsed.timepoint - 1
    z = 0 if parsed.zstep is None else parsed.zstep - 1
    if parsed.zstep == 0 or not (0 <= fld < htd.field_count and 0 <= c < len(htd.waves)
                                 and 0 <= t < htd.timepoints and 0 <= z < htd.size_z):
        return None
    return well * htd.field_count + fld, z, c, t


def _images(htd: Htd) -> list[tuple[int, int, int]]:
    return [(r, c, f) for r, c in htd.wells for f in range(htd.field_count)]


class _Plate:
    """A read in progress: the layout, the heads read, the places and notes."""

    def __init__(self, spec: FilesetSpec, htd: Htd, name: str) -> None:
        self.spec, self.htd, self.name = spec, htd, name
        self.images = _images(htd)
        self.wells = {well: i for i, well in enumerate(htd.wells)}
        self.planes: list[dict[tuple[int, int, int], Plane]] = [{} for _ in self.images]
        self.places: dict[str, list[Place]] = {}
        self.notes: list[str] = []
        self.unplaced: list[str] = []
        self.unreadable: list[str] = []

    def add(self, path: str, parsed: Name | None) -> None:
        at = None if parsed is None else _layout_of(self.htd, self.wells, parsed)
        head = read_head(path) if at is not None else None
        if at is None or head is None or parsed is None:
            self.places[path] = []
            (self.unplaced if head is not None or at is None else self.unreadable).append(path)
            return
        image, z, c, t = at
        plane = Plane(image, z, c, t, head)
        self.planes[image][(z, c, t)] = plane
        self.places[path] = [Place(image=image, z=z, c=c, t=t, plate=self.name, well=parsed.well,
                                   field=parsed.site - 1, position=head.position)]

    def present(self) -> list[Plane]:
        return [p for planes in self.planes for p in planes.values()]


def _times(plate: _Plate) -> None:
    """Each plane's DeltaT and each place's time: seconds since the plate's earliest acquisition."""
    stamps = [p.head.acquired for p in plate.present() if p.head.acquired is not None]
    if not stamps:
        return
    start = min(stamps)
    for p in plate.present():
        if p.head.acquired is not None:
            p.delta_t = (p.head.acquired - start).total_seconds()
    for places in plate.places.values():
        if places:
            place = places[0]
            plane = plate.planes[place.image][(place.z, place.c, place.t)]
            places[0] = Place(image=place.image, z=place.z, c=place.c, t=place.t, plate=place.plate,
                              well=place.well, field=place.field, position=place.position, time=plane.delta_t)


def _repeats(plate: _Plate) -> list[str]:
    """Notes on wavelengths not collected at some TimePoints: MetaXpress then writes the last image taken
    again (same acquisition time), and on planes with no file at all."""
    repeated: dict[int, set[int]] = defaultdict(set)
    missing = 0
    htd = plate.htd
    for planes in plate.planes:
        for z in range(htd.size_z):
            for c in range(len(htd.waves)):
                seen = set()
                for t in range(htd.timepoints):
                    plane = planes.get((z, c, t))
                    if plane is None:
                        missing += 1
                        continue
                    if plane.head.acquired is not None and plane.head.acquired in seen:
                        repeated[c].add(t + 1)
                    seen.add(plane.head.acquired)
    notes = []
    if repeated:
        parts = [f"w{c + 1} {htd.waves[c] or ''}".strip() + " at TimePoint " + ",".join(map(str, sorted(ts)))
                 for c, ts in sorted(repeated.items())]
        notes.append("not collected (the file repeats an earlier TimePoint's image, same acquisition time): "
                     + "; ".join(parts))
    if missing:
        total = len(plate.images) * htd.size_z * len(htd.waves) * htd.timepoints
        notes.append(f"{missing} of {total} planes have no file (no Plane element for them)")
    return notes


def _settings(plate: _Plate) -> tuple[Settings, list[Settings], Plane]:
    present = plate.present()
    order = sorted(present, key=lambda p: (p.image, p.t, p.z, p.c))
    first = order[0]
    channels = []
    for c in range(len(plate.htd.waves)):
        of_c = [p for p in order if p.c == c]
        channels.append(settings(of_c[0].head) if of_c else Settings())
    return settings(first.head), channels, first


def _alike(plate: _Plate, first: Head) -> list[str]:
    shape = (first.size_x, first.size_y, first.pixel_type)
    odd = [p for p in plate.present() if (p.head.size_x, p.head.size_y, p.head.pixel_type) != shape
           or p.head.pages != 1]
    if not odd:
        return []
    return [f"{len(odd)} files differ from the first in size, type or page count (written as the first)"]


def _finish(plate: _Plate, bioformats: bool, layout_from_names: bool) -> FilesetRead:
    if not plate.present():
        raise ValueError(f"{plate.spec.master}: no readable plate TIFF")
    _times(plate)
    plate_settings, channels, first = _settings(plate)
    notes = plate.notes + _alike(plate, first.head)
    if plate.unplaced:
        notes.append(f"{len(plate.unplaced)} files have no place in the layout (e.g. ZStep_0 projections, "
                     f"which Bio-Formats does not read): {Path(plate.unplaced[0]).name} …")
    if plate.unreadable:
        notes.append(f"{len(plate.unreadable)} files could not be read as TIFF: {plate.unreadable[0]} …")
    missing_or_repeated = _repeats(plate)
    has_gaps = any("no file" in n for n in missing_or_repeated)
    notes.extend(missing_or_repeated)
    layout = Layout(name=plate.name, htd=plate.htd, images=plate.images, planes=plate.planes, channels=channels,
                    plate=plate_settings, first=first, bioformats=bioformats and not has_gaps)
    return FilesetRead(spec=plate.spec, omexml=document(layout), places=plate.places, notes=notes,
                       layout_from_names=layout_from_names)


#: What a MetaXpress layout leaves to the read: the TIFF headers' part of each place.
HEADS_NOTE = ("stage positions and acquisition times are in each TIFF's header: not in the layout, "
              "known once the plate is read (so are wavelengths not collected at some TimePoints)")
#: The layout's notes the plate's read answers (:func:`metaextract.filesets.answered_by_read`).
ANSWERED_BY_READ = (HEADS_NOTE,)
NAMES_NOTE = ("layout from the file names only (no .HTD): wells, sites (field = site - 1) and wavelengths "
              "(channel = wavelength - 1) as named; plate size, site and wavelength counts are the largest seen, "
              "channel names from the files; Bio-Formats reads each of these files alone as one image")


def _plan(spec: FilesetSpec) -> tuple[Htd, str, dict[str, Name | None], list[str]]:
    """The plate's ``.HTD`` (or the one the names imply), its name, each image member's parsed name and the
    notes of the layout; raises ValueError for a spec of another kind or with no MetaXpress name."""
    if spec.kind == HTD_KIND:
        htd = parse_htd(_read_text(spec.master))
        parsed = {path: parse_name(path) for path in spec.images}
        return htd, split(spec.master)[1][:-4], parsed, [] if htd.zsteps >= 1 else [BIOFORMATS_ZSTEPS]
    if spec.kind == NAMES_KIND:
        parsed = {path: parse_name(path) for path in spec.images}
        known = [n for n in parsed.values() if n is not None]
        if not known:
            raise ValueError(f"{spec.master}: no file named as MetaXpress names plate TIFFs")
        return htd_from_names(known), known[0].plate, parsed, [NAMES_NOTE]
    raise ValueError(f"{spec.master}: not a MetaXpress fileset ({spec.kind})")


def read(spec: FilesetSpec) -> FilesetRead:
    """One OME-XML document for the plate and every image member's places (see the module docstring).
    Raises ValueError for a spec of another kind or with no readable TIFF."""
    htd, name, parsed, notes = _plan(spec)
    plate = _Plate(spec, htd, name)
    plate.notes.extend(notes)
    for path, named in parsed.items():
        plate.add(path, named)
    return _finish(plate, spec.kind == HTD_KIND and htd.zsteps >= 1, spec.kind == NAMES_KIND)


def layout(spec: FilesetSpec) -> FilesetLayout:
    """Each TIFF's place from the ``.HTD`` and its name alone, as :func:`read` gives it without the stage
    position and time (those are in the TIFF header, which is not opened: see :data:`HEADS_NOTE`); a TIFF
    the layout has no place for (a ``ZStep_0`` projection) maps to ``[]``, as in the read."""
    htd, name, parsed, notes = _plan(spec)
    wells = {well: i for i, well in enumerate(htd.wells)}
    places: dict[str, list[Place]] = {}
    unplaced = 0
    for path, named in parsed.items():
        at = None if named is None else _layout_of(htd, wells, named)
        if at is None or named is None:
            places[path] = []
            unplaced += 1
            continue
        image, z, c, t = at
        places[path] = [Place(image=image, z=z, c=c, t=t, plate=name, well=named.well, field=named.site - 1)]
    if unplaced:
        notes.append(f"{unplaced} files have no place in the layout (e.g. ZStep_0 projections, "
                     f"which Bio-Formats does not read)")
    return FilesetLayout(spec=spec, places=places, notes=[*notes, HEADS_NOTE],
                         layout_from_names=spec.kind == NAMES_KIND)
