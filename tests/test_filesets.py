"""The fileset registry: every kind detected over the real plate datasets, each path in at most one fileset."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaextract import filesets

from .conftest import corpus_hcs_root

#: dataset folder (under corpus-hcs) → the kinds its listing must give, each once
DATASETS = {
    "metaxpress-htd/faim-ipa_9987_Plate_3433": ["metaxpress-htd"],
    "metaxpress-htd/faim-ipa_9987_Plate_3435": ["metaxpress-htd"],
    "metaxpress-tiff/plateviewer_MD-MULTISITE-TIF": ["metaxpress-names"],
    "opera-phenix/pe2loaddata_Version1": ["harmony"],
    "scanr/plateviewer_SCANR-C2-S1-T1": ["scanr-names"],
    "yokogawa-cv7000/CV7000-example": ["cellvoyager"],
}


def _listing(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and p.name not in {"README.md"})


def _check_partition(paths: list[str], specs: list[filesets.FilesetSpec], rest: list[str]) -> None:
    members = [m for s in specs for m in s.members()]
    assert len(members) == len(set(members)), "a path in two filesets"
    assert set(members) | set(rest) == set(paths) and not set(members) & set(rest)
    for s in specs:
        assert set(s.images) <= set(paths), s.kind  # (a CellVoyager set here is its metadata only)


@pytest.mark.parametrize("folder", sorted(DATASETS))
def test_each_dataset_is_one_fileset_of_its_kind(folder: str) -> None:
    paths = _listing(corpus_hcs_root() / folder)
    specs, rest = filesets.detect(paths)
    assert sorted(s.kind for s in specs) == DATASETS[folder]
    _check_partition(paths, specs, rest)
    assert all(filesets.kind(s.kind).view in ("fileset", "own") for s in specs)


def test_datasets_listed_together_are_told_apart() -> None:
    paths = [p for folder in DATASETS for p in _listing(corpus_hcs_root() / folder)]
    specs, rest = filesets.detect(paths)
    assert sorted(s.kind for s in specs) == sorted(k for kinds in DATASETS.values() for k in kinds)
    _check_partition(paths, specs, rest)


def test_read_dispatches_to_the_kind() -> None:
    specs, _ = filesets.detect(_listing(corpus_hcs_root() / "opera-phenix/pe2loaddata_Version1"))
    read = filesets.read(specs[0])
    assert read.spec == specs[0] and "<Plate " in read.omexml
    assert set(read.places) == set(specs[0].images)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fileset kind"):
        filesets.kind("nope")
    assert [k.name for k in filesets.KINDS] == list(dict.fromkeys(k.name for k in filesets.KINDS))
