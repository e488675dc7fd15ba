"""The sidecar engine: acquisition files that hold no image get Bio-Formats' verdict without a JVM.

Each corpus file it claims is one Bio-Formats 7.3.1 answers with "Unknown file format" (the reference's
summary), and copies of them alone in a folder, checked here against live Bio-Formats, are unknown too.
Files of the same names but another structure are not claimed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from metaextract.engines.base import UnsupportedFormatError
from metaextract.engines.sidecar import CLAIM, SidecarEngine, kind_of
from metaextract.extraction.pipeline import extract_file, read_head

from ._corpus import corpus_files, reference_rows

CLAIMED = {
    "micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff.index": "ndtiff-index",
    "micromanager-ndtiff/ndtiffv2.0_test/Full resolution/NDTiff.index": "ndtiff-index",
    "micromanager-ndtiff/ndtiff3.2_monochrome/display_settings.txt": "display-settings",
    "micromanager-ndtiff/ndtiffv2.0_test/display_settings.txt": "display-settings",
    "yokogawa-cv7000/MeasurementData_2x2_well.mlf": "cv-measurement-data",
    "yokogawa-cv7000/MeasurementData_SingleWell2Sites_MultiZ.mlf": "cv-measurement-data",
    "yokogawa-cv7000/MeasurementDetail.mrf": "cv-measurement-detail",
    "yokogawa-cv7000/MeasurementDetail_2x2_well.mrf": "cv-measurement-detail",
}


def test_claims_exactly_the_corpus_files_bioformats_does_not_recognise(corpus: Path, reference: Path) -> None:
    engine = SidecarEngine()
    claimed = {rel: kind_of(str(corpus / rel), read_head(corpus / rel)) for rel in corpus_files(corpus)}
    assert {rel: kind for rel, kind in claimed.items() if kind} == CLAIMED
    rows = {row["path"]: row for row in reference_rows(reference)}
    for rel in CLAIMED:
        assert rows[rel]["showinf_exit"] == "1"
        assert "UnknownFormatException" in rows[rel]["stderr_head"]
        assert engine.claim(str(corpus / rel), read_head(corpus / rel)) == CLAIM


@pytest.mark.parametrize("rel", sorted(CLAIMED))
def test_auto_reports_unsupported_without_bioformats(rel: str, corpus: Path) -> None:
    result = extract_file(str(corpus / rel), "auto")
    assert result.status == "unsupported"
    assert result.engine == "sidecar"
    assert "not an image" in (result.error or "") and str(corpus / rel) in (result.error or "")


def test_copies_alone_are_unknown_to_live_bioformats_too(corpus: Path, tmp_path: Path) -> None:
    for i, rel in enumerate(("micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff.index",
                             "micromanager-ndtiff/ndtiffv2.0_test/display_settings.txt",
                             "yokogawa-cv7000/MeasurementDetail.mrf",
                             "yokogawa-cv7000/MeasurementData_SingleWell2Sites_MultiZ.mlf")):
        alone = tmp_path / str(i) / Path(rel).name
        alone.parent.mkdir()
        shutil.copy(corpus / rel, alone)
        live = extract_file(str(alone), "bioformats")
        assert live.status == "unsupported", (rel, live.error)
        assert "does not recognise" in (live.error or "")
        assert kind_of(str(alone), read_head(alone)) == CLAIMED[rel]


def test_same_names_with_other_content_are_not_claimed(corpus: Path, tmp_path: Path) -> None:
    tiff = corpus / "tiff" / "psf.tif"
    for name in ("NDTiff.index", "display_settings.txt", "a.mlf", "b.mrf"):
        fake = tmp_path / name
        shutil.copy(tiff, fake)
        assert kind_of(str(fake), read_head(fake)) is None
    (tmp_path / "display_settings.txt").write_text("1 2 3\n4 5 6\n")  # numbers: a text image's business
    (tmp_path / "c.mlf").write_text('<?xml version="1.0"?><MeasurementData xmlns="urn:other"/>')
    (tmp_path / "d.mrf").write_text('<?xml version="1.0"?><bts:MeasurementData xmlns:bts='
                                    '"http://www.yokogawa.co.jp/BTS/BTSSchema/1.0"/>')  # a record list named .mrf
    broken = (corpus / "micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff.index").read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "NDTiff.index").write_bytes(b"\xff\xff\xff\x7f" + broken[4:])
    for path in (tmp_path / "display_settings.txt", tmp_path / "c.mlf", tmp_path / "d.mrf",
                 tmp_path / "sub" / "NDTiff.index"):
        assert kind_of(str(path), read_head(path)) is None, path
    (tmp_path / "e.mlf").write_text('<?xml version="1.0" encoding="utf-8"?>\n<!-- x -->\n<MeasurementData '
                                    'xmlns="http://www.yokogawa.co.jp/BTS/BTSSchema/1.0" Version="1.0"/>')
    assert kind_of(str(tmp_path / "e.mlf"), read_head(tmp_path / "e.mlf")) == "cv-measurement-data"


def test_deeply_nested_json_is_not_claimed_and_does_not_raise(tmp_path: Path) -> None:
    deep = "{" + '"a":[' * 50_000 + "]" * 50_000 + "}"
    settings = tmp_path / "display_settings.txt"
    settings.write_text(deep)
    assert kind_of(str(settings), read_head(settings)) is None
    axes = ('{"a":' + "[" * 2000 + "]" * 2000 + "}").encode()
    index = tmp_path / "sub" / "NDTiff.index"
    index.parent.mkdir()
    index.write_bytes(len(axes).to_bytes(4, "little") + axes + (9).to_bytes(4, "little") + b"stack.tif")
    assert kind_of(str(index), index.read_bytes()[:8192]) is None


def test_extract_on_an_unknown_file_says_what_it_answers_for(corpus: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="answers only for"):
        SidecarEngine().extract(str(corpus / "tiff" / "psf.tif"))
