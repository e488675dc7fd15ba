"""The shared corpus as one experiment: exactly the files Bio-Formats reads end up ok, failures say why."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from metaextract.store import open_store
from metaextract.store.models import image_files, metadata_files

from ._corpus import reference_rows
from .conftest import cli, cli_json, new_experiment

# Registered as metadata files, never extracted. All fail in the reference except `_metadata.txt`: Bio-Formats
# reads a Micro-Manager `_metadata.txt` as the dataset it describes, but that is the same dataset as its
# `.ome.tif`, which is registered and extracted itself — so the sidecar is deliberately not an image file.
SIDECARS = {
    "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/"
    "HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0_metadata.txt",
    "micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff.index",
    "micromanager-ndtiff/ndtiff3.2_monochrome/display_settings.txt",
    "micromanager-ndtiff/ndtiffv2.0_test/Full resolution/NDTiff.index",
    "micromanager-ndtiff/ndtiffv2.0_test/display_settings.txt",
    "yokogawa-cv7000/MeasurementData_2x2_well.mlf",
    "yokogawa-cv7000/MeasurementData_SingleWell2Sites_MultiZ.mlf",
    "yokogawa-cv7000/MeasurementDetail.mrf",
    "yokogawa-cv7000/MeasurementDetail_2x2_well.mrf",
}
CORPUS_DOCS = {"MANIFEST.tsv", "README.md"}  # the corpus' own description, also registered as metadata


def test_corpus_experiment_matches_the_reference(db_url: str, corpus: Path, reference: Path) -> None:
    exits = {row["path"]: row["showinf_exit"] for row in reference_rows(reference)}
    reads = {p for p, code in exits.items() if code == "0"} - SIDECARS
    fails = {p for p, code in exits.items() if code != "0"} - SIDECARS

    exp_id = new_experiment(db_url, "corpus", corpus)
    # one batch of every image file, and one job for the document of each CellVoyager measurement the corpus
    # holds (its .mlf/.mrf pairs: a fileset of metadata only)
    assert "3 run jobs" in cli(db_url, "corpus", "init", "--batch-size", "200").stdout
    # Bio-Formats alone, as the reference was made (auto may let another engine read more files)
    cli(db_url, "corpus", "run", "--job", "1", "--workers", "2", "--engine", "bioformats", expect=1)

    st = cli_json(db_url, "corpus", "status", "--json")
    assert st["experiment"] == {"id": exp_id, "name": "corpus"}
    assert st["files"]["total"] == len(reads) + len(fails) == 105
    assert (st["files"]["ok"], st["files"]["failed"], st["files"]["pending"]) == (len(reads), len(fails), 0)
    assert st["files"]["metadata_files"] == len(SIDECARS | CORPUS_DOCS)
    assert [(j["id"], j["state"], j["files_ok"]) for j in st["jobs"]][0] == (1, "failed", len(reads))
    assert [(j["id"], j["files"]) for j in st["jobs"][1:]] == [(2, 0), (3, 0)]

    with open_store(db_url) as s, s.connect() as conn:
        images = conn.execute(select(image_files.c.name, image_files.c.status, image_files.c.error,
                                     image_files.c.omexml)).all()
        metas = set(conn.execute(select(metadata_files.c.name)).scalars())
    assert metas == SIDECARS | CORPUS_DOCS
    assert {r.name for r in images if r.status == "ok"} == reads
    for r in images:
        if r.status == "ok":
            assert r.omexml and r.error is None
        else:
            assert r.name in fails and r.error and r.name.rsplit("/", 1)[-1] in r.error, r.name
    log = cli(db_url, "corpus", "log", "--job", "1").stdout
    assert all(name in log for name in fails)
