"""Engines that read a file beside the one they were given (an ICS header for its .ids, the TIFF a
Micro-Manager metadata.txt names, the sibling DICOMs Bio-Formats would group, an OME-TIFF set) never
follow a link out of the file's folder: a native engine declines or refuses the file and says why;
Bio-Formats is not shown such a link at all, so it reads the file without it or fails and says why."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from metaextract.engines.base import ExtractionError
from metaextract.engines.dicom import DicomEngine
from metaextract.engines.ics import IcsEngine
from metaextract.engines.ometiff.micromanager import MicromanagerEngine
from metaextract.extraction import fence
from metaextract.extraction.pipeline import extract_file, read_head

from .test_hostile import OpenWatch

MM = "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1"
MM_TXT = "HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0_metadata.txt"
MM_TIF = "HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0.ome.tif"


@pytest.fixture()
def places(tmp_path: Path) -> tuple[Path, Path]:
    inside, outside = tmp_path / "registered", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    return inside, outside


def test_in_folder(places: tuple[Path, Path]) -> None:
    inside, outside = places
    (inside / "a").write_text("a")
    (outside / "b").write_text("b")
    os.symlink(inside / "a", inside / "to_a")
    os.symlink(outside / "b", inside / "to_b")
    assert fence.in_folder(str(inside / "a"), str(inside))
    assert fence.in_folder(str(inside / "to_a"), str(inside))
    assert not fence.in_folder(str(inside / "to_b"), str(inside))
    assert not fence.in_folder(str(inside / ".." / "elsewhere" / "b"), str(inside))


def test_ics_header_linked_from_outside_is_not_read(corpus: Path, places: tuple[Path, Path]) -> None:
    inside, outside = places
    shutil.copy(corpus / "ics" / "testim.ics", outside / "testim.ics")
    shutil.copy(corpus / "ics" / "testim.ids", inside / "testim.ids")
    os.symlink(outside / "testim.ics", inside / "testim.ics")
    engine = IcsEngine()
    ids = inside / "testim.ids"
    assert engine.claim(str(ids), read_head(ids)) == 0
    with pytest.raises(ExtractionError, match="resolves outside the file's folder"):
        engine.extract(str(ids))
    # the same pair side by side in the folder is read
    os.unlink(inside / "testim.ics")
    shutil.copy(corpus / "ics" / "testim.ics", inside / "testim.ics")
    assert engine.claim(str(ids), read_head(ids)) > 0


def test_micromanager_tiff_linked_from_outside_is_refused(corpus: Path, places: tuple[Path, Path]) -> None:
    inside, outside = places
    shutil.copy(corpus / MM / MM_TXT, inside / MM_TXT)
    shutil.copy(corpus / MM / MM_TIF, outside / MM_TIF)
    os.symlink(outside / MM_TIF, inside / MM_TIF)
    engine = MicromanagerEngine()
    txt = inside / MM_TXT
    assert engine.claim(str(txt), read_head(txt)) == 0
    with pytest.raises(ExtractionError, match="resolves outside the file's folder"):
        engine.extract(str(txt))
    os.unlink(inside / MM_TIF)
    shutil.copy(corpus / MM / MM_TIF, inside / MM_TIF)
    assert engine.claim(str(txt), read_head(txt)) > 0


def test_dicom_sibling_linked_from_outside_is_not_read(corpus: Path, places: tuple[Path, Path]) -> None:
    inside, outside = places
    shutil.copy(corpus / "dicom" / "sm_image.dcm", inside / "sm_image.dcm")
    shutil.copy(corpus / "dicom" / "boxes_1.dcm", outside / "other.dcm")
    os.symlink(outside / "other.dcm", inside / "other.dcm")
    engine = DicomEngine()
    me = inside / "sm_image.dcm"
    assert engine.claim(str(me), read_head(me)) == 0
    with pytest.raises(ExtractionError, match="links outside the folder"):
        engine.extract(str(me))
    os.unlink(inside / "other.dcm")
    shutil.copy(outside / "other.dcm", inside / "other.dcm")  # the same file, really beside it
    assert engine.claim(str(me), read_head(me)) > 0


@pytest.mark.parametrize("engine", ["bioformats", "auto"])
def test_bioformats_is_not_shown_a_link_out_of_the_folder(engine: str, corpus: Path,
                                                           places: tuple[Path, Path]) -> None:
    inside, outside = places
    shutil.copy(corpus / "ics" / "testim.ics", outside / "testim.ics")
    shutil.copy(corpus / "ics" / "testim.ids", inside / "testim.ids")
    os.symlink(outside / "testim.ics", inside / "testim.ics")
    ids = str(inside / "testim.ids")
    watch = OpenWatch(outside)
    try:
        r = extract_file(ids, engine, root=str(inside))
        assert watch.events() == b""  # nothing under the outside folder was opened or read
    finally:
        watch.close()
    assert r.status == "failed", r
    assert "ICS file not found" in (r.error or "") and "hidden from Bio-Formats: testim.ics" in (r.error or ""), r
    # the header really beside it (the folder changed): read; a link leading out again: hidden again
    os.unlink(inside / "testim.ics")
    shutil.copy(outside / "testim.ics", inside / "testim.ics")
    assert extract_file(ids, engine, root=str(inside)).status == "ok"
    os.unlink(inside / "testim.ics")
    os.symlink(outside / "testim.ics", inside / "testim.ics")
    assert extract_file(ids, engine, root=str(inside)).status == "failed"


def test_bioformats_reads_a_dicom_without_its_sibling_linked_from_outside(corpus: Path,
                                                                         places: tuple[Path, Path]) -> None:
    inside, outside = places
    shutil.copy(corpus / "dicom" / "sm_image.dcm", inside / "sm_image.dcm")
    shutil.copy(corpus / "dicom" / "sm_annotations.dcm", outside / "other.dcm")  # it would poison the group
    os.symlink(outside / "other.dcm", inside / "other.dcm")
    watch = OpenWatch(outside)
    try:
        r = extract_file(str(inside / "sm_image.dcm"), "bioformats", root=str(inside))
        assert watch.events() == b""
    finally:
        watch.close()
    assert r.status == "ok", r.error
