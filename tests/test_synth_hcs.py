"""The plate builders the benchmarks use: real MetaXpress TIFFs linked under a generated ``.HTD``, and a
metadata-only CellVoyager measurement completed with the TIFFs its ``.mlf`` names."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import tifffile

from metaextract import filesets, synth

from .conftest import corpus_hcs_root


def test_link_htd_plate_links_one_real_tiff_per_well_site_and_wavelength(tmp_path: Path) -> None:
    hcs = corpus_hcs_root()
    master, files = synth.link_htd_plate(hcs, tmp_path / "p", wells=26, sites=3, waves=2, name="P")
    assert len(files) == len(set(files)) == 26 * 3 * 2
    names = {f.name for f in files}
    assert "P_A01_s1_w1.TIF" in names and "P_B02_s3_w2.TIF" in names and "P_B03_s1_w1.TIF" not in names
    source = hcs / synth.HTD_SOURCE
    for f in files:
        site, wave = re.fullmatch(r"P_[A-P]\d\d_s(\d)_w(\d)\.TIF", f.name).groups()  # type: ignore[union-attr]
        assert os.path.samefile(f, source / f"9987_B02_s{(int(site) - 1) % 2 + 1}_w{wave}.TIF")
    text = master.read_text()
    assert text.count("TRUE") - text.count('"Sites", TRUE') - text.count('"Waves", TRUE') - 3 == 26
    assert (master.parent / "TimePoint_1" / "P.HTD").read_text() == text


def test_link_htd_plate_is_one_imagexpress_fileset_with_its_htd_as_master(tmp_path: Path) -> None:
    master, files = synth.link_htd_plate(corpus_hcs_root(), tmp_path / "p", wells=3, sites=2, waves=3)
    listing = sorted(str(p) for p in (tmp_path / "p").rglob("*") if p.is_file())
    specs, rest = filesets.detect(listing)
    assert rest == [] and len(specs) == 1
    assert specs[0].master == str(master)
    assert sorted(specs[0].images) == sorted(str(f) for f in files)


def test_link_htd_plate_refuses_what_the_plate_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        synth.link_htd_plate(corpus_hcs_root(), tmp_path / "p", wells=1, waves=5)
    with pytest.raises(ValueError):
        synth.link_htd_plate(corpus_hcs_root(), tmp_path / "q", wells=385)


def test_complete_cellvoyager_writes_every_tiff_the_mlf_names(tmp_path: Path) -> None:
    source = corpus_hcs_root() / "yokogawa-cv7000" / "CV7000-example"
    files = synth.complete_cellvoyager(source, tmp_path / "cv")
    named = re.findall(r'bts:Type="IMG"[^>]*>([^<]+)<', (source / "MeasurementData.mlf").read_text())
    assert len(named) > 1000
    assert [f.name for f in files] == named
    assert tifffile.imread(files[0]).shape == (16, 16)
    vendor = {p.name for p in source.iterdir()}
    assert vendor <= {p.name for p in (tmp_path / "cv").iterdir()}
