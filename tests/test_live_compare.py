"""Live comparison on files the project writes itself: the in-process engine against the seed's showinf.

Every input is made here, with Bio-Formats' own ``ImageConverter`` (``synth.bioformats_convert``) or the
tifffile plate writers, so this needs no corpus; it needs the JVM and the jar (like the engine).
About 10 JVM subprocesses run, two at a time.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import metaextract
from metaextract import synth
from metaextract.engines.bioformats.jvm import bioformats_jar, java_executable
from metaextract.ome import key_fields, normalise, ome_block

SHOWINF = ("loci.formats.tools.ImageInfo", "-omexml-only", "-nopix", "-novalid", "-nocore", "-no-upgrade",
           "-no-sas")


@dataclass(frozen=True)
class Case:
    suffix: str
    pixel_type: str
    x: int
    y: int
    z: int = 1
    c: int = 1
    t: int = 1
    series: int = 1

    @property
    def id(self) -> str:
        return f"{self.suffix.lstrip('.')}-{self.pixel_type}-{self.x}x{self.y}x{self.z}x{self.c}x{self.t}"


CASES = [
    Case(".ome.tiff", "uint16", 64, 48, z=3, c=2),
    Case(".ome.tiff", "uint8", 32, 32, c=3, series=2),
    Case(".tif", "uint8", 33, 17, c=3),
    Case(".tif", "float", 16, 24, t=4),
    Case(".ics", "int16", 40, 30, z=5),
    Case(".ids", "uint32", 12, 10, c=2, t=2),
    Case(".ome.btf", "int8", 20, 20, z=2, t=2),
    Case(".ome.xml", "int32", 10, 12, c=2),
    Case(".jpg", "uint8", 48, 32),
]


def showinf(path: Path) -> str | None:
    """The seed's command, run in the file's folder on the file's name; the ``<OME…</OME>`` block."""
    java = [str(java_executable()), "-Djava.awt.headless=true", "-cp", str(bioformats_jar())]
    cmd = [*java, *SHOWINF, path.name]
    proc = subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True, timeout=120, check=False)
    return ome_block(proc.stdout)


def _make(case: Case, folder: Path) -> tuple[Path, str | None]:
    path = synth.bioformats_convert(
        "synthetic", folder / f"{case.id}{case.suffix}", sizeX=case.x, sizeY=case.y, sizeZ=case.z,
        sizeC=case.c, sizeT=case.t, series=case.series, pixelType=case.pixel_type,
    )
    return path, showinf(path)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str | None]]:
    folder = tmp_path_factory.mktemp("converted")
    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(lambda case: _make(case, folder / case.id), CASES))
    return {case.id: pair for case, pair in zip(CASES, made, strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_engine_matches_showinf(case: Case, converted: dict[str, tuple[Path, str | None]]) -> None:
    path, expected = converted[case.id]
    assert expected is not None, f"showinf printed no OME-XML for {path.name}"
    result = metaextract.extract(path, engine="bioformats")
    assert result.status == "ok", result.error
    assert result.omexml is not None
    assert normalise(result.omexml) == normalise(expected)
    assert result.valid, result.validation_error


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.suffix in synth.ROUND_TRIP_SUFFIXES],
                         ids=lambda c: c.id)
def test_written_sizes_survive(case: Case, converted: dict[str, tuple[Path, str | None]]) -> None:
    _, expected = converted[case.id]
    assert expected is not None
    fields = key_fields(expected)
    assert fields["image_count"] == case.series
    for image in fields["images"]:
        px = image["pixels"]
        got = (px["type"], px["size_x"], px["size_y"], px["size_z"], px["size_c"], px["size_t"])
        assert got == (case.pixel_type, case.x, case.y, case.z, case.c, case.t)


@pytest.mark.slow
def test_convert_reports_a_writer_failure(tmp_path: Path) -> None:
    with pytest.raises(synth.SynthError, match="exit 1"):
        synth.bioformats_convert("bad", tmp_path / "x.unknownsuffix", sizeX=8, sizeY=8)
    assert not (tmp_path / "x.unknownsuffix").exists()


def _pixels(path: Path) -> dict[str, Any]:
    result = metaextract.extract(path, engine="bioformats")
    assert result.status == "ok", result.error
    assert result.omexml is not None
    fields = key_fields(result.omexml)
    assert fields["image_count"] == 1
    image: dict[str, Any] = fields["images"][0]
    return image


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_plate_writers_read_by_bioformats(tmp_path: Path, dtype: str) -> None:
    kw: dict[str, Any] = {"wells": 2, "sites": 1, "channels": 2, "size": (12, 20), "dtype": dtype}

    mx = _pixels(synth.write_metaxpress_plate(tmp_path / "mx", pixel_size_um=0.5, **kw)[1])
    assert (mx["pixels"]["size_x"], mx["pixels"]["size_y"], mx["pixels"]["type"]) == (20, 12, dtype)
    assert mx["pixels"]["physical_size_x"] == [0.5, "µm"]
    assert mx["channels"][0]["name"] == "FITC"  # w2: the MetaSeries image-name was understood
    assert mx["channels"][0]["emission_wavelength"] == [525.0, "nm"]

    cv = _pixels(synth.write_cellvoyager_plate(tmp_path / "cv", **kw)[0])
    assert (cv["pixels"]["size_x"], cv["pixels"]["size_y"], cv["pixels"]["type"]) == (20, 12, dtype)

    ot = _pixels(synth.write_ometiff_plate(tmp_path / "ot", zplanes=3, **kw)[0])
    px = ot["pixels"]
    assert (px["size_x"], px["size_y"], px["size_z"], px["size_c"], px["type"]) == (20, 12, 3, 2, dtype)
    assert ot["name"] == "plate_A01_s1"
    assert [c["name"] for c in ot["channels"]] == ["DAPI", "FITC"]
