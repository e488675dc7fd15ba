"""The pydicom engine: claims the DICOM kinds whose document equals Bio-Formats 7.3.1's for the file read on
its own (what ``auto`` gave before: the grouped read, or the alone read when the grouped one fails), says
a DICOM without pixel data is no image without starting a JVM, and still rescues what Bio-Formats cannot
read. Checked against live Bio-Formats on the corpus DICOMs, on synthetic DICOMs and on folders of
siblings (grouped, not grouped, poisoned by a bulk annotation)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.config import disable_value_validation
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from metaextract.engines.base import ExtractionError, UnsupportedFormatError
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.dicom import CLAIM, DicomEngine
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise, validate

from ._corpus import corpus_files

CORPUS_IMAGES = ["boxes_0.dcm", "boxes_1.dcm", "seg_image_sm_dots_tiled_full.dcm", "sm_image.dcm",
                 "sm_image_grayscale.dcm"]
ANNOTATION = "sm_annotations.dcm"
MR = "1.2.840.10008.5.1.4.1.1.4"


def write_dicom(path: Path, arr: np.ndarray, *, samples: int = 1, photometric: str = "MONOCHROME2",
                frames: int | None = None, signed: bool = False, stored: int | None = None,
                spacing: tuple[float, float] | None = (0.5, 0.25),
                image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
                syntax: str = ExplicitVRLittleEndian, **extra: Any) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MR, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "MR", "anonymous", "1"
    if image_type:
        ds.ImageType = list(image_type)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = arr.shape[-3:-1] if samples > 1 else arr.shape[-2:]
    bits = arr.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, stored or bits, (stored or bits) - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames:
        ds.NumberOfFrames = frames
    if spacing:
        ds.PixelSpacing = list(spacing)
    with disable_value_validation():  # a crafted file may hold values pydicom would warn about (a bad DA)
        for keyword, value in extra.items():
            setattr(ds, keyword, value)
    ds.PixelData = arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def edit(path: Path, change: Callable[[Dataset], None]) -> Path:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def optical_paths(count: int, description: str | None = "GFP") -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        items = []
        for i in range(count):
            item = Dataset()
            item.OpticalPathIdentifier = str(i + 1)
            if description:
                item.OpticalPathDescription = description
            items.append(item)
        ds.OpticalPathSequence = items
    return change


def shared_spacing(ds: Dataset) -> None:
    measures = Dataset()
    measures.PixelSpacing = [0.002, 0.003]
    group = Dataset()
    group.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [group]


def od_element(ds: Dataset) -> None:
    ds.add_new(0x00090010, "LO", "METAEXTRACT")
    ds.add_new(0x00091001, "OD", b"\0" * 8)


# Each was compared with live Bio-Formats (its grouped read, the first thing ``auto`` did) below.
SYNTHETIC: dict[str, dict[str, Any]] = {
    "int16-12-bits-stored": {"arr": np.zeros((6, 8), np.int16), "signed": True, "stored": 12},
    "uint8-multiframe-z-spacing-position": {"arr": np.zeros((5, 6, 8), np.uint8), "frames": 5,
                                            "SpacingBetweenSlices": 2.5, "ImagePositionPatient": [1.5, -2.25, 3]},
    "rgb-no-spacing": {"arr": np.zeros((6, 8, 3), np.uint8), "samples": 3, "photometric": "RGB",
                       "spacing": None, "image_type": ("DERIVED", "SECONDARY")},
    "rgb-no-planar-configuration": {"arr": np.zeros((6, 8, 3), np.uint8), "samples": 3, "photometric": "RGB",
                                    "edit": lambda ds: delattr(ds, "PlanarConfiguration")},
    "ybr-full": {"arr": np.zeros((6, 8, 3), np.uint8), "samples": 3, "photometric": "YBR_FULL"},
    "monochrome1-int16": {"arr": np.zeros((6, 8), np.int16), "signed": True, "photometric": "MONOCHROME1"},
    "int8": {"arr": np.zeros((6, 8), np.int8), "signed": True},
    "uint32": {"arr": np.zeros((6, 8), np.uint32)},
    "one-image-type-value": {"arr": np.zeros((6, 8), np.uint16), "image_type": ("ORIGINAL",)},
    "five-image-type-values": {"arr": np.zeros((6, 8), np.uint8),
                               "image_type": ("ORIGINAL", "PRIMARY", "VOLUME", "NONE", "X")},
    "no-image-type": {"arr": np.zeros((6, 8), np.uint16), "image_type": ()},  # named after the file
    "total-matrix-not-tiled-full": {"arr": np.zeros((4, 6, 8), np.uint8), "frames": 4,
                                    "TotalPixelMatrixColumns": 16, "TotalPixelMatrixRows": 12},
    "focal-planes": {"arr": np.zeros((8, 6, 8), np.uint8), "frames": 8, "TotalPixelMatrixColumns": 16,
                     "TotalPixelMatrixRows": 12, "TotalPixelMatrixFocalPlanes": 2,
                     "DimensionOrganizationType": "TILED_FULL"},
    "optical-path-described": {"arr": np.zeros((6, 8), np.uint16), "edit": optical_paths(1)},
    "optical-path-undescribed": {"arr": np.zeros((6, 8), np.uint16), "edit": optical_paths(1, None)},
    "two-optical-paths": {"arr": np.zeros((2, 6, 8), np.uint16), "frames": 2, "edit": optical_paths(2)},
    "shared-pixel-spacing-wins": {"arr": np.zeros((6, 8), np.uint16), "edit": shared_spacing},
    "content-date-and-time": {"arr": np.zeros((6, 8), np.uint16), "ContentDate": "20200102",
                              "ContentTime": "101112.5"},
    "zero-row-spacing": {"arr": np.zeros((6, 8), np.uint16), "spacing": (0.0, 0.5)},
    "implicit-vr": {"arr": np.zeros((2, 6, 8), np.uint16), "frames": 2, "syntax": ImplicitVRLittleEndian,
                    "edit": optical_paths(1)},
    "palette": {"arr": np.zeros((6, 8), np.uint8), "photometric": "PALETTE COLOR",
                "RedPaletteColorLookupTableDescriptor": [256, 0, 16], "RedPaletteColorLookupTableData": bytes(512)},
    "empty-image-type-values": {"arr": np.zeros((6, 8), np.uint8), "image_type": ("ORIGINAL", "", "PRIMARY", "X")},
    "old-content-date-without-colons": {"arr": np.zeros((6, 8), np.uint8), "ContentDate": "2020.01.02",
                                        "ContentTime": "101112"},
}


def make(folder: Path, name: str, file_name: str = "image.dcm") -> Path:
    spec = dict(SYNTHETIC[name])
    change = spec.pop("edit", None)
    path = write_dicom(folder / file_name, **spec)
    return edit(path, change) if change else path


@pytest.fixture
def bioformats() -> BioFormatsEngine:
    """A fresh Bio-Formats reader per test: a reused one leaks DICOM channel names (see the last test)."""
    return BioFormatsEngine()


def _claimed(path: Path) -> tuple[DicomEngine, int]:
    engine = DicomEngine()
    return engine, engine.claim(str(path), read_head(str(path)))


# -- the corpus ----------------------------------------------------------------------------------------

def test_the_corpus_dicom_files_are_all_accounted_for(corpus: Path) -> None:
    assert sorted(p for p in corpus_files(corpus) if p.startswith("dicom/")) == sorted(
        f"dicom/{n}" for n in [*CORPUS_IMAGES, ANNOTATION])


@pytest.mark.parametrize("name", CORPUS_IMAGES)
def test_corpus_dicom_is_claimed_and_equals_bioformats_alone(name: str, corpus: Path,
                                                             bioformats: BioFormatsEngine) -> None:
    path = corpus / "dicom" / name
    engine, score = _claimed(path)
    assert score == CLAIM
    mine = engine.extract(str(path))
    expected = bioformats.extract_alone(str(path))
    assert key_fields(mine) == key_fields(expected)
    assert normalise(mine) == normalise(expected)
    assert validate(mine) == (True, None)


def test_segmentation_equals_the_reference(corpus: Path, reference: Path) -> None:
    # 1,250 bit-packed frames of 10 x 10 tiles over a 50 x 50 matrix: Bio-Formats reports one 50 x 50 uint8
    # plane with 1 significant bit (the only corpus DICOM its grouped read in place gets through)
    rel = "dicom/seg_image_sm_dots_tiled_full.dcm"
    mine = DicomEngine().extract(str(corpus / rel))
    expected = (reference / f"{rel}.xml").read_text("utf-8")
    assert normalise(mine) == normalise(expected)
    pixels = key_fields(mine)["images"][0]["pixels"]
    assert (pixels["size_x"], pixels["size_y"], pixels["size_z"], pixels["type"], pixels["significant_bits"]) \
        == (50, 50, 1, "uint8", 1)


def test_corpus_images_need_no_jvm_in_auto(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from metaextract import engines

    def no_jvm(self: BioFormatsEngine, path: str) -> str:
        raise AssertionError("Bio-Formats was asked")

    monkeypatch.setattr(BioFormatsEngine, "extract", no_jvm)
    monkeypatch.setattr(BioFormatsEngine, "extract_alone", no_jvm)
    for name in CORPUS_IMAGES:
        path = str(corpus / "dicom" / name)
        assert engines.choose(path, read_head(path), "auto").name == "pydicom"
        result = extract_file(path, "auto")
        assert result.status == "ok", result.error
        assert result.engine == "pydicom" and result.valid and not result.notes


def test_annotation_is_claimed_and_reported_no_image(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = corpus / "dicom" / ANNOTATION
    engine, score = _claimed(path)
    assert score == CLAIM
    with pytest.raises(UnsupportedFormatError, match=r"^not an image: DICOM object without pixel data "
                                                     r"\(Microscopy Bulk Simple Annotations Storage\)$"):
        engine.extract(str(path))
    monkeypatch.setattr(BioFormatsEngine, "extract", lambda self, p: (_ for _ in ()).throw(AssertionError(p)))
    result = extract_file(str(path), "auto")
    assert result.status == "unsupported" and result.engine == "pydicom"
    assert result.error and "not an image: DICOM object without pixel data" in result.error


# -- synthetic DICOMs against live Bio-Formats ---------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_dicom_is_claimed_and_agrees_with_bioformats(name: str, tmp_path: Path,
                                                               bioformats: BioFormatsEngine) -> None:
    path = make(tmp_path / name, name)
    engine, score = _claimed(path)
    assert score == CLAIM
    mine, expected = engine.extract(str(path)), bioformats.extract(str(path))
    assert key_fields(mine) == key_fields(expected)
    assert normalise(mine) == normalise(expected)  # the whole document
    assert validate(mine) == (True, None)


def test_mapping_details(tmp_path: Path) -> None:
    def fields(name: str) -> dict[str, Any]:
        return key_fields(DicomEngine().extract(str(make(tmp_path / name, name))))["images"][0]

    image = fields("uint8-multiframe-z-spacing-position")
    assert image["pixels"]["size_z"] == 5 and image["pixels"]["physical_size_z"] == [2.5, "mm"]
    assert (image["planes"][0]["position_x"], image["planes"][0]["position_z"]) == ([1.5, "mm"], [3.0, "mm"])
    assert image["planes"][1]["position_x"] is None  # only the file's one position, on the first plane
    assert fields("no-image-type")["name"] == "image.dcm"
    assert fields("five-image-type-values")["name"] == "VOLUME"
    assert fields("optical-path-described")["channels"][0]["name"] == "GFP"
    assert fields("shared-pixel-spacing-wins")["pixels"]["physical_size_x"] == [0.003, "mm"]
    assert fields("focal-planes")["pixels"]["size_z"] == 2
    assert fields("zero-row-spacing")["pixels"]["physical_size_y"] is None


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                                    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"])
def test_jpeg_syntaxes_are_claimed_and_agree(syntax: str, tmp_path: Path, bioformats: BioFormatsEngine) -> None:
    path = write_dicom(tmp_path / "image.dcm", np.zeros((6, 8, 3), np.uint8), samples=3, photometric="RGB")
    fragment = b"\xff\x4f\xff\x51" if syntax.endswith((".90", ".91")) else b"\xff\xd8\xff\xe0"

    def compress(ds: Dataset) -> None:  # a stand-in codestream: only the header is read, by either engine
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([fragment + b"\0" * 60 + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"

    edit(path, compress)
    engine, score = _claimed(path)
    assert score == CLAIM
    assert normalise(engine.extract(str(path))) == normalise(bioformats.extract(str(path)))


# -- declined kinds ------------------------------------------------------------------------------------

def _recode(ds: Dataset, syntax: str) -> None:
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([b"\0" * 64])
    ds["PixelData"].VR = "OB"


DECLINED: dict[str, tuple[dict[str, Any], str]] = {
    "jpeg-ls": ({"arr": np.zeros((6, 8), np.uint8), "edit": lambda ds: _recode(ds, "1.2.840.10008.1.2.4.80")},
                "transfer syntax 1.2.840.10008.1.2.4.80"),
    # RLE: Bio-Formats reports it not interleaved (checked live); not reproduced
    "rle": ({"arr": np.zeros((6, 8), np.uint8), "edit": lambda ds: _recode(ds, "1.2.840.10008.1.2.5")},
            "transfer syntax 1.2.840.10008.1.2.5"),
    "hsv": ({"arr": np.zeros((6, 8, 3), np.uint8), "samples": 3, "photometric": "HSV"}, "HSV"),
    "two-optical-paths-tiled": ({"arr": np.zeros((2, 6, 8), np.uint16), "frames": 2, "edit": optical_paths(2),
                                 "TotalPixelMatrixColumns": 16, "TotalPixelMatrixRows": 12},
                                "2 optical paths in a tiled image"),
    "only-empty-image-type-values": ({"arr": np.zeros((6, 8), np.uint8), "image_type": ("", "", "")},
                                     "ImageType with only empty values"),
    # live: 2020-01-02T10:11:12.005 (the fraction read as milliseconds); not reproduced
    "old-content-date": ({"arr": np.zeros((6, 8), np.uint8), "ContentDate": "2020.01.02",
                          "ContentTime": "10:11:12.5"}, "ContentDate"),
    "bits-allocated-12": ({"arr": np.zeros((6, 8), np.uint16), "edit": lambda ds: setattr(ds, "BitsAllocated", 12)},
                          "BitsAllocated 12"),
}


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_unchecked_kinds_are_declined_with_a_reason(name: str, tmp_path: Path) -> None:
    spec, reason = DECLINED[name]
    spec = dict(spec)
    change = spec.pop("edit", None)
    path = write_dicom(tmp_path / "image.dcm", **spec)
    if change:
        edit(path, change)
    engine, score = _claimed(path)
    assert score == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


def test_elements_after_uncompressed_pixels_are_declined(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "image.dcm", np.zeros((6, 8), np.uint16))
    with open(path, "ab") as fh:  # DataSetTrailingPadding (FFFC,FFFC) OB of 8 bytes: Bio-Formats reads on
        fh.write(b"\xfc\xff\xfc\xffOB\0\0\x08\0\0\0" + b"\0" * 8)
    assert _claimed(path)[1] == 0
    with pytest.raises(ExtractionError, match="after the pixel data"):
        DicomEngine().extract(str(path))


@pytest.mark.parametrize("cut", [200, 700, 2000])
def test_truncated_and_damaged_files_are_not_claimed(cut: int, corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "dicom" / "sm_image.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:cut])
    engine, score = _claimed(path)
    assert score == 0
    with pytest.raises(ExtractionError):
        engine.extract(str(path))
    noise = tmp_path / "noise.dcm"
    noise.write_bytes(data[:132] + bytes(range(256)) * 8)
    assert _claimed(noise)[1] == 0


def test_a_vr_bioformats_cannot_read_is_declined_and_rescued(tmp_path: Path, bioformats: BioFormatsEngine) -> None:
    path = edit(write_dicom(tmp_path / "od.dcm", np.zeros((6, 8), np.uint16)), od_element)
    engine, score = _claimed(path)
    assert score == 0
    with pytest.raises(ExtractionError, match="VR OD"):
        engine.extract(str(path))
    with pytest.raises(ExtractionError, match="IllegalArgumentException: OD"):
        bioformats.extract_alone(str(path))  # Bio-Formats fails even alone
    result = extract_file(str(path), "auto")  # so the rescuer answers, saying why
    assert result.status == "ok", result.error
    assert result.engine == "pydicom" and result.valid
    assert result.notes[0].startswith("read by pydicom ") and "IllegalArgumentException: OD" in result.notes[0]
    assert key_fields(result.omexml or "")["images"][0]["pixels"]["size_x"] == 8


# -- siblings: Bio-Formats' grouped read ---------------------------------------------------------------

GROUPABLE = {"InstanceNumber": "1", "AcquisitionDate": "20200101", "AcquisitionTime": "101010", "SeriesNumber": "1"}


def _auto_answer(bioformats: BioFormatsEngine, path: Path) -> str:
    """What ``auto`` gave before this engine claimed DICOM: the grouped read, else the alone read."""
    try:
        return bioformats.extract(str(path))
    except ExtractionError:
        return BioFormatsEngine().extract_alone(str(path))


def test_siblings_of_another_series_or_date_are_not_grouped(tmp_path: Path, bioformats: BioFormatsEngine) -> None:
    target = write_dicom(tmp_path / "a.dcm", np.zeros((6, 8), np.uint16), **GROUPABLE)
    write_dicom(tmp_path / "b.dcm", np.zeros((6, 8), np.uint16), **{**GROUPABLE, "SeriesNumber": "2"})
    write_dicom(tmp_path / "c.dcm", np.zeros((6, 8), np.uint16), **{**GROUPABLE, "AcquisitionDate": "20200102"})
    engine, score = _claimed(target)
    assert score == CLAIM
    assert normalise(engine.extract(str(target))) == normalise(_auto_answer(bioformats, target))


def test_a_sibling_of_the_same_series_is_declined(tmp_path: Path) -> None:
    target = write_dicom(tmp_path / "a.dcm", np.zeros((6, 8), np.uint16), **GROUPABLE)
    write_dicom(tmp_path / "b.dcm", np.zeros((6, 8), np.uint16), **{**GROUPABLE, "InstanceNumber": "2"})
    assert _claimed(target)[1] == 0
    with pytest.raises(ExtractionError, match=r"may group with it \(b.dcm\)"):
        DicomEngine().extract(str(target))


def test_corpus_images_without_the_annotation_beside_them(corpus: Path, tmp_path: Path,
                                                          bioformats: BioFormatsEngine) -> None:
    """Without the annotation that makes the grouped read throw, sm_image and sm_image_grayscale (same
    series and acquisition) are grouped by Bio-Formats: declined; boxes_0 (series 0) is not: claimed."""
    for name in ("boxes_0.dcm", "sm_image.dcm", "sm_image_grayscale.dcm"):
        shutil.copy(corpus / "dicom" / name, tmp_path / name)
    assert _claimed(tmp_path / "sm_image.dcm")[1] == 0
    assert _claimed(tmp_path / "sm_image_grayscale.dcm")[1] == 0
    engine, score = _claimed(tmp_path / "boxes_0.dcm")
    assert score == CLAIM
    target = tmp_path / "boxes_0.dcm"
    assert normalise(engine.extract(str(target))) == normalise(bioformats.extract(str(target)))


def test_a_poisoning_annotation_makes_the_grouped_read_fail(corpus: Path, tmp_path: Path,
                                                            bioformats: BioFormatsEngine) -> None:
    for name in ("sm_image.dcm", "sm_image_grayscale.dcm", ANNOTATION):
        shutil.copy(corpus / "dicom" / name, tmp_path / name)
    target = tmp_path / "sm_image.dcm"
    with pytest.raises(ExtractionError, match="IllegalArgumentException: OD"):
        bioformats.extract(str(target))
    engine, score = _claimed(target)
    assert score == CLAIM
    assert normalise(engine.extract(str(target))) == normalise(BioFormatsEngine().extract_alone(str(target)))


def test_bioformats_engine_does_not_leak_state_between_files(corpus: Path, tmp_path: Path) -> None:
    """Bio-Formats 7.3.1's DicomReader, reused, keeps an earlier file's optical path description and reports
    it as the channel name of a later DICOM that has none (seen with one reused ImageReader, as a
    persistent worker had it). showinf, one JVM per file, never does; our engine takes a fresh ImageReader
    per file, so a worker that read `sm_image_grayscale.dcm` first gives the same answer as a fresh one."""
    path = str(write_dicom(tmp_path / "plain.dcm", np.zeros((6, 8), np.uint16)))
    engine = BioFormatsEngine()
    assert key_fields(engine.extract(path))["images"][0]["channels"][0]["name"] is None
    engine.extract_alone(str(corpus / "dicom" / "sm_image_grayscale.dcm"))
    assert key_fields(engine.extract(path))["images"][0]["channels"][0]["name"] is None
    assert key_fields(DicomEngine().extract(path))["images"][0]["channels"][0]["name"] is None


def test_a_folder_of_many_dicoms_is_left_to_bioformats(tmp_path: Path) -> None:
    target = write_dicom(tmp_path / "a.dcm", np.zeros((6, 8), np.uint16), **GROUPABLE)
    for i in range(70):
        (tmp_path / f"s{i:02d}.dcm").write_bytes(b"\0")  # a .dcm name is enough for DicomReader to look
    assert _claimed(target)[1] == 0
    with pytest.raises(ExtractionError, match="more than 64 sibling DICOM files"):
        DicomEngine().extract(str(target))
    ungroupable = write_dicom(tmp_path / "u.dcm", np.zeros((6, 8), np.uint16))  # no instance/acquisition
    assert _claimed(ungroupable)[1] == CLAIM  # never scans its folder


def test_sibling_verdicts_follow_the_siblings_as_they_change(corpus: Path, tmp_path: Path) -> None:
    # siblings are read once per version of the file (claiming a whole folder stays linear), and a sibling
    # rewritten in place is read again
    engine = DicomEngine()
    me, sib = tmp_path / "sm_image.dcm", tmp_path / "other.dcm"
    shutil.copy(corpus / "dicom" / "sm_image.dcm", me)
    shutil.copy(corpus / "dicom" / "sm_image_grayscale.dcm", sib)
    head = me.read_bytes()[:4096]
    assert engine.claim(str(me), head) == 0  # Bio-Formats groups the two
    assert engine.claim(str(me), head) == 0
    sib.write_bytes((corpus / "dicom" / "boxes_1.dcm").read_bytes())  # another series: no group
    assert engine.claim(str(me), head) > 0
    sib.write_bytes((corpus / "dicom" / "sm_image_grayscale.dcm").read_bytes())
    assert engine.claim(str(me), head) == 0
