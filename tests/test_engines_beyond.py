"""Beyond Bio-Formats in ``auto``: a file that fails in its group is read alone, a non-image is said to be
one; and ``metaextract compare``."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from metaextract.cli import main
from metaextract.cli.compare import differences
from metaextract.engines.dicom import DicomEngine
from metaextract.engines.tiff.plain import TiffEngine
from metaextract.extraction.pipeline import extract_file
from metaextract.ome import key_fields

DICOM_IMAGES = ["boxes_0.dcm", "boxes_1.dcm", "sm_image.dcm", "sm_image_grayscale.dcm"]


@pytest.mark.parametrize("name", DICOM_IMAGES)
def test_dicom_poisoned_by_its_sibling_is_read_alone(name: str, corpus: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = corpus / "dicom" / name
    assert extract_file(str(path), "bioformats").status == "failed"  # as showinf does, in place
    # the pydicom engine now claims these files itself; without it, auto falls back on Bio-Formats alone
    monkeypatch.setattr(DicomEngine, "claim", lambda self, path, head: 0)
    result = extract_file(str(path), "auto")
    assert result.status == "ok", result.error
    assert result.valid, result.validation_error
    assert any(n.startswith("read alone:") and "IllegalArgumentException: OD" in n for n in result.notes)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    pixels = key_fields(result.omexml or "")["images"][0]["pixels"]
    # the file's own header: the frame's columns x rows (the first image is the full-resolution one)
    assert (pixels["size_x"], pixels["size_y"]) == (
        int(header.get("TotalPixelMatrixColumns", header.Columns)),
        int(header.get("TotalPixelMatrixRows", header.Rows)),
    )
    assert pixels["type"] == ("uint8" if header.BitsAllocated == 8 else "uint16")


def test_dicom_annotation_is_not_an_image(corpus: Path) -> None:
    result = extract_file(str(corpus / "dicom" / "sm_annotations.dcm"), "auto")
    assert result.status == "unsupported"
    assert result.error and "not an image: DICOM object without pixel data" in result.error
    assert "Annotations" in result.error and "\n" not in result.error


def test_compare_prints_nothing_when_engines_agree(corpus: Path) -> None:
    files = [str(corpus / "tiff" / "psf.tif"), str(corpus / "tiff-plate-sbs" / "Channel1-01-A-01.tif")]
    res = CliRunner().invoke(main, ["compare", *files])
    assert res.exit_code == 0, res.output
    assert res.stdout == ""


def test_compare_prints_the_differing_fields_and_exits_1(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = TiffEngine.extract
    monkeypatch.setattr(TiffEngine, "extract",
                        lambda self, path: original(self, path).replace('SizeT="61"', 'SizeT="60"'))
    res = CliRunner().invoke(main, ["compare", str(corpus / "tiff" / "psf.tif")])
    assert res.exit_code == 1
    first, field = res.stdout.strip().splitlines()
    assert first.split("\t")[1:] == ["first difference (tifffile != bioformats)",
                                     "/OME/Image[0]/Pixels[0]@SizeT: '60' != '61'"]
    assert field.split("\t")[1:] == ["images[0].pixels.size_t", "tifffile=60", "bioformats=61"]


def test_differences_compares_every_key_field(reference: Path) -> None:
    xml = (reference / "tiff" / "NikonTIF.tif.xml").read_text("utf-8")
    changed = xml.replace('ExposureTime="0.5"', 'ExposureTime="0.25"').replace("NikonTIF.tif", "other.tif")
    assert differences(xml, xml) == []
    assert differences(changed, xml) == [
        ("images[0].name", "other.tif", "NikonTIF.tif"),
        ("images[0].planes[0].exposure_time", [0.25, "s"], [0.5, "s"]),
    ]
