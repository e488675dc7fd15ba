"""ImageXpress plates of any size for the tests: an ``.HTD`` and hard links to real MetaXpress TIFFs.

The TIFFs come from ``corpus-hcs/metaxpress-htd/faim-ipa_9987_Plate_3435/…/TimePoint_1`` (2 wells x 2 sites
x 4 wavelengths of real instrument output); a plate of W wells x S sites x C wavelengths links, for each of
its files, the source of the same site parity and wavelength, so headers (size, type, MetaSeries XML) are
real and the file count is whatever the test asks for, at no disk cost.
"""

from __future__ import annotations

import os
from pathlib import Path

SOURCE = Path("metaxpress-htd/faim-ipa_9987_Plate_3435/9987_Plate_3435/TimePoint_1")
WAVES = ("DAPI", "FITC", "Texas Red", "Cy5")


def _bools(flags: list[bool]) -> str:
    return ", ".join("TRUE" if f else "FALSE" for f in flags)


def htd_text(*, rows: int, columns: int, wells: list[tuple[int, int]], sites: int, waves: int,
             timepoints: int = 1, zsteps: int = 1) -> str:
    """An ``.HTD`` as MetaXpress writes it (sites in one row of the site grid)."""
    lines = ['"HTSInfoFile", Version 1.0', '"Description", "built by tests/_plates.py"', '"PlateType", 6',
             f'"TimePoints", {timepoints}', f'"ZSeries", {"TRUE" if zsteps > 1 else "FALSE"}',
             f'"ZSteps", {zsteps}', '"ZProjection", FALSE', f'"XWells", {columns}', f'"YWells", {rows}']
    chosen = set(wells)
    for r in range(rows):
        lines.append(f'"WellsSelection{r + 1}", ' + _bools([(r, c) in chosen for c in range(columns)]))
    lines += ['"Sites", TRUE', f'"XSites", {sites}', '"YSites", 1', '"SiteSelection1", ' + _bools([True] * sites),
              '"Waves", TRUE', f'"NWavelengths", {waves}']
    lines += [f'"WaveName{i + 1}", "{WAVES[i]}"' for i in range(waves)]
    lines += [f'"WaveCollect{i + 1}", 1' for i in range(waves)]
    lines += ['"UniquePlateIdentifier", "00000000-0000-0000-0000-000000000000"', '"EndFile"']
    return "\r\n".join(lines) + "\r\n"


def well_name(row: int, col: int) -> str:
    return f"{chr(ord('A') + row)}{col + 1:02d}"


def build_plate(corpus_hcs: Path, root: Path, *, wells: int, sites: int, waves: int, name: str = "plate",
                columns: int = 24, rows: int = 16, zsteps: int = 1) -> tuple[Path, list[Path]]:
    """A plate of ``wells`` wells (row-major from A01 on a rows x columns plate) x ``sites`` x ``waves``
    (at most 4) in ``root/TimePoint_1/`` (``ZStep_1`` … ``ZStep_<zsteps>`` below it when ``zsteps`` > 1) with
    the ``.HTD`` at ``root`` and a copy in each of those folders.
    Returns the master ``.HTD`` and the TIFFs written."""
    assert 1 <= waves <= len(WAVES) and wells <= rows * columns
    source = corpus_hcs / SOURCE
    chosen = [(i // columns, i % columns) for i in range(wells)]
    text = htd_text(rows=rows, columns=columns, wells=chosen, sites=sites, waves=waves, zsteps=zsteps)
    master = root / f"{name}.HTD"
    root.mkdir(parents=True)
    master.write_text(text)
    files = []
    top = root / "TimePoint_1"
    folders = [top] if zsteps <= 1 else [top / f"ZStep_{z + 1}" for z in range(zsteps)]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / master.name).write_text(text)
        for row, col in chosen:
            for site in range(1, sites + 1):
                for wave in range(1, waves + 1):
                    target = folder / f"{name}_{well_name(row, col)}_s{site}_w{wave}.TIF"
                    os.link(source / f"9987_B02_s{(site - 1) % 2 + 1}_w{wave}.TIF", target)
                    files.append(target)
    return master, files
