"""Synthetic microscope files, written by the project itself (for tests, the demo and the benchmarks).

Two kinds:

* :func:`bioformats_convert` — Bio-Formats' own writer (``ImageConverter``, run with the bundled JRE)
  turns a ``.fake`` spec into OME-TIFF, TIFF, ICS, … (one JVM start per file: ~0.6 s).
* ``write_*_plate`` — fast, seeded, pure-Python plates written with ``tifffile`` (no JVM), shaped like
  what MetaXpress, CellVoyager CV7000 and OME-TIFF acquisitions leave on disk.
"""

from __future__ import annotations

import os
import random
import subprocess
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tifffile

from metaextract.engines.bioformats.jvm import bioformats_jar, java_executable, safe_options

__all__ = [
    "PLATE_WRITERS",
    "ROUND_TRIP_SUFFIXES",
    "SINGLE_PLANE_SUFFIXES",
    "PlateWriter",
    "SynthError",
    "bioformats_convert",
    "fake_spec",
    "well_names",
    "complete_cellvoyager",
    "link_htd_plate",
    "write_cellvoyager_plate",
    "write_metaxpress_plate",
    "write_ometiff_plate",
]

#: Suffixes ImageConverter 7.3.1 writes and Bio-Formats reads back with every size and the pixel type
#: kept, and with the same OME-XML in-process as from showinf (all checked once on a uint8 Z×C stack;
#: tests/test_live_compare.py keeps checking a mix of them and of pixel types).
ROUND_TRIP_SUFFIXES: tuple[str, ...] = (
    ".ome.tiff", ".ome.tif", ".ome.btf", ".ome.tf2", ".ome.tf8", ".tif", ".tiff", ".btf", ".tf2", ".tf8",
    ".ics", ".ids", ".ome.xml", ".dcm",
)
#: Written and read back, but lossy in shape: the movie writers turn all planes into time points, the
#: picture writers keep only the first plane (``.png`` fails on more than one plane).
SINGLE_PLANE_SUFFIXES: tuple[str, ...] = (".avi", ".mov", ".jpg", ".jp2", ".eps", ".png")

_JVM_FLAGS = (
    "-Djava.awt.headless=true",
    "-Xmx512m",
    "-Djava.net.useSystemProxies=false",
    "-Dhttp.proxyHost=127.0.0.1", "-Dhttp.proxyPort=9",
    "-Dhttps.proxyHost=127.0.0.1", "-Dhttps.proxyPort=9",
)
_BASE_TIME = datetime(2016, 5, 1, 9, 30, 0)
_WAVELENGTHS = (452, 525, 595, 630, 700)
_ILLUM = ("DAPI", "FITC", "TexasRed", "Cy5", "Cy7")


class SynthError(RuntimeError):
    """ImageConverter failed or wrote nothing."""


class PlateWriter(Protocol):
    """What every ``write_*_plate`` function accepts (each also takes a few options of its own)."""

    __name__: str

    def __call__(
        self,
        root: str | os.PathLike[str],
        *,
        wells: int | Sequence[str] = ...,
        sites: int = ...,
        channels: int = ...,
        size: tuple[int, int] = ...,
        dtype: str = ...,
        seed: int = ...,
    ) -> list[Path]: ...


# -- Bio-Formats' writer ---------------------------------------------------------------------------------
def fake_spec(name: str = "synthetic", **params: object) -> str:
    """A Bio-Formats fake-reader id: ``name&key=value&….fake`` (``sizeX=64, pixelType="uint16"``, …)."""
    base = name[: -len(".fake")] if name.endswith(".fake") else name
    parts = [base] + [f"{k}={_fake_value(v)}" for k, v in params.items()]
    return "&".join(parts) + ".fake"


def _fake_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def bioformats_convert(
    spec_name: str, out_path: Path, *, timeout: float = 120.0, **fake_params: object
) -> Path:
    """Write ``out_path`` with Bio-Formats' ``ImageConverter`` from a fake-reader spec.

    Parameters
    ----------
    spec_name : str
        A fake id (``"x&sizeX=64&pixelType=uint8.fake"``) or just a base name; ``fake_params``
        (``sizeX=64, sizeZ=3, pixelType="uint16"``, …) are appended to it. No file is needed.
    out_path : Path
        The output; its suffix picks the writer (see :data:`ROUND_TRIP_SUFFIXES` and
        :data:`SINGLE_PLANE_SUFFIXES`). Overwritten if present. ``.ids`` writes an ``.ics`` header
        beside it.
    timeout : float
        Seconds before the converter is killed.

    Returns
    -------
    Path
        ``out_path``, which exists and is not empty.

    Raises
    ------
    SynthError
        When the converter exits non-zero, times out, or leaves no output.
    """
    explicit = spec_name.endswith(".fake") and not fake_params
    spec = spec_name if explicit else fake_spec(spec_name, **fake_params)
    out = Path(out_path).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(java_executable()), *_JVM_FLAGS, *safe_options(), "-cp", str(bioformats_jar()),
           "loci.formats.tools.ImageConverter", "-no-upgrade", "-overwrite", "-nogroup", spec,
           str(out)]
    try:
        proc = subprocess.run(cmd, cwd=out.parent, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise SynthError(f"ImageConverter timed out after {timeout:g} s writing {out}") from exc
    if proc.returncode != 0:
        last = _last_error(proc.stderr + proc.stdout)
        raise SynthError(f"ImageConverter exit {proc.returncode} writing {out}: {last}")
    if not out.is_file() or out.stat().st_size == 0:
        raise SynthError(f"ImageConverter reported success but {out} is missing or empty")
    return out


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("at ")]
    errors = [ln for ln in lines if "Exception" in ln or "Error" in ln]
    return (errors or lines or ["no output"])[0][:300]


# -- common helpers for the tifffile plates --------------------------------------------------------------
def well_names(n: int, *, columns: int = 12) -> list[str]:
    """The first ``n`` wells of a plate read row by row: ``A01, A02, …, A12, B01, …``."""
    if n < 1:
        raise ValueError("a plate needs at least one well")
    rows = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if n > len(rows) * columns:
        raise ValueError(f"at most {len(rows) * columns} wells with {columns} columns")
    return [f"{rows[i // columns]}{i % columns + 1:02d}" for i in range(n)]


def _wells(wells: int | Sequence[str]) -> list[str]:
    return well_names(wells) if isinstance(wells, int) else list(wells)


def _planes(rng: np.random.Generator, size: tuple[int, int], dtype: str, count: int) -> np.ndarray:
    """``count`` noisy planes; the data are seeded, cheap, and not all zero."""
    hi = 4096 if np.dtype(dtype).itemsize > 1 else 256
    return rng.integers(0, hi, size=(count, *size), dtype=dtype)


def _uuid(rnd: random.Random) -> str:
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4)).upper()


# -- MetaXpress ------------------------------------------------------------------------------------------
def _metaseries_xml(props: Sequence[tuple[str, str, object]], planes: int = 1) -> str:
    lines = ["<MetaData>",
             '<prop id="Description" type="string" value="Exposure: 20 ms&#13;&#10;Binning: 1 x 1"/>',
             '<prop id="MetaDataVersion" type="float" value="1"/>',
             '<prop id="ApplicationName" type="string" value="MetaXpress"/>',
             '<prop id="ApplicationVersion" type="string" value="6.5.3.427"/>',
             "<PlaneInfo>"]
    # ids, types and values are this module's own (numbers and fixed words): no escaping needed
    lines += [f'<prop id="{k}" type="{t}" value="{v}"/>' for k, t, v in props]
    lines += ["</PlaneInfo>", "<SetInfo>", f'<prop id="number-of-planes" type="int" value="{planes}"/>',
              "</SetInfo>", "</MetaData>"]
    return "\r\n".join(lines)


def write_metaxpress_plate(
    root: str | os.PathLike[str],
    *,
    plate: str = "PLATE",
    wells: int | Sequence[str] = 4,
    sites: int = 2,
    channels: int = 2,
    size: tuple[int, int] = (16, 16),
    dtype: str = "uint16",
    pixel_size_um: float = 0.65,
    seed: int = 0,
) -> list[Path]:
    """Write a MetaXpress (MetaSeries TIFF) plate: one 2-D TIFF per well, site and channel.

    Files are ``{plate}_{well}_s{site}_w{channel}{UUID}.tif`` in ``root`` (as MetaXpress leaves them in
    ``TimePoint_1``); each ImageDescription holds MetaSeries ``<MetaData>`` XML with ``PlaneInfo``
    props (``spatial-calibration-x``, ``stage-position-x``, ``wavelength``, ``_IllumSetting_``, …).

    Returns
    -------
    list of Path
        The files written, in well, site, channel order.
    """
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    rng, rnd = np.random.default_rng(seed), random.Random(seed)
    bits = np.dtype(dtype).itemsize * 8
    paths: list[Path] = []
    for wi, well in enumerate(_wells(wells)):
        data = _planes(rng, size, dtype, sites * channels)
        for s in range(sites):
            x0 = 1000.0 * wi + 150.0 * s
            for c in range(channels):
                stamp = _BASE_TIME + timedelta(seconds=60 * wi + 5 * s + c, milliseconds=rnd.randrange(1000))
                props: list[tuple[str, str, object]] = [
                    ("camera-binning-x", "int", 1), ("camera-binning-y", "int", 1),
                    ("image-name", "string", _ILLUM[c % len(_ILLUM)]),
                    ("pixel-size-x", "int", size[1]), ("pixel-size-y", "int", size[0]),
                    ("bits-per-pixel", "int", bits),
                    ("spatial-calibration-state", "bool", "on"),
                    ("spatial-calibration-x", "float", pixel_size_um),
                    ("spatial-calibration-y", "float", pixel_size_um),
                    ("spatial-calibration-units", "string", "um"),
                    ("stage-position-x", "float", round(x0, 3)),
                    ("stage-position-y", "float", round(500.0 + 150.0 * (s % 2), 3)),
                    ("z-position", "float", 3250.5),
                    ("acquisition-time-local", "time", stamp.strftime("%Y%m%d %H:%M:%S.%f")[:-3]),
                    ("modification-time-local", "time", stamp.strftime("%Y%m%d %H:%M:%S.%f")[:-3]),
                    ("wavelength", "float", _WAVELENGTHS[c % len(_WAVELENGTHS)]),
                    ("_IllumSetting_", "string", _ILLUM[c % len(_ILLUM)]),
                    ("_MagNA_", "float", 0.45), ("_MagRI_", "float", 1),
                    ("_MagSetting_", "string", "10X Plan Apo"),
                ]
                path = out / f"{plate}_{well}_s{s + 1}_w{c + 1}{_uuid(rnd)}.tif"
                tifffile.imwrite(path, data[s * channels + c], description=_metaseries_xml(props),
                                 software="MetaSeries", metadata=None)
                paths.append(path)
    return paths


# -- CellVoyager CV7000 ----------------------------------------------------------------------------------
def write_cellvoyager_plate(
    root: str | os.PathLike[str],
    *,
    plate: str = "CV7000-plate",
    wells: int | Sequence[str] = 4,
    sites: int = 2,
    channels: int = 2,
    zplanes: int = 1,
    timepoints: int = 1,
    size: tuple[int, int] = (16, 16),
    dtype: str = "uint16",
    seed: int = 0,
) -> list[Path]:
    """Write plain TIFFs named like CellVoyager CV7000 output.

    Names are ``{plate}_{well}_T{tttt}F{fff}L01A01Z{zz}C{cc}.tif`` (time point, field = site, timeline,
    action, z index, channel), as in a CV7000 ``MeasurementData.mlf``. The TIFFs carry no
    acquisition metadata (the instrument keeps that in its ``.mlf``/``.mrf`` files).

    Returns
    -------
    list of Path
        The files written, in well, time, site, z, channel order.
    """
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_well = timepoints * sites * zplanes * channels
    paths: list[Path] = []
    for well in _wells(wells):
        data = _planes(rng, size, dtype, per_well)
        i = 0
        for t in range(timepoints):
            for f in range(sites):
                for z in range(zplanes):
                    for c in range(channels):
                        name = f"{plate}_{well}_T{t + 1:04d}F{f + 1:03d}L01A01Z{z + 1:02d}C{c + 1:02d}.tif"
                        path = out / name
                        tifffile.imwrite(path, data[i], metadata=None)
                        paths.append(path)
                        i += 1
    return paths


def write_cellvoyager_measurement(
    root: str | os.PathLike[str],
    *,
    plate: str = "CV7000-plate",
    wells: int | Sequence[str] = 4,
    sites: int = 2,
    channels: int = 2,
    seed: int = 0,
) -> tuple[Path, list[Path]]:
    """A whole CellVoyager measurement, written from nothing: the TIFFs of :func:`write_cellvoyager_plate`
    (one Z, one time point) and the vendor files that name and place them — ``{plate}.wpi`` (a 96-well
    plate), ``MeasurementData.mlf`` (one ``IMG`` record per TIFF: well, field, channel, stage X/Y/Z, time),
    ``MeasurementDetail.mrf`` (pixel size, camera, frame per channel) and the ``.mes`` settings (objective,
    filter, exposure, light source per channel), enough for Bio-Formats' CV7000 reader. Returns the ``.wpi`` and the
    TIFFs, in well, site, channel order."""
    from xml.sax.saxutils import escape, quoteattr

    out = Path(root)
    files = write_cellvoyager_plate(out, plate=plate, wells=wells, sites=sites, channels=channels, seed=seed)
    ns = 'xmlns:bts="http://www.yokogawa.co.jp/BTS/BTSSchema/1.0"'
    head = '<?xml version="1.0" encoding="utf-8"?>\n'
    wpi = out / f"{plate}.wpi"
    wpi.write_text(f'{head}<bts:WellPlate bts:Version="1.0" bts:Name={quoteattr(plate)} bts:ProductID="0" '
                   f'bts:Columns="12" bts:Rows="8" {ns}/>\n', encoding="utf-8")
    records = []
    i = 0
    for wi, well in enumerate(_wells(wells)):
        row, column = ord(well[0]) - ord("A") + 1, int(well[1:])
        for f in range(sites):
            for c in range(channels):
                stamp = (_BASE_TIME + timedelta(seconds=2 * i)).isoformat(timespec="milliseconds")
                records.append(
                    f'<bts:MeasurementRecord bts:Type="IMG" bts:Time="{stamp}" bts:Column="{column}" '
                    f'bts:Row="{row}" bts:TimePoint="1" bts:FieldIndex="{f + 1}" bts:ZIndex="1" '
                    f'bts:TimelineIndex="1" bts:ActionIndex="1" bts:Action="2D" bts:X="{150.0 * f - 75.0}" '
                    f'bts:Y="{1000.0 * wi}" bts:Z="-13.0" bts:Ch="{c + 1}">{escape(files[i].name)}'
                    '</bts:MeasurementRecord>')
                i += 1
    (out / "MeasurementData.mlf").write_text(
        f'{head}<bts:MeasurementData bts:Version="1.0" {ns}>\n' + "\n".join(records)
        + "\n</bts:MeasurementData>\n", encoding="utf-8")
    end = (_BASE_TIME + timedelta(seconds=2 * i)).isoformat(timespec="milliseconds")
    lasers = (405, 488, 561, 640)
    settings = "".join(
        f'<bts:Channel bts:Ch="{c + 1}" bts:ObjectiveID="20000" bts:Objective="20x" bts:Magnification="20" '
        f'bts:Acquisition="BP{_WAVELENGTHS[c % len(_WAVELENGTHS)]}/40" bts:ExposureTime="{100 + 50 * c}" '
        f'bts:Binning="1"><bts:LightSourceName>{lasers[c % 4]}nm</bts:LightSourceName></bts:Channel>\n'
        for c in range(channels))
    sources = "".join(f'<bts:LightSource bts:Name="{nm}nm" bts:Type="Laser" bts:WaveLength="{nm}" '
                      'bts:Power="100"/>\n' for nm in lasers)
    mes = out / f"{plate}.mes"
    mes.write_text(f'{head}<bts:MeasurementSetting bts:Version="1.0" bts:Columns="12" bts:Rows="8" {ns}>\n'
                   '<bts:Timelapse><bts:Timeline bts:Name="Time Line 1"><bts:ActionList><bts:ActionAcquire2D>'
                   + "".join(f"<bts:Ch>{c + 1}</bts:Ch>" for c in range(channels))
                   + '</bts:ActionAcquire2D></bts:ActionList></bts:Timeline></bts:Timelapse>\n'
                   f'<bts:LightSourceList>\n{sources}</bts:LightSourceList>\n'
                   f'<bts:ChannelList>\n{settings}</bts:ChannelList>\n</bts:MeasurementSetting>\n',
                   encoding="utf-8")
    chans = "".join(
        f'<bts:MeasurementChannel bts:Ch="{c + 1}" bts:HorizontalPixelDimension="0.325" '
        f'bts:VerticalPixelDimension="0.325" bts:CameraNumber="{c % 2 + 1}" bts:InputBitDepth="16" '
        'bts:HorizontalPixels="16" bts:VerticalPixels="16"/>\n' for c in range(channels))
    (out / "MeasurementDetail.mrf").write_text(
        f'{head}<bts:MeasurementDetail bts:Version="1.0" bts:Title={quoteattr(plate)} '
        f'bts:BeginTime="{_BASE_TIME.isoformat(timespec="milliseconds")}" bts:EndTime="{end}" '
        f'bts:ColumnCount="12" bts:RowCount="8" bts:TargetSystem="CV7000" '
        f'bts:MeasurementSettingFileName={quoteattr(mes.name)} {ns}>\n'
        f'<bts:MeasurementSamplePlate bts:Name={quoteattr(plate)} bts:WellPlateFileName={quoteattr(wpi.name)}/>\n'
        f'{chans}</bts:MeasurementDetail>\n', encoding="utf-8")
    return wpi, files


# -- real instrument output, made bigger or completed -----------------------------------------------------
#: Real MetaXpress TIFFs (wells B02/B03, 2 sites, 4 wavelengths) under ``corpus-hcs``.
HTD_SOURCE = Path("metaxpress-htd/faim-ipa_9987_Plate_3435/9987_Plate_3435/TimePoint_1")
_HTD_WAVES = ("DAPI", "FITC", "Texas Red", "Cy5")


def _htd_text(rows: int, columns: int, wells: int, sites: int, waves: int,
              names: Sequence[str] = _HTD_WAVES, description: str = "metaextract.synth.link_htd_plate") -> str:
    """An ``.HTD`` as MetaXpress writes it: the first ``wells`` wells row by row, sites in one row."""
    def flags(row: int) -> str:
        return ", ".join("TRUE" if row * columns + c < wells else "FALSE" for c in range(columns))

    lines = ['"HTSInfoFile", Version 1.0', f'"Description", "{description}"',
             '"PlateType", 6', '"TimePoints", 1', '"ZSeries", FALSE', '"ZSteps", 1', '"ZProjection", FALSE',
             f'"XWells", {columns}', f'"YWells", {rows}']
    lines += [f'"WellsSelection{r + 1}", {flags(r)}' for r in range(rows)]
    lines += ['"Sites", TRUE', f'"XSites", {sites}', '"YSites", 1',
              '"SiteSelection1", ' + ", ".join(["TRUE"] * sites), '"Waves", TRUE', f'"NWavelengths", {waves}']
    lines += [f'"WaveName{i + 1}", "{names[i]}"' for i in range(waves)]
    lines += [f'"WaveCollect{i + 1}", 1' for i in range(waves)]
    lines += ['"UniquePlateIdentifier", "00000000-0000-0000-0000-000000000000"', '"EndFile"']
    return "\r\n".join(lines) + "\r\n"


def link_htd_plate(corpus_hcs: str | os.PathLike[str], root: str | os.PathLike[str], *, wells: int,
                   sites: int = 4, waves: int = 3, name: str = "plate", rows: int = 16,
                   columns: int = 24) -> tuple[Path, list[Path]]:
    """An ImageXpress plate of any size from real MetaXpress TIFFs, at no disk cost.

    ``root/{name}.HTD`` and a copy in ``root/TimePoint_1/``, and there ``{name}_{well}_s{site}_w{wave}.TIF``
    for the first ``wells`` wells (row by row on a ``rows`` x ``columns`` plate) x ``sites`` x ``waves`` (at
    most 4): each a hard link to the corpus TIFF of the same site parity and wavelength, so every header
    (size, type, MetaSeries XML) is real instrument output. ``root`` must not exist and must be on the
    corpus' file system. Returns the master ``.HTD`` and the TIFFs, in well, site, wavelength order.
    """
    if not 1 <= waves <= len(_HTD_WAVES) or not 1 <= wells <= rows * columns or sites < 1:
        raise ValueError(f"{wells} wells x {sites} sites x {waves} wavelengths do not fit the plate")
    source, top = Path(corpus_hcs) / HTD_SOURCE, Path(root)
    text = _htd_text(rows, columns, wells, sites, waves)
    (top / "TimePoint_1").mkdir(parents=True)
    master = top / f"{name}.HTD"
    master.write_text(text)
    (top / "TimePoint_1" / master.name).write_text(text)
    files: list[Path] = []
    for well in well_names(wells, columns=columns):
        for site in range(1, sites + 1):
            for wave in range(1, waves + 1):
                target = top / "TimePoint_1" / f"{name}_{well}_s{site}_w{wave}.TIF"
                os.link(source / f"9987_B02_s{(site - 1) % 2 + 1}_w{wave}.TIF", target)
                files.append(target)
    return master, files


def write_htd_plate(root: str | os.PathLike[str], *, plate: str = "PLATE", wells: int = 6, sites: int = 2,
                    channels: int = 3, columns: int = 12, rows: int = 8, seed: int = 0) -> tuple[Path, list[Path]]:
    """An ImageXpress plate as MetaXpress exports it, written whole (no corpus needed): ``root/{plate}.HTD``
    and a copy in ``root/TimePoint_1/``, and there the MetaSeries TIFFs of :func:`write_metaxpress_plate`
    for the first ``wells`` wells (row by row on a ``rows`` x ``columns`` plate), ``sites`` sites and
    ``channels`` wavelengths (at most 5). ``root`` must not exist. Returns the master ``.HTD`` and the TIFFs,
    in well, site, wavelength order."""
    if not 1 <= channels <= len(_ILLUM) or not 1 <= wells <= rows * columns or sites < 1:
        raise ValueError(f"{wells} wells x {sites} sites x {channels} wavelengths do not fit the plate")
    top = Path(root)
    (top / "TimePoint_1").mkdir(parents=True)
    files = write_metaxpress_plate(top / "TimePoint_1", plate=plate, wells=well_names(wells, columns=columns),
                                   sites=sites, channels=channels, seed=seed)
    text = _htd_text(rows, columns, wells, sites, channels, _ILLUM, "metaextract.synth.write_htd_plate")
    master = top / f"{plate}.HTD"
    for htd in (master, top / "TimePoint_1" / master.name):
        htd.write_text(text)
    return master, files


_BTS = "{http://www.yokogawa.co.jp/BTS/BTSSchema/1.0}"


def complete_cellvoyager(source: str | os.PathLike[str], into: str | os.PathLike[str], *,
                         columns: int = 1) -> list[Path]:
    """A metadata-only CellVoyager measurement (``.mlf``, ``.mrf``, ``.wpi``, …) made whole.

    Copies ``source``'s files into ``into`` (which must not exist) and writes there every TIFF its
    ``MeasurementData.mlf`` names (``IMG`` records): a 16x16 uint16 plane, plain TIFF without metadata,
    as the instrument's TIFFs carry none. Returns the TIFFs written, in the ``.mlf``'s order.

    ``columns`` > 1 makes the plate that many times larger, as the instrument would have written it had
    the same wells of the next ``columns - 1`` plate columns been measured too: every record of a well is
    repeated for the well as many columns to its right (same fields, channels, Z, times and stage offsets;
    its TIFF named for the new well), so the plate keeps its layout and only grows.
    """
    import shutil

    from lxml import etree

    src, out = Path(source), Path(into)
    out.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, out / f.name)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    mlf = out / "MeasurementData.mlf"
    tree = etree.parse(str(mlf), parser)
    root = tree.getroot()
    if columns > 1:
        _widen_cellvoyager(root, columns)
        tree.write(str(mlf), xml_declaration=True, encoding="utf-8")
    plane = np.zeros((16, 16), np.uint16)
    files: list[Path] = []
    for record in root.iter(f"{_BTS}MeasurementRecord"):
        if record.get(f"{_BTS}Type") == "IMG" and record.text:
            path = out / Path(record.text.strip()).name
            tifffile.imwrite(path, plane, metadata=None)
            files.append(path)
    return files


def _widen_cellvoyager(root: Any, columns: int) -> None:
    """Repeat each well's ``IMG`` records for the same well ``1 .. columns - 1`` plate columns to the right
    (:func:`complete_cellvoyager`); the new records follow the measured ones, well by well."""
    import copy

    from metaextract.filesets._hcs import well_name

    measured = [r for r in root.iter(f"{_BTS}MeasurementRecord") if r.get(f"{_BTS}Type") == "IMG"]
    for shift in range(1, columns):
        for record in measured:
            row, column = int(record.get(f"{_BTS}Row")), int(record.get(f"{_BTS}Column"))
            old, new = well_name(row - 1, column - 1), well_name(row - 1, column + shift - 1)  # (1-based in the .mlf)
            twin = copy.deepcopy(record)
            twin.set(f"{_BTS}Column", str(column + shift))
            twin.text = (record.text or "").replace(f"_{old}_", f"_{new}_", 1)
            twin.tail = record.tail
            root.append(twin)



# -- OME-TIFF --------------------------------------------------------------------------------------------
def _ome_xml(name: str, file_uuid: str, size: tuple[int, int], dtype: str, channels: int, z: int,
             pixel_size_um: float, stamp: datetime, position: tuple[float, float]) -> str:
    px_type = np.dtype(dtype).name
    chans = "".join(
        f'<Channel ID="Channel:0:{c}" Name="{_ILLUM[c % len(_ILLUM)]}" SamplesPerPixel="1" '
        f'EmissionWavelength="{_WAVELENGTHS[c % len(_WAVELENGTHS)]}" EmissionWavelengthUnit="nm"/>'
        for c in range(channels)
    )
    planes = "".join(
        f'<Plane TheZ="{iz}" TheC="{c}" TheT="0" PositionX="{position[0]}" PositionXUnit="µm" '
        f'PositionY="{position[1]}" PositionYUnit="µm"/>'
        for c in range(channels) for iz in range(z)
    )
    n = channels * z
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.openmicroscopy.org/Schemas/OME/2016-06 '
        'http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd" '
        f'UUID="urn:uuid:{file_uuid}" Creator="metaextract.synth">'
        f'<Image ID="Image:0" Name="{name}"><AcquisitionDate>{stamp.isoformat()}</AcquisitionDate>'
        f'<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="{px_type}" SizeX="{size[1]}" SizeY="{size[0]}" '
        f'SizeZ="{z}" SizeC="{channels}" SizeT="1" PhysicalSizeX="{pixel_size_um}" PhysicalSizeXUnit="µm" '
        f'PhysicalSizeY="{pixel_size_um}" PhysicalSizeYUnit="µm">{chans}'
        f'<TiffData IFD="0" PlaneCount="{n}"/>{planes}</Pixels></Image></OME>'
    )


def write_ometiff_plate(
    root: str | os.PathLike[str],
    *,
    plate: str = "plate",
    wells: int | Sequence[str] = 4,
    sites: int = 2,
    channels: int = 2,
    zplanes: int = 1,
    size: tuple[int, int] = (16, 16),
    dtype: str = "uint16",
    pixel_size_um: float = 0.65,
    seed: int = 0,
) -> list[Path]:
    """Write one OME-TIFF per well and site (``{plate}_{well}_s{site}.ome.tif``), channels × z planes.

    Each file holds a complete OME-XML block (Image, Pixels with physical sizes, named Channels,
    Planes with stage positions, TiffData) in its first ImageDescription, written by tifffile.

    Returns
    -------
    list of Path
        The files written, in well, site order.
    """
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    rng, rnd = np.random.default_rng(seed), random.Random(seed)
    paths: list[Path] = []
    for wi, well in enumerate(_wells(wells)):
        for s in range(sites):
            name = f"{plate}_{well}_s{s + 1}"
            path = out / f"{name}.ome.tif"
            stamp = _BASE_TIME + timedelta(seconds=60 * wi + 5 * s)
            xml = _ome_xml(name, str(uuid.UUID(int=rnd.getrandbits(128), version=4)), size, dtype,
                           channels, zplanes, pixel_size_um, stamp, (1000.0 * wi + 150.0 * s, 500.0))
            data = _planes(rng, size, dtype, channels * zplanes)
            with tifffile.TiffWriter(path) as tw:
                tw.write(data, description=xml.encode("utf-8"), metadata=None, photometric="minisblack")
            paths.append(path)
    return paths


#: The plate writers by layout name (``metaxpress``, ``cellvoyager``, ``ometiff``).
PLATE_WRITERS: dict[str, PlateWriter] = {
    "metaxpress": write_metaxpress_plate,
    "cellvoyager": write_cellvoyager_plate,
    "ometiff": write_ometiff_plate,
}


def write_cds_samples(root: str | os.PathLike[str]) -> list[Path]:
    """One small file of each common kind (MetaSeries TIFF, plain TIFF, OME-TIFF): what a JVM reads while
    its class list for the class-data sharing archive is written (:mod:`metaextract.engines.bioformats.cds`)."""
    root = Path(root)
    return [
        *write_metaxpress_plate(root / "mx", wells=1, sites=1, channels=1),
        *write_cellvoyager_plate(root / "cv", wells=1, sites=1, channels=1),
        *write_ometiff_plate(root / "ome", wells=1, sites=1, channels=1),
    ]
