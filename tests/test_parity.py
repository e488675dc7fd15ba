"""Whole-document parity in ``auto`` (issue 20): a key-fields-only answer is never the default, but stays
available by name; ``compare`` and :func:`metaextract.ome.diff.first_difference` name the first differing
element. The routes of every corpus file are pinned in tests/test_conformance.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from metaextract import engines
from metaextract.cli import main
from metaextract.engines.base import KeyFieldsOnly
from metaextract.engines.nd2 import Nd2Engine
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise
from metaextract.ome.diff import first_difference

from .test_czi_whole import edited_czi

#: an MMStack file whose instrument IDs the schema refuses: Bio-Formats prints them as they are, and so does the
#: micromanager engine, which answers it whole in auto (tests/test_conformance.py)
MMSTACK = "micromanager-mmstack/Cos7_A647_WF1/Cos7_A647_WF1_MMStack_Pos0.ome.tif"


class _KeyFieldsNd2(Nd2Engine):
    """The nd2 engine as it was before its documents were completed: marked key-fields-only."""

    whole_document_in_auto = False


@pytest.fixture
def partial_czi(corpus: Path, tmp_path: Path) -> Path:
    """A CZI the czi engine claims key-fields-only: ``DAPI_GFP.czi`` with an ROI layer, which Bio-Formats
    writes and the engine does not reproduce (every corpus CZI it now answers whole in auto)."""
    return edited_czi(corpus, tmp_path, "roi")


def test_a_key_fields_only_engine_declines_in_auto_but_answers_by_name(corpus: Path, reference: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # every built-in engine now answers whole in auto; the rule is checked on the nd2 engine marked otherwise
    rel, name = "nd2/cluster.nd2", "nd2"
    path = str(corpus / rel)
    assert engines.whole_document_in_auto(engines.get(name))
    assert engines.choose(path, read_head(path), "auto").name == name
    monkeypatch.setitem(engines._instances, name, _KeyFieldsNd2())
    eng = engines.get(name)
    assert not engines.whole_document_in_auto(eng)
    assert eng.claim(path, read_head(path)) > 0  # it reads the file ...
    assert engines.choose(path, read_head(path), "auto").name == "bioformats"  # ... but auto does not ask it
    assert engines.choose(path, read_head(path), name).name == name
    expected = (reference / f"{rel}.xml").read_text("utf-8")
    named = extract_file(path, name)
    assert named.status == "ok" and named.engine == name
    assert normalise(named.omexml or "") == normalise(expected)
    auto = extract_file(path, "auto")
    assert auto.status == "ok" and auto.engine == "bioformats"
    assert normalise(auto.omexml or "") == normalise(expected)  # the default gives Bio-Formats' whole


def test_the_cli_default_gives_bioformats_whole_and_engine_czi_the_key_fields(partial_czi: Path) -> None:
    path = str(partial_czi)
    theirs = extract_file(path, "bioformats")
    assert theirs.status == "ok" and theirs.omexml is not None
    default = CliRunner().invoke(main, ["show", path])
    named = CliRunner().invoke(main, ["show", "--engine", "czi", path])
    assert default.exit_code == 0 and named.exit_code == 0
    assert normalise(default.stdout) == normalise(theirs.omexml)
    assert "<Experimenter" in default.stdout and "<Experimenter" not in named.stdout
    assert key_fields(named.stdout) == key_fields(theirs.omexml)


def test_a_czi_whose_document_is_not_reproduced_whole_gets_a_key_fields_only_claim(
        partial_czi: Path, corpus: Path, reference: Path) -> None:
    path = str(partial_czi)
    czi = engines.get("czi")
    assert engines.whole_document_in_auto(czi)
    assert isinstance(czi.claim(path, read_head(path)), KeyFieldsOnly)
    assert engines.choose(path, read_head(path), "auto").name == "bioformats"
    whole = str(corpus / "czi/DAPI_GFP.czi")
    score = czi.claim(whole, read_head(whole))
    assert score > 0 and not isinstance(score, KeyFieldsOnly)
    assert engines.choose(whole, read_head(whole), "auto").name == "czi"
    auto = extract_file(whole, "auto")
    assert auto.engine == "czi" and normalise(auto.omexml or "") == normalise(
        (reference / "czi/DAPI_GFP.czi.xml").read_text("utf-8"))


def test_ids_the_schema_refuses_are_printed_as_bioformats_prints_them_and_claimed_whole(
        corpus: Path, reference: Path) -> None:
    # the MMStack file names its Instrument ``Microscope``: Bio-Formats prints it as it is (its document is
    # not valid OME), so does the micromanager engine, and auto takes its claim, which is whole
    path = str(corpus / MMSTACK)
    mm = engines.get("micromanager")
    assert engines.whole_document_in_auto(mm)
    score = mm.claim(path, read_head(path))
    assert score > 0 and not isinstance(score, KeyFieldsOnly)
    assert engines.choose(path, read_head(path), "auto").name == "micromanager"
    auto = extract_file(path, "auto")
    expected = (reference / f"{MMSTACK}.xml").read_text("utf-8")
    assert auto.engine == "micromanager" and first_difference(auto.omexml or "", expected) is None
    assert 'ID="Microscope"' in (auto.omexml or "") and not auto.valid


def test_compare_prints_the_first_differing_element_of_a_czi(partial_czi: Path) -> None:
    path = str(partial_czi)
    res = CliRunner().invoke(main, ["compare", "--engine", "czi", path])
    assert res.exit_code == 1
    lines = res.stdout.strip().splitlines()
    # the czi engine agrees on every key field, so the whole-document line is the only one
    assert lines == [f"{path}\tfirst difference (czi != bioformats)\t/OME/Experimenter[0]: None != '<Experimenter>'"]
    # in auto the file goes to Bio-Formats: nothing native to compare
    res = CliRunner().invoke(main, ["compare", path])
    assert res.exit_code == 0 and "no native engine claims this file" in res.stderr


# -- first_difference ---------------------------------------------------------------------------------
def _doc(instrument: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
            f'UUID="urn:uuid:1"><Instrument ID="Instrument:0">{instrument}</Instrument></OME>')


def test_documents_equal_after_normalising_have_no_difference() -> None:
    a = _doc('<Detector ID="Detector:0:0" Model="x"/>')
    b = a.replace('UUID="urn:uuid:1"', 'UUID="urn:uuid:2"').replace("><", ">\n   <")
    assert first_difference(a, b) is None


@pytest.mark.parametrize(("ours", "theirs", "said"), [
    ('<Detector ID="D:0"/><Detector ID="D:1" Model="x"/>', '<Detector ID="D:0"/><Detector ID="D:1" Model="y"/>',
     "/OME/Instrument[0]/Detector[1]@Model: 'x' != 'y'"),
    ('<Detector ID="D:0"/>', '<Detector ID="D:0"/><Detector ID="D:1"/>',
     "/OME/Instrument[0]/Detector[1]: None != '<Detector>'"),
    ('<Objective ID="O:0"/>', '<Detector ID="D:0"/><Objective ID="O:0"/>',
     "/OME/Instrument[0]/Detector[0]: None != '<Detector>'"),
    ('<Detector ID="D:0" Type="CCD"/>', '<Detector ID="D:0"/>',
     "/OME/Instrument[0]/Detector[0]@Type: 'CCD' != None"),
])
def test_the_first_difference_is_named_by_its_path(ours: str, theirs: str, said: str) -> None:
    assert str(first_difference(_doc(ours), _doc(theirs))) == said


def test_text_that_differs_only_in_white_space_inside_is_still_a_difference() -> None:
    # normalise collapses runs of white space but keeps "a <b>" apart from "a<b>" (Bio-Formats' trim)
    ours, theirs = _doc("a <b/>"), _doc("a<b/>")
    assert normalise(ours) != normalise(theirs)
    assert first_difference(ours, theirs) is not None
