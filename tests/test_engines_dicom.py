"""The pydicom engine: a rescuer for DICOM images Bio-Formats cannot read even alone (none in the corpus
today), checked against Bio-Formats (read alone) on the corpus DICOMs and on synthetic classic DICOMs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from metaextract._extract import extract_file, read_head
from metaextract.engines.base import ExtractionError
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.dicom import DicomEngine
from metaextract.ome import key_fields, normalise, validate

from ._corpus import corpus_files

CORPUS_IMAGES = ["boxes_0.dcm", "boxes_1.dcm", "sm_image.dcm", "sm_image_grayscale.dcm"]
MR = "1.2.840.10008.5.1.4.1.1.4"


def write_dicom(path: Path, arr: np.ndarray, *, samples: int = 1, photometric: str = "MONOCHROME2",
                frames: int | None = None, signed: bool = False, stored: int | None = None,
                spacing: tuple[float, float] | None = (0.5, 0.25),
                image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"), **extra: Any) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MR, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "MR", "anonymous", "1"
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
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


SYNTHETIC: dict[str, dict[str, Any]] = {
    "int16-12-bits-stored": {"arr": np.zeros((6, 8), np.int16), "signed": True, "stored": 12},
    "uint8-multiframe": {"arr": np.zeros((5, 6, 8), np.uint8), "frames": 5, "SliceThickness": 2.0},
    "rgb-no-spacing": {"arr": np.zeros((6, 8, 3), np.uint8), "samples": 3, "photometric": "RGB",
                       "spacing": None, "image_type": ("DERIVED", "SECONDARY")},
    "uint32": {"arr": np.zeros((6, 8), np.uint32)},
    "one-image-type-value": {"arr": np.zeros((6, 8), np.uint16), "image_type": ("ORIGINAL",)},
}


@pytest.fixture
def bioformats() -> BioFormatsEngine:
    """A fresh Bio-Formats reader per test: a reused one leaks DICOM channel names (see the last test)."""
    return BioFormatsEngine()


@pytest.mark.parametrize("name", CORPUS_IMAGES)
def test_corpus_dicom_agrees_with_bioformats_alone(name: str, corpus: Path, bioformats: BioFormatsEngine) -> None:
    path = str(corpus / "dicom" / name)
    mine = DicomEngine().extract(path)
    assert key_fields(mine) == key_fields(bioformats.extract_alone(path))
    assert validate(mine) == (True, None)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    pixels = key_fields(mine)["images"][0]["pixels"]
    assert (pixels["size_x"], pixels["size_y"], pixels["size_c"]) == (
        header.TotalPixelMatrixColumns, header.TotalPixelMatrixRows, header.SamplesPerPixel)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_dicom_agrees_with_bioformats(name: str, tmp_path: Path, bioformats: BioFormatsEngine) -> None:
    path = str(write_dicom(tmp_path / name / "image.dcm", **SYNTHETIC[name]))
    mine, expected = DicomEngine().extract(path), bioformats.extract(path)
    assert key_fields(mine) == key_fields(expected)
    assert normalise(mine) == normalise(expected)  # the whole document, for these simple headers


def test_frames_are_z_planes(tmp_path: Path) -> None:
    path = str(write_dicom(tmp_path / "f.dcm", **SYNTHETIC["uint8-multiframe"]))
    pixels = key_fields(DicomEngine().extract(path))["images"][0]["pixels"]
    assert (pixels["size_z"], pixels["size_t"]) == (5, 1)


def test_tiled_frames_of_several_planes_are_declined(corpus: Path) -> None:
    # 1,250 frames of 10 x 10 tiles in a 50 x 50 matrix: 50 planes (segments); Bio-Formats reports one
    path = str(corpus / "dicom" / "seg_image_sm_dots_tiled_full.dcm")
    with pytest.raises(ExtractionError, match="1250 frames of 25 tiles"):
        DicomEngine().extract(path)


def test_never_claims_and_rescues_only_after_bioformats_failed_alone(
        corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = DicomEngine()
    assert all(engine.claim(str(corpus / rel), read_head(str(corpus / rel))) == 0 for rel in corpus_files(corpus))
    path = str(corpus / "dicom" / "sm_image_grayscale.dcm")
    assert extract_file(path, "auto").engine.startswith("bioformats ")  # read alone by Bio-Formats

    def fail(self: BioFormatsEngine, path: str) -> str:
        raise ExtractionError("Bio-Formats failed: simulated")

    monkeypatch.setattr(BioFormatsEngine, "extract_alone", fail)
    result = extract_file(path, "auto")
    assert result.status == "ok", result.error
    assert result.engine.startswith("pydicom ") and result.valid
    assert result.notes[0].startswith("read by pydicom ") and "IllegalArgumentException: OD" in result.notes[0]
    annotation = extract_file(str(corpus / "dicom" / "sm_annotations.dcm"), "auto")
    assert annotation.status == "unsupported"  # no image: not handed to a rescuer


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
