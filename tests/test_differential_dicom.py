"""Differential testing of ``auto`` against the live Bio-Formats engine on generated DICOM variants (issue 20).

Variants are written with pydicom (seeded, so a failure is reproducible) along the axes real DICOMs vary:
modality, rows and columns, frames, bits allocated and stored, signedness, photometric interpretation
(RGB and YBR, PALETTE COLOR with or without 8/16-bit lookup tables), pixel spacing (none, zero, in the
shared functional groups), spacing between slices, the patient position, image type (one to five values,
none, an empty value), an optical path, total pixel matrices, dates and times (content, acquisition,
study; an old ``yyyy.MM.dd`` date with times with and without colons), instance and series numbers, the
transfer syntax (explicit or implicit VR), and siblings in the folder (another series, or the same one,
which Bio-Formats may group with the file). PALETTE COLOR, inner empty ImageType values, old dates with a
time without colons, implicit VR and two optical paths of an image that is not tiled were declined before
this test showed them whole; they are claimed now.

For each, ``auto`` (through :func:`~metaextract.extraction.pipeline.extract_file`) is compared with
Bio-Formats for the same file: wherever the pydicom engine answers, its document must equal Bio-Formats'
whole (after normalisation); what it leaves to Bio-Formats is what it declines, with the engine's reason.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from ._differential import compare_with_bioformats, named_kind
from .test_engines_dicom import GROUPABLE, edit, optical_paths, shared_spacing, write_dicom

SEED = 20
VARIANTS = 60
#: native answers (each Bio-Formats' whole document) expected at least, of the variants this seed draws
AGREE_FLOOR = 40
#: What the engine may decline (a part of its reason -> the kind); any other reason fails the test.
DECLINED_KINDS = {
    "ImageType with only empty values": "an ImageType of only empty values",
    "with a time of colons": "an old-style ContentDate with a time of colons (a date Bio-Formats reads oddly)",
    "sibling DICOM files": "a sibling Bio-Formats may group with the file",
    "optical paths in a tiled image": "more than one optical path in a tiled image",
}


def _pixels(rng: random.Random, spec: dict[str, Any]) -> None:
    """Rows, columns, frames, bits and photometric interpretation of one variant (into ``spec``)."""
    rows, cols = rng.choice((4, 6, 17)), rng.choice((5, 8, 32))
    frames = rng.choice((None, None, 1, 3))
    form = rng.choice(("grey", "grey", "grey", "rgb", "ybr", "palette"))
    if form == "grey":
        dtype = rng.choice((np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32))
        shape: tuple[int, ...] = (rows, cols)
        spec.update(signed=np.dtype(dtype).kind == "i", photometric=rng.choice(("MONOCHROME2", "MONOCHROME1")))
        bits = np.dtype(dtype).itemsize * 8
        if bits > 8 and rng.random() < 0.4:
            spec["stored"] = bits - 4
    else:
        dtype, shape = np.uint8, (rows, cols, 3)
        spec.update(samples=3, photometric={"rgb": "RGB", "ybr": "YBR_FULL", "palette": "PALETTE COLOR"}[form])
        if form == "palette":
            dtype, shape = rng.choice((np.uint8, np.uint16)), (rows, cols)
            spec["samples"] = 1
            if rng.random() < 0.7:  # the lookup tables real palette files carry (8 or 16-bit entries)
                entries = rng.choice((8, 16))
                for colour in ("Red", "Green", "Blue"):
                    spec[f"{colour}PaletteColorLookupTableDescriptor"] = [256, 0, entries]
                    spec[f"{colour}PaletteColorLookupTableData"] = bytes(256 * entries // 8)
    if frames:
        shape = (frames, *shape)
        spec["frames"] = frames
    spec["arr"] = np.zeros(shape, dtype)


def _header(rng: random.Random, spec: dict[str, Any]) -> None:
    """Calibration, naming and dates of one variant (into ``spec``)."""
    spec["Modality"] = rng.choice(("MR", "CT", "SM", "OT", "US"))
    spec["spacing"] = rng.choice((None, (0.5, 0.25), (0.002, 0.003), (1, 1), (0.0, 0.5)))
    if rng.random() < 0.3:
        spec["SpacingBetweenSlices"] = rng.choice((2.5, 0.1, 0))
    if rng.random() < 0.3:
        spec["ImagePositionPatient"] = [rng.choice((1.5, -120.25, 0)), rng.choice((-2.25, 88)), rng.choice((3, -0.5))]
    spec["image_type"] = rng.choice((("ORIGINAL", "PRIMARY", "AXIAL"), ("ORIGINAL",), ("DERIVED", "SECONDARY"),
                                     ("ORIGINAL", "PRIMARY", "VOLUME", "NONE", "X"), (), ("ORIGINAL", "", "AXIAL"),
                                     ("", "", ""),
                                     ("ORIGINAL", "", "PRIMARY", "AXIAL"), ("", "PRIMARY", "AXIAL", "X"),
                                     ("ORIGINAL", "PRIMARY", "")))
    if rng.random() < 0.4:
        spec["ContentDate"] = rng.choice(("20200102", "2020.01.02", "19991231"))
        spec["ContentTime"] = rng.choice(("101112.5", "235959", "10:11:12", "10:11:12.5"))
    if rng.random() < 0.3:
        spec["StudyDate"], spec["StudyTime"] = "20190305", "080000"
    if rng.random() < 0.3:
        spec.update(GROUPABLE)  # alone in its folder, or with the siblings below
    if rng.random() < 0.15:
        spec["syntax"] = ImplicitVRLittleEndian


def make_variant(rng: random.Random, folder: Path) -> tuple[Path, list[str]]:
    """One DICOM (and maybe a sibling) in ``folder``; returns the file and what was drawn."""
    spec: dict[str, Any] = {}
    _pixels(rng, spec)
    _header(rng, spec)
    path = write_dicom(folder / "image.dcm", **spec)
    done = [f"{k}={v.shape if k == 'arr' else v}" for k, v in spec.items()]
    change = rng.choice((None, None, None, "optical path", "two optical paths", "shared spacing", "total matrix"))
    if change == "optical path":
        edit(path, optical_paths(1, rng.choice(("GFP", None))))
    elif change == "two optical paths":  # described alike, apart, or the first not at all
        edit(path, optical_paths(2))
        second, first = rng.choice((("GFP", "GFP"), ("DAPI", "GFP"), ("DAPI", None)))
        edit(path, lambda ds: setattr(ds.OpticalPathSequence[1], "OpticalPathDescription", second))
        if first is None:
            edit(path, lambda ds: delattr(ds.OpticalPathSequence[0], "OpticalPathDescription"))
    elif change == "shared spacing":
        edit(path, shared_spacing)
    elif change == "total matrix":
        edit(path, lambda ds: setattr(ds, "TotalPixelMatrixColumns", 64) or setattr(ds, "TotalPixelMatrixRows", 48))
    if change:
        done.append(change)
    sibling = rng.choice((None, None, None, "another series", "same series"))
    if sibling and "InstanceNumber" in spec:
        series = "2" if sibling == "another series" else "1"
        write_dicom(folder / "other.dcm", np.zeros((4, 5), np.uint8),
                    **{**GROUPABLE, "InstanceNumber": "2", "SeriesNumber": series})
        done.append(f"sibling of {sibling}")
    return path, done


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, list[str]]]:
    folder = tmp_path_factory.mktemp("dicom-variants")
    rng = random.Random(SEED)
    return [make_variant(rng, folder / f"v{index:03d}") for index in range(VARIANTS)]


@pytest.mark.slow
def test_every_native_answer_on_generated_dicoms_equals_live_bioformats(
        variants: list[tuple[Path, list[str]]]) -> None:
    # the comparison has teeth: most variants are answered natively, and every decline is a known kind
    tally = compare_with_bioformats(variants, "pydicom", lambda path, _: named_kind("pydicom", path, DECLINED_KINDS))
    tally.assert_proven(len(variants), "pydicom", AGREE_FLOOR, known=DECLINED_KINDS.values())
