"""The Micro-Manager engine against Bio-Formats 7.3.1: the corpus reference and the live engine.

MMStack OME-TIFFs are read by Bio-Formats' ``OMETiffReader`` (it comes before ``MicromanagerReader``), NDTiff
stacks by its plain ``TiffReader``, ``_metadata.txt`` by ``MicromanagerReader`` (its rules pinned with edited
copies of the corpus file, the TIFF linked beside them, against live Bio-Formats). Bio-Formats prints
Micro-Manager's Instrument/Detector IDs (``Microscope``, ``Andor Zyla 4.2``) as they are, though the OME
2016-06 schema rejects them; so does the engine, whose document then equals the reference whole and is, like
it, not valid OME.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from metaextract import engines
from metaextract.engines.base import ExtractionError, UnsupportedFormatError
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.ometiff.micromanager import CLAIM, NAME, MicromanagerEngine
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, validate

MMSTACK = {  # corpus file -> the schema IDs the engine validates with -> the IDs Bio-Formats prints
    "micromanager-mmstack/Cos7_A647_WF1/Cos7_A647_WF1_MMStack_Pos0.ome.tif":
        {"Instrument:0": "Microscope", "Detector:0:0": "Camera"},
    "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0.ome.tif":
        {"Instrument:0": "Microscope", "Detector:0:0": "Andor Zyla 4.2"},
}
NDTIFF = ("micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff3.2_monochrome_NDTiffStack.tif",
          "micromanager-ndtiff/ndtiffv2.0_test/Full resolution/ndtiffv2.0_test_NDTiffStack.tif")
METADATA_TXT = ("micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/"
                "HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0_metadata.txt")
DECLINED = (
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


@pytest.mark.parametrize("rel", sorted(MMSTACK))
def test_mmstack_ome_tiff_equals_the_reference(rel: str, corpus: Path, reference: Path,
                                               mm: MicromanagerEngine) -> None:
    path = corpus / rel
    assert _claim(mm, path) == CLAIM
    xml = mm.extract(str(path))
    expected = (reference / f"{rel}.xml").read_text("utf-8")
    assert key_fields(xml) == key_fields(expected)
    assert normalise(xml) == normalise(expected)
    # neither is valid OME: the IDs above are printed as Micro-Manager wrote them, references included
    assert not validate(xml, remember=False)[0] and not validate(expected, remember=False)[0]
    for schema_id, written in MMSTACK[rel].items():
        assert f'ID="{written}"' in xml and f'ID="{schema_id}"' not in xml
    assert 'InstrumentRef ID="Microscope"' in xml


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


def test_ndtiff_stack_is_native_in_the_extraction_sandbox_too(corpus: Path, reference: Path) -> None:
    """In an extraction process the file's folder is all it may read (Landlock): the parent folder, where
    the engine looks for files Bio-Formats could group the stack with, cannot be listed, and Bio-Formats,
    fenced alike, could not group with anything there either, so the stack is still answered natively."""
    from metaextract import extract_many

    rel = NDTIFF[0]
    path = corpus / rel
    (result,) = extract_many([str(path)], workers=1, engine="auto")
    assert (result.engine.split(" ", 1)[0], result.status) == (NAME, "ok"), result.error
    assert normalise(result.omexml or "") == normalise((reference / f"{rel}.xml").read_text("utf-8"))


@pytest.mark.parametrize("rel", DECLINED)
def test_sidecars_are_declined(rel: str, corpus: Path, mm: MicromanagerEngine) -> None:
    assert _claim(mm, corpus / rel) == 0


@pytest.mark.parametrize("rel", [*sorted(MMSTACK), *NDTIFF, METADATA_TXT])
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
    assert normalise(ours) == normalise(theirs)
    assert validate(ours, remember=False) == validate(theirs, remember=False)  # invalid alike: ``Microscope``
    assert not validate(ours, remember=False)[0]


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


# -- metadata.txt (MicromanagerReader) ------------------------------------------------------------------------
def test_metadata_txt_equals_the_reference(corpus: Path, reference: Path, mm: MicromanagerEngine) -> None:
    path = corpus / METADATA_TXT
    assert _claim(mm, path) == CLAIM
    assert engines.choose(str(path), read_head(str(path)), "auto").name == NAME
    xml = mm.extract(str(path))
    expected = (reference / f"{METADATA_TXT}.xml").read_text("utf-8")
    assert normalise(xml) == normalise(expected)
    assert key_fields(xml) == key_fields(expected)
    assert validate(xml) == (True, None)
    # the corpus' summary Time is in CEST, a zone Joda-Time cannot parse: no date; no Exposure-ms key
    assert "AcquisitionDate" not in xml and "ExposureTime" not in xml
    assert MicromanagerEngine().extract(str(path)) == xml  # extract without claim


_MM_TXT = Path(METADATA_TXT).name
_MM_TIF = _MM_TXT.replace("_metadata.txt", ".ome.tif")


def _mm_folder(tmp_path: Path, corpus: Path, name: str, text: str, *, txt: str = _MM_TXT,
               folder: str | None = None) -> Path:
    """An edited copy of the corpus metadata.txt, with the corpus TIFF beside it (a hard link where the file
    system allows, else a copy: a symbolic link out of the folder is not followed)."""
    where = tmp_path / (folder or name)
    where.mkdir()
    tiff = corpus / Path(METADATA_TXT).parent / _MM_TIF
    try:
        os.link(tiff, where / _MM_TIF)
    except OSError:
        shutil.copyfile(tiff, where / _MM_TIF)
    path = where / txt
    path.write_bytes(text.encode("utf-8"))
    return path


def _edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _frames(text: str, *blocks: str) -> str:
    """``text`` with more FrameKey blocks appended."""
    return text[:text.rindex("}")].rstrip() + ",\n" + ",\n".join(blocks) + "\n}\n"


def _frame0(text: str) -> str:
    return text[text.index('"FrameKey-0-0-0": {'):text.rindex("}")].rstrip().rstrip(",")


TIME = "Wed Jul 06 10:50:32 CEST 2016"
AFTER = '"ImageNumber": "1566",'  # a line inside the corpus file's only FrameKey block


def _variant(text: str, name: str) -> str:
    """The edits each variant makes to the corpus metadata.txt (every one compared with live Bio-Formats)."""
    frame1 = _frame0(text).replace('"FrameKey-0-0-0"', '"FrameKey-1-0-0"').replace(
        '"ElapsedTime-ms": 4422406,', '"ElapsedTime-ms": 1000,\n  "Exposure-ms": 80,')
    channel1 = frame1.replace('"FrameKey-1-0-0"', '"FrameKey-0-1-0"')
    two_t = _edit(text, ('"Frames": 1,', '"Frames": 2,'))
    two_c = _edit(text, ('"Channels": 1,', '"Channels": 2,'),
                  ('"ChNames": ["Default"],', '"ChNames": ["DAPI", "Cy5"],'),
                  ('"ChColors": [-1],', '"ChColors": [-1, -16711936],'))
    edits: dict[str, str] = {
        # Joda-Time parses only the zone names UT, UTC, GMT, EST … PDT: these give a date, CET/JST none
        "time-utc": _edit(text, (TIME, "Wed Jul 06 10:50:32 UTC 2016")),
        "time-gmt": _edit(text, (TIME, "Wed Jul 06 10:50:32 GMT 2016")),
        "time-ut": _edit(text, (TIME, "Wed Jul 06 10:50:32 UT 2016")),
        "time-cet": _edit(text, (TIME, "Wed Jan 06 10:50:32 CET 2016")),
        "time-jst": _edit(text, (TIME, "Wed Jul 06 10:50:32 JST 2016")),
        # US zone names are their cities' zones, daylight saving by the date (PST in July is UTC-7)
        "time-pst": _edit(text, (TIME, "Wed Jul 06 10:50:32 PST 2016")),
        "time-edt": _edit(text, (TIME, "Wed Jul 06 10:50:32 EDT 2016")),
        # Joda sets the weekday after the day of the month: the date moves within its ISO week
        "time-wrong-weekday": _edit(text, (TIME, "Mon Jul 06 10:50:32 UTC 2016")),
        "exposure": _edit(text, (AFTER, AFTER + '\n  "Exposure-ms": 50,')),
        "exposure-string": _edit(text, (AFTER, AFTER + '\n  "Exposure-ms": "12.5",')),
        "position-name": _edit(text, (AFTER, AFTER + '\n  "PositionName": "Pos-A1",')),
        "position-name-null": _edit(text, (AFTER, AFTER + '\n  "PositionName": "null",')),
        "camera": _edit(text, (AFTER, AFTER + '\n  "Andor Zyla 4.2-Gain": "-3.9",\n  "Andor Zyla 4.2-Temperature": '
                                      '"-30.5",\n  "Andor Zyla 4.2-Name": "Andor",')),
        "camera-key-before-core-camera": _edit(text, ('"FrameKey-0-0-0": {',
                                                      '"FrameKey-0-0-0": {\n  "Andor Zyla 4.2-Temperature": "-5",')),
        "binning-2": _edit(text, ('"Andor Zyla 4.2-Binning": "1x1",', '"Andor Zyla 4.2-Binning": "2",')),
        "binning-3x3": _edit(text, ('"Andor Zyla 4.2-Binning": "1x1",', '"Andor Zyla 4.2-Binning": "3x3",')),
        "comment": _edit(text, ('"Positions": 1', '"Positions": 1,\n  "Comment": "cells, fixed: day 3"')),
        "z-step": _edit(text, ('"Slices": 1,', '"Slices": 3,'),
                        ('"Positions": 1', '"Positions": 1,\n  "z-step_um": 0.5')),
        "colour": _edit(text, ('"ChColors": [-1],', '"ChColors": [-16776961],')),
        "pixel-size-0": _edit(text, ('"PixelSize_um": 0.108,', '"PixelSize_um": 0,')),
        "slices-first": _edit(text, ('"SlicesFirst": false,', '"SlicesFirst": true,')),
        "two-frames-sorted-stamps": _frames(two_t, frame1),  # the later frame's earlier stamp goes first
        "frame-missing-for-t0": _frames(two_t, frame1).replace('"FrameKey-0-0-0"', '"FrameKey-5-0-0"'),
        "three-t-two-frames": _frames(_edit(text, ('"Frames": 1,', '"Frames": 3,')), frame1),
        "two-channels": _frames(two_c, channel1),
        "fewer-names-than-channels": _frames(_edit(text, ('"Channels": 1,', '"Channels": 2,')), channel1),
        "last-line-loses-a-character": _edit(text, ('"Laser: Obis 405nm-State": "1"\n}',
                                                   '"Laser: Obis 405nm-State": "1",\n  "ElapsedTime-ms": 123456\n}')),
        "crlf": text.replace("\n", "\r\n"),
    }
    return edits[name]


VARIANTS = ("time-utc", "time-gmt", "time-ut", "time-cet", "time-jst", "time-pst", "time-edt", "time-wrong-weekday",
            "exposure", "exposure-string", "position-name",
            "position-name-null", "camera", "camera-key-before-core-camera", "binning-2", "binning-3x3", "comment",
            "z-step", "colour", "pixel-size-0", "slices-first", "two-frames-sorted-stamps", "frame-missing-for-t0",
            "three-t-two-frames",
            "two-channels", "fewer-names-than-channels", "last-line-loses-a-character", "crlf")


@pytest.mark.parametrize("name", VARIANTS)
def test_metadata_txt_variants_equal_live_bioformats(name: str, tmp_path: Path, corpus: Path, mm: MicromanagerEngine,
                                                     bioformats: BioFormatsEngine) -> None:
    path = _mm_folder(tmp_path, corpus, name, _variant((corpus / METADATA_TXT).read_text("utf-8"), name))
    expected = bioformats.extract(str(path))
    assert _claim(mm, path) == CLAIM
    xml = mm.extract(str(path))
    assert normalise(xml) == normalise(expected)
    assert validate(xml) == (True, None)
    pinned = {  # what each rule gives (Bio-Formats gave the same, above)
        "time-utc": "<AcquisitionDate>2016-07-06T10:50:32</AcquisitionDate>",
        "exposure": 'ExposureTime="50.0" ExposureTimeUnit="ms"',
        "position-name": 'Name="Pos-A1"',
        "camera": 'Gain="-3.0"',
        "binning-3x3": 'Binning="Other"',
        "time-pst": "<AcquisitionDate>2016-07-06T17:50:32</AcquisitionDate>",
        "time-edt": "<AcquisitionDate>2016-07-06T14:50:32</AcquisitionDate>",
        "time-wrong-weekday": "<AcquisitionDate>2016-07-04T10:50:32</AcquisitionDate>",
        "two-frames-sorted-stamps": 'DeltaT="1000.0" DeltaTUnit="ms" ExposureTime="80.0" ExposureTimeUnit="ms" '
                                    'TheC="0" TheT="0"',
        "last-line-loses-a-character": 'DeltaT="12345.0"',
    }
    if name in pinned:
        assert pinned[name] in xml
    if name in ("time-cet", "time-jst"):
        assert "AcquisitionDate" not in xml


def test_metadata_txt_named_plainly(tmp_path: Path, corpus: Path, mm: MicromanagerEngine) -> None:
    text = (corpus / METADATA_TXT).read_text("utf-8")
    plain = _mm_folder(tmp_path, corpus, "plain", text, txt="metadata.txt")
    assert _claim(mm, plain) == CLAIM
    assert 'Name="metadata.txt"' in mm.extract(str(plain))  # checked live: Bio-Formats names it so
    both = _mm_folder(tmp_path, corpus, "both", text)
    (both.parent / "metadata.txt").write_text(text)
    assert _claim(mm, both) == 0  # Bio-Formats would read the plain metadata.txt instead


#: Edits that leave the file to Bio-Formats (its rule there is not reproduced), with the reason given.
DECLINED_TXT: dict[str, tuple[tuple[str, str], ...] | str] = {
    "time-dst-gap": ((TIME, "Sun Mar 13 02:30:00 PST 2016"),),  # a local time that does not exist
    "time-odd": ((TIME, "2016-07-06 10:50:32"),),
    "summary-filename": (('"Positions": 1', '"Positions": 1,\n  "FileName": "x.tif"'),),
    "spim": (('"Positions": 1', '"Positions": 1,\n  "SPIMmode": 1'),),
    "ccd-mode": ((AFTER, AFTER + '\n  "Andor Zyla 4.2-CCDMode": "EM"'),),
    "dac-volts": ((AFTER, AFTER + '\n  "DAC-1-Volts": "2.5",'),),
    "no-binning": (('"Andor Zyla 4.2-Binning": "1x1",', '"Andor Zyla 4.2-Binning": "bin 2",'),),
    "first-plane-without-frame": (('"Slices": 1,', '"Slices": 2,'), ('"FrameKey-0-0-0"', '"FrameKey-0-0-1"')),
    "ij-type-2": (('"IJType": 1,', '"IJType": 2,'),),
    "no-channels": (('  "Channels": 1,\n', ''),),
    "more-names": (('"ChNames": ["Default"],', '"ChNames": ["A", "B"],'),),
    "array-over-lines": (('"ChNames": ["Default"],', '"ChNames": [\n"Default"\n],'),),
    "blank-line": (('"Positions": 1', '"Positions": 1\n'),),
    "nested-block": ((AFTER, AFTER + '\n  "Nested": {\n  "a": 1\n  },'),),
    "coords-block": "coords",
    "missing-tiff": (('"FileName": "HeLaS', '"FileName": "Other'),),
    "tiny-pixel": (('"PixelSize_um": 0.108,', '"PixelSize_um": 1e-7,'),),
    "huge": (('"Frames": 1,', '"Frames": 999999,'),),
}


#: What each declined edit's message names.
DECLINED_WHY = {
    "time-dst-gap": "daylight-saving", "time-odd": "Time",
    "summary-filename": "FileName", "spim": "SPIMmode", "ccd-mode": "CCDMode", "dac-volts": "DAC",
    "no-binning": "binning", "ij-type-2": "IJType", "no-channels": "no Channels", "more-names": "more channel names",
    "array-over-lines": "summary line", "blank-line": "summary line", "nested-block": "frame line",
    "coords-block": "other than FrameKey", "missing-tiff": "not in the folder", "tiny-pixel": "PixelSize_um",
    "huge": "sizes", "first-plane-without-frame": "no frame among the first planes",
}


@pytest.mark.parametrize("name", sorted(DECLINED_TXT))
def test_unproven_metadata_txt_is_declined(name: str, tmp_path: Path, corpus: Path, mm: MicromanagerEngine) -> None:
    text = (corpus / METADATA_TXT).read_text("utf-8")
    edits = DECLINED_TXT[name]
    coords = '"Coords-x.tif": {\n  "time": 0\n}'
    text = _frames(text, coords) if edits == "coords" else _edit(text, *edits)  # type: ignore[misc]
    path = _mm_folder(tmp_path, corpus, name, text)
    assert _claim(mm, path) == 0
    with pytest.raises(ExtractionError, match="does not read") as info:
        mm.extract(str(path))
    assert "\n" not in str(info.value) and DECLINED_WHY[name] in str(info.value)


def test_metadata_txt_folders_that_change_the_reader(tmp_path: Path, corpus: Path, mm: MicromanagerEngine) -> None:
    text = (corpus / METADATA_TXT).read_text("utf-8")
    pos = _mm_folder(tmp_path, corpus, "pos", text, folder="Pos_000")
    assert _claim(mm, pos) == 0  # a multi-position dataset
    acq = _mm_folder(tmp_path, corpus, "acq", text)
    (acq.parent / "Acqusition.xml").write_text("<entries/>")
    assert _claim(mm, acq) == 0


def test_metadata_txt_with_stage_positions_in_the_tiff(tmp_path: Path, corpus: Path, mm: MicromanagerEngine,
                                                       bioformats: BioFormatsEngine) -> None:
    # MicromanagerReader does not read the positions in the TIFF's Micro-Manager tag (checked live here and over
    # random variants in test_differential_micromanager.py); positions in its ImageJ metadata stay declined
    text = (corpus / METADATA_TXT).read_text("utf-8")
    path = _mm_folder(tmp_path, corpus, "positions", text)
    tiff = path.parent / _MM_TIF
    tiff.unlink()
    tifffile.imwrite(tiff, np.zeros((8, 8), np.uint16),
                     extratags=[(51123, "s", 0, '{"XPositionUm": 12.5, "ChannelIndex": 0}', True)])
    assert _claim(mm, path) == CLAIM
    assert normalise(mm.extract(str(path))) == normalise(bioformats.extract(str(path)))
    tiff.unlink()
    tifffile.imwrite(tiff, np.zeros((8, 8), np.uint16), imagej=True, metadata={"Info": "XPositionUm=12.5"})
    assert _claim(mm, path) == 0
    with pytest.raises(ExtractionError, match="stage positions"):
        mm.extract(str(path))


def test_broken_metadata_txt(tmp_path: Path, mm: MicromanagerEngine) -> None:
    cases = {
        "garbage_metadata.txt": b"Micro-Manager\x00\xff\xfe" * 100,
        "cut_metadata.txt": b'{\n"Summary": {\n  "Source": "Micro-Manager",\n',
        "braces_metadata.txt": b'{\n"Summary": {\n  "Source": "Micro-Manager"\n}\n}\n',
        "deep_metadata.txt": b'{\n"Summary": {\n  "Source": "Micro-Manager"\n},\n' + b'"FrameKey-0-0-0": {\n' * 5000,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert _claim(mm, path) == 0, name
        with pytest.raises(ExtractionError):
            mm.extract(str(path))
