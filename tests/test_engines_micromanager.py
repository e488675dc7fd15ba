"""The Micro-Manager engine against Bio-Formats 7.3.1: the corpus reference and the live engine.

MMStack OME-TIFFs are read by Bio-Formats' ``OMETiffReader`` (it comes before ``MicromanagerReader``), NDTiff
stacks by its plain ``TiffReader``; ``_metadata.txt`` (``MicromanagerReader``) is declined. The one deliberate
difference: Bio-Formats prints Micro-Manager's Instrument/Detector IDs (``Microscope``, ``Andor Zyla 4.2``),
which the OME 2016-06 schema rejects; the engine writes ``Instrument:0``/``Detector:0:0`` instead, so the
whole document equals the reference once those IDs are mapped back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from metaextract import engines
from metaextract._extract import read_head
from metaextract.engines.base import ExtractionError, UnsupportedFormatError
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.micromanager import CLAIM, NAME, MicromanagerEngine
from metaextract.ome import key_fields, normalise, validate

MMSTACK = {  # corpus file -> the IDs Bio-Formats printed for what the engine renames
    "micromanager-mmstack/Cos7_A647_WF1/Cos7_A647_WF1_MMStack_Pos0.ome.tif":
        {"Instrument:0": "Microscope", "Detector:0:0": "Camera"},
    "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0.ome.tif":
        {"Instrument:0": "Microscope", "Detector:0:0": "Andor Zyla 4.2"},
}
NDTIFF = ("micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff3.2_monochrome_NDTiffStack.tif",
          "micromanager-ndtiff/ndtiffv2.0_test/Full resolution/ndtiffv2.0_test_NDTiffStack.tif")
DECLINED = (
    # MicromanagerReader: its date, exposure and position rules are not proven (module docstring)
    "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0_metadata.txt",
    "micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff.index",  # not images (Bio-Formats fails on them)
    "micromanager-ndtiff/ndtiff3.2_monochrome/display_settings.txt",
    "micromanager-ndtiff/ndtiffv2.0_test/Full resolution/NDTiff.index",
    "micromanager-ndtiff/ndtiffv2.0_test/display_settings.txt",
)
COS7 = next(iter(MMSTACK))
OLD_NS = "http://www.openmicroscopy.org/Schemas/OME/2015-01"


@pytest.fixture(scope="module")
def mm() -> MicromanagerEngine:
    return MicromanagerEngine()


@pytest.fixture(scope="module")
def bioformats() -> BioFormatsEngine:
    return BioFormatsEngine()


def _claim(engine: MicromanagerEngine, path: Path) -> int:
    return engine.claim(str(path), read_head(str(path)))


def _back(xml: str, ids: dict[str, str]) -> str:
    for new, old in ids.items():
        xml = xml.replace(f'ID="{new}"', f'ID="{old}"')
    return xml


@pytest.mark.parametrize("rel", sorted(MMSTACK))
def test_mmstack_ome_tiff_equals_the_reference(rel: str, corpus: Path, reference: Path,
                                               mm: MicromanagerEngine) -> None:
    path = corpus / rel
    assert _claim(mm, path) == CLAIM
    xml = mm.extract(str(path))
    expected = (reference / f"{rel}.xml").read_text("utf-8")
    assert key_fields(xml) == key_fields(expected)
    assert normalise(_back(xml, MMSTACK[rel])) == normalise(expected)
    assert validate(xml) == (True, None)
    assert not validate(expected)[0]  # Bio-Formats' own document is not valid OME (the IDs above)
    assert 'ID="Instrument:0"' in xml and 'InstrumentRef ID="Instrument:0"' in xml


@pytest.mark.parametrize("rel", NDTIFF)
def test_ndtiff_stack_equals_the_reference(rel: str, corpus: Path, reference: Path,
                                           mm: MicromanagerEngine) -> None:
    path = corpus / rel
    assert _claim(mm, path) == CLAIM
    xml = mm.extract(str(path))
    expected = (reference / f"{rel}.xml").read_text("utf-8")
    assert normalise(xml) == normalise(expected)
    assert validate(xml) == (True, None)
    with tifffile.TiffFile(path) as tf:  # SizeT is the IFD count, as TiffReader reports it
        assert f'SizeT="{len(tf.pages)}"' in xml


@pytest.mark.parametrize("rel", DECLINED)
def test_metadata_txt_and_sidecars_are_declined(rel: str, corpus: Path, mm: MicromanagerEngine) -> None:
    assert _claim(mm, corpus / rel) == 0


@pytest.mark.parametrize("rel", [*sorted(MMSTACK), *NDTIFF])
def test_no_other_engine_claims_these_files_more_strongly(rel: str, corpus: Path) -> None:
    path = str(corpus / rel)
    head = read_head(path)
    others = {name: engines.get(name).claim(path, head) for name in engines.available() if name != NAME}
    assert max(others.values()) < CLAIM, others


def test_no_other_corpus_file_is_claimed(corpus: Path, mm: MicromanagerEngine) -> None:
    claimed = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        head = read_head(str(path))
        if head.startswith((b"II", b"MM")) and _claim(mm, path) > 0:
            claimed.append(str(path.relative_to(corpus)))
    assert sorted(claimed) == sorted([*MMSTACK, *NDTIFF])


# -- siblings ---------------------------------------------------------------------------------------------
def test_mmstack_alone_reads_the_same(tmp_path: Path, corpus: Path, mm: MicromanagerEngine) -> None:
    copy = tmp_path / Path(COS7).name
    shutil.copyfile(corpus / COS7, copy)
    assert _claim(mm, copy) == CLAIM
    assert mm.extract(str(copy)) == mm.extract(str(corpus / COS7))


def test_ndtiff_siblings_decide(tmp_path: Path, corpus: Path, mm: MicromanagerEngine) -> None:
    src = corpus / NDTIFF[1]
    stack = tmp_path / src.name
    shutil.copyfile(src, stack)
    assert _claim(mm, stack) == 0  # no NDTiff.index: not an NDTiff dataset
    shutil.copyfile(src.parent / "NDTiff.index", tmp_path / "NDTiff.index")
    (tmp_path / "display_settings.txt").write_text("{}")
    assert _claim(mm, stack) == CLAIM
    (tmp_path / "metadata.txt").write_text('{"Summary": {"Source": "Micro-Manager"}}')
    assert _claim(mm, stack) == 0  # MicromanagerReader could take it
    (tmp_path / "metadata.txt").unlink()
    (tmp_path / "notes.csv").write_text("a,b\n")
    assert _claim(mm, stack) == 0  # another companion kind
    renamed = tmp_path / "stack.tif"
    (tmp_path / "notes.csv").unlink()
    shutil.copyfile(src, renamed)
    assert _claim(mm, renamed) == 0  # not an _NDTiffStack name


# -- synthetic MMStack files --------------------------------------------------------------------------------
def _ome_2015(name: str, *, z: int, c: int, t: int, extra: str = "", filename: str | None = None) -> str:
    planes = "".join(
        f'<TiffData FirstC="{ci}" FirstT="{ti}" FirstZ="{zi}" IFD="{(ti * z + zi) * c + ci}" PlaneCount="1">'
        f'<UUID FileName="{filename or name}">urn:uuid:11111111-2222-3333-4444-555555555555</UUID></TiffData>'
        for ti in range(t) for zi in range(z) for ci in range(c))
    channels = "".join(f'<Channel Color="-1" ID="Channel:0:{ci}" Name="Ch{ci}" SamplesPerPixel="1"><LightPath/>'
                       "</Channel>" for ci in range(c))
    plane_meta = "".join(
        f'<Plane DeltaT="{10.5 * ti}" DeltaTUnit="ms" ExposureTime="50.0" ExposureTimeUnit="ms" '
        f'PositionZ="{0.5 * zi}" PositionZUnit="µm" TheC="{ci}" TheT="{ti}" TheZ="{zi}"/>'
        for ti in range(t) for zi in range(z) for ci in range(c))
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="no"?><OME xmlns="{OLD_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{OLD_NS} {OLD_NS}/ome.xsd">'
        '<Instrument ID="Microscope"><Detector ID="My Camera" Model="Demo"/></Instrument>'
        f'<Image ID="Image:0" Name="{name[:-8]}"><AcquisitionDate>2020-01-02T03:04:05</AcquisitionDate>'
        '<InstrumentRef ID="Microscope"/>'
        f'<Pixels BigEndian="false" DimensionOrder="XYCZT" ID="Pixels:0" PhysicalSizeX="0.65" '
        f'PhysicalSizeXUnit="µm" PhysicalSizeY="0.65" PhysicalSizeYUnit="µm" PhysicalSizeZ="0.5" '
        f'SizeC="{c}" SizeT="{t}" SizeX="24" SizeY="16" SizeZ="{z}" Type="uint16">'
        f"{channels}{planes}{plane_meta}</Pixels></Image>{extra}</OME>"
    )


def _write_mmstack(folder: Path, name: str, xml: str, planes: int) -> Path:
    path = folder / name
    data = np.arange(planes * 16 * 24, dtype=np.uint16).reshape(planes, 16, 24)
    with tifffile.TiffWriter(path) as tw:
        for index in range(planes):
            tw.write(data[index], description=xml.encode("utf-8") if index == 0 else None, metadata=None,
                     extratags=[(51123, "s", 0, '{"ChannelIndex": 0}', True)])
    return path


def test_synthetic_multiplane_mmstack_agrees_with_live_bioformats(tmp_path: Path, mm: MicromanagerEngine,
                                                                 bioformats: BioFormatsEngine) -> None:
    name = "synth_MMStack_Pos0.ome.tif"
    path = _write_mmstack(tmp_path, name, _ome_2015(name, z=2, c=2, t=2), 8)
    assert _claim(mm, path) == CLAIM
    ours, theirs = mm.extract(str(path)), bioformats.extract(str(path))
    assert key_fields(ours) == key_fields(theirs)
    assert normalise(_back(ours, {"Instrument:0": "Microscope", "Detector:0:0": "My Camera"})) == normalise(theirs)
    assert validate(ours) == (True, None)


@pytest.mark.parametrize("case", ["other-file", "roi", "lightsource", "plane-count"])
def test_unproven_mmstack_files_are_declined(case: str, tmp_path: Path, mm: MicromanagerEngine) -> None:
    name = "synth_MMStack_Pos0.ome.tif"
    roi = ('<ROI xmlns="http://www.openmicroscopy.org/Schemas/ROI/2015-01" ID="ROI:0"><Union>'
           '<Shape ID="Shape:0"><Point X="1.0" Y="1.0"/></Shape></Union></ROI>')
    xml = {
        "other-file": _ome_2015(name, z=1, c=1, t=2, filename="synth_MMStack_Pos1.ome.tif"),
        "roi": _ome_2015(name, z=1, c=1, t=2, extra=roi),
        "lightsource": _ome_2015(name, z=1, c=1, t=2).replace(
            '<Detector ID="My Camera" Model="Demo"/>',
            '<Detector ID="My Camera" Model="Demo"/><LightSource ID="LightSource:0"><Laser/></LightSource>'),
        "plane-count": _ome_2015(name, z=1, c=1, t=3),
    }[case]
    path = _write_mmstack(tmp_path, name, xml, 2)
    assert _claim(mm, path) == 0
    with pytest.raises(ExtractionError, match="does not read") as info:
        mm.extract(str(path))
    assert "\n" not in str(info.value)


def test_broken_and_foreign_files(tmp_path: Path, corpus: Path, mm: MicromanagerEngine) -> None:
    cut = tmp_path / Path(COS7).name
    cut.write_bytes((corpus / COS7).read_bytes()[:64])
    assert _claim(mm, cut) == 0
    with pytest.raises(ExtractionError) as info:
        mm.extract(str(cut))
    assert "\n" not in str(info.value)
    text = tmp_path / "x_metadata.txt"
    text.write_text("{}")
    with pytest.raises(UnsupportedFormatError):
        mm.extract(str(text))
    plain = tmp_path / "plain.ome.tif"
    tifffile.imwrite(plain, np.zeros((4, 4), np.uint8), description="hello")
    assert _claim(mm, plain) == 0
    with pytest.raises(ExtractionError):
        mm.extract(str(plain))


def test_extract_without_claim_gives_the_claimed_document(corpus: Path) -> None:
    for rel in [*MMSTACK, *NDTIFF]:
        path = str(corpus / rel)
        warm = MicromanagerEngine()
        assert warm.claim(path, read_head(path)) == CLAIM
        assert warm.extract(path) == MicromanagerEngine().extract(path)
