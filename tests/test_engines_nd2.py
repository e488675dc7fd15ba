"""ND2 through ``nd2``: why it does not claim ``.nd2`` files, and the rescue it gives when Bio-Formats fails.

Evidence (``nd2/cluster.nd2`` against the Bio-Formats 7.3.1 reference): sizes, dimension order, pixel
type, significant bits, physical sizes, channel names and emission wavelengths agree. These key fields
differ, so the engine claims nothing:

- ``name``: Bio-Formats says "cluster.nd2 (series 1)", nd2 the file's stem "cluster";
- ``acquisition_date``: nd2 reads the acquisition time (2014-06-18), Bio-Formats writes none;
- ``objectives[].nominal_magnification``: nd2 gives 60, Bio-Formats none (it keeps the NA, 0.95);
- ``channels[].excitation_wavelength``: nd2 gives the lasers (488, 561 nm), Bio-Formats none;
- ``planes[].delta_t``: nd2 writes ms, Bio-Formats s; beyond the unit, Bio-Formats gives plane (Z=1, T=0)
  2.474 s, the time of the third frame (nd2: frame 1 at 1.459 s, frame 2 at 2.474 s) and repeats values
  (T=1, Z=0 gets the time of T=0, Z=5): it indexes the 30 frame times by the 60 plane indices;
- ``planes[].exposure_time``: the same 0.997 s, in ms against s;
- ``planes[].position_x/y``: the same stage position, rounded to 6 decimals by nd2's OME writer;
- ``planes[].position_z``: nd2 3912.3375 µm (the frame's stage Z), Bio-Formats 3916.725 µm (cause not
  established).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metaextract._extract import extract_file, read_head
from metaextract.cli.compare import differences
from metaextract.engines.base import ExtractionError
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.nd2 import Nd2Engine
from metaextract.ome import key_fields, validate

from ._corpus import corpus_files

REL = "nd2/cluster.nd2"
DIFFERING = {
    "images[].name", "images[].acquisition_date", "objectives[].nominal_magnification",
    "images[].channels[].excitation_wavelength", "images[].planes[].delta_t", "images[].planes[].exposure_time",
    "images[].planes[].position_x", "images[].planes[].position_y", "images[].planes[].position_z",
}


@pytest.fixture(scope="module")
def both(corpus: Path, reference: Path) -> tuple[str, str]:
    return Nd2Engine().extract(str(corpus / REL)), (reference / f"{REL}.xml").read_text("utf-8")


def test_which_key_fields_differ_from_the_reference(both: tuple[str, str]) -> None:
    mine, ref = both
    fields = {re.sub(r"\[\d+\]", "[]", path) for path, _, _ in differences(mine, ref)}
    assert fields == DIFFERING
    assert validate(mine) == (True, None)
    a, b = key_fields(mine)["images"][0], key_fields(ref)["images"][0]
    assert a["pixels"] == b["pixels"]  # sizes, order, type, bits, physical sizes all agree
    assert [(c["name"], c["emission_wavelength"]) for c in a["channels"]] == [
        (c["name"], c["emission_wavelength"]) for c in b["channels"]]


def test_plane_times_differ_beyond_the_unit(both: tuple[str, str]) -> None:
    mine, ref = both
    ours = {(p["the_z"], p["the_t"]): p["delta_t"] for p in key_fields(mine)["images"][0]["planes"]}
    theirs = {(p["the_z"], p["the_t"]): p["delta_t"] for p in key_fields(ref)["images"][0]["planes"]}
    assert ours[(0, 0)][1] == "ms" and theirs[(0, 0)][1] == "s"
    assert ours[(0, 0)][0] / 1000 == pytest.approx(theirs[(0, 0)][0])  # the first frame agrees
    assert ours[(1, 0)][0] / 1000 == pytest.approx(1.459, abs=1e-3)
    assert theirs[(1, 0)][0] == pytest.approx(ours[(2, 0)][0] / 1000)  # Bio-Formats: another frame's time
    assert theirs[(0, 1)] == theirs[(5, 0)]


def test_claims_nothing_and_rescues_only_after_bioformats_failed(
        corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Nd2Engine()
    assert all(engine.claim(str(corpus / rel), read_head(str(corpus / rel))) == 0 for rel in corpus_files(corpus))
    path = str(corpus / REL)
    assert engine.rescues(path, read_head(path)) > 0
    assert extract_file(path, "auto").engine.startswith("bioformats ")

    def fail(self: BioFormatsEngine, path: str) -> str:
        raise ExtractionError("Bio-Formats failed: simulated")

    monkeypatch.setattr(BioFormatsEngine, "extract", fail)
    monkeypatch.setattr(BioFormatsEngine, "extract_alone", fail)
    result = extract_file(path, "auto")
    assert result.status == "ok" and result.valid, result.error
    assert result.engine.startswith("nd2 ") and result.notes[0].startswith("read by nd2 ")
