"""Experiments and registration: create/list/show/delete, folders, sidecars, symlinks, re-adding."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from metaextract.experiment import NotFoundError, add_folder, classify, create_experiment, walk
from metaextract.store import Store
from metaextract.store.models import image_files, metadata_files

from .conftest import cli, cli_json, small_plate


def test_create_prints_the_id_last_and_names_are_unique(db_url: str) -> None:
    out = cli(db_url, "experiment", "create", "exp1", "--description", "first").stdout
    assert out.strip().splitlines()[-1] == "1"
    out = cli(db_url, "experiment", "create", "exp2").stdout
    assert out.strip().splitlines()[-1] == "2"
    res = cli(db_url, "experiment", "create", "exp1", expect=2)
    assert "exists already" in res.output
    rows = cli_json(db_url, "experiment", "list", "--json")
    assert [(r["id"], r["name"], r["description"]) for r in rows] == [(1, "exp1", "first"), (2, "exp2", None)]


def test_add_registers_images_and_metadata_and_readding_adds_only_new_files(db_url: str,
                                                                             tmp_path: Path) -> None:
    data = small_plate(tmp_path / "plate1", wells=2, channels=2, bad=1)
    cli(db_url, "experiment", "create", "e")
    out = cli(db_url, "experiment", "add", "e", str(data)).stdout
    assert "5 image files and 2 metadata files added" in out
    out = cli(db_url, "experiment", "add", "#1", str(data)).stdout  # EXP as an id: #N
    assert "0 image files and 0 metadata files added, 7 already registered" in out
    (data / "well00" / "late.tif").write_bytes((data / "well00" / "w00_c0.tif").read_bytes())
    out = cli(db_url, "experiment", "add", "e", str(data)).stdout
    assert "1 image files and 0 metadata files added" in out
    shown = cli_json(db_url, "experiment", "show", "e", "--json")
    assert shown["image_files"] == 6 and shown["metadata_files"] == 2
    (plate,) = shown["plates"]
    assert plate["name"] == "plate1" and plate["acquisitions"][0]["name"] == "default"
    assert "plate 'plate1'" in cli(db_url, "experiment", "show", "e").stdout


def test_add_create_makes_a_new_plate_one_command_and_never_creates_an_id_or_a_refused_name(
        db_url: str, tmp_path: Path) -> None:
    data = small_plate(tmp_path / "plate1", wells=2, channels=2, bad=1)
    res = cli(db_url, "experiment", "add", "new", str(data), expect=1)  # without --create: still an error
    assert "new" in res.output
    out = cli(db_url, "experiment", "add", "--create", "new", str(data)).stdout
    assert out.splitlines()[0] == "created experiment 'new' (1)"
    assert "5 image files and 2 metadata files added" in out
    out = cli(db_url, "experiment", "add", "--create", "new", str(data)).stdout  # there now: used as it is
    assert "created" not in out and "7 already registered" in out
    assert "no experiment" in cli(db_url, "experiment", "add", "--create", "#9", str(data), expect=1).output
    assert "command word" in cli(db_url, "experiment", "add", "--create", "init", str(data), expect=2).output
    rows = cli_json(db_url, "experiment", "list", "--json")
    assert [(r["id"], r["name"], r["image_files"]) for r in rows] == [(1, "new", 5)]


def test_files_are_stored_relative_and_absolute_with_size_and_mtime(store: Store, tmp_path: Path) -> None:
    data = small_plate(tmp_path / "p", wells=1, channels=1)
    exp = create_experiment(store, "e")
    reg = add_folder(store, exp, data, plate="P1", acquisition="A1")
    assert (reg.image_files, reg.metadata_files) == (1, 2)
    with store.connect() as conn:
        img = conn.execute(select(image_files)).one()
        metas = conn.execute(select(metadata_files).order_by(metadata_files.c.name)).all()
    f = data / "well00" / "w00_c0.tif"
    assert (img.name, img.location, img.size, img.status) == ("well00/w00_c0.tif", str(f), f.stat().st_size,
                                                              "pending")
    assert img.mtime == pytest.approx(f.stat().st_mtime)
    assert [(m.name, m.kind) for m in metas] == [("plate.nd", "metamorph-nd"), ("run_metadata.txt", "micromanager")]


def test_include_exclude_and_plate_acquisition_names(db_url: str, tmp_path: Path) -> None:
    data = small_plate(tmp_path / "p", wells=3, channels=2)
    cli(db_url, "experiment", "create", "e")
    out = cli(db_url, "experiment", "add", "e", str(data), "--plate", "P", "--acquisition", "a1",
              "--include", "*_c0.tif", "--exclude", "well02").stdout
    assert "2 image files and 0 metadata files added" in out
    out = cli(db_url, "experiment", "add", "e", str(data), "--plate", "P", "--acquisition", "a1",
              "--exclude", "*.nd", "--exclude", "*.txt").stdout
    assert "4 image files and 0 metadata files added, 2 already registered" in out


def test_an_acquisition_keeps_its_folder(store: Store, tmp_path: Path) -> None:
    exp = create_experiment(store, "e")
    add_folder(store, exp, small_plate(tmp_path / "a", 1, 1), plate="P")
    with pytest.raises(ValueError, match="another acquisition"):
        add_folder(store, exp, small_plate(tmp_path / "b", 1, 1), plate="P")
    assert add_folder(store, exp, tmp_path / "b", plate="P", acquisition="second").image_files == 1


def test_symlinks_leaving_the_folder_are_not_followed(store: Store, tmp_path: Path) -> None:
    outside = small_plate(tmp_path / "outside", 1, 1)
    data = small_plate(tmp_path / "data", 1, 1)
    (data / "out_file.tif").symlink_to(outside / "well00" / "w00_c0.tif")
    (data / "out_dir").symlink_to(outside)
    (data / "in_file.tif").symlink_to(data / "well00" / "w00_c0.tif")
    (data / "loop").symlink_to(data)
    names = [rel for rel, *_ in walk(data)]
    assert "out_file.tif" not in names and not any(n.startswith("out_dir") for n in names)
    assert "in_file.tif" in names and not any(n.startswith("loop/") for n in names)
    reg = add_folder(store, create_experiment(store, "e"), data)
    assert reg.symlinks_skipped == 2
    assert reg.image_files == 2


def test_classify_trusts_bytes_where_the_name_lies(tmp_path: Path) -> None:
    ome = '<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"></OME>'
    cases = {
        "looks_like_text.txt": (ome.encode(), "image"),
        "really_text.tif": (b"just some notes\n", "metadata"),
        "NDTiff.index": (b"\x01\x02\x00\x00binary", "metadata"),
        "Pos0_metadata.txt": (b'{"Summary": {}}', "metadata"),
        "MeasurementData.mlf": (b'<?xml version="1.0"?><bts:MeasurementData/>', "metadata"),
        "image.dat": (b"II*\x00\x08\x00\x00\x00", "image"),
        "sidecar.htd": (b"II*\x00\x08\x00\x00\x00", "image"),  # a TIFF whatever the name
        "raw.ids": (b"\x00\x01\x02\x03" * 10, "image"),
        "dataset.ics": (b"\t\nics_version\t2.0\n", "image"),
        "notes.xml": (b"<notes>hello</notes>", "metadata"),
    }
    for name, (data, expected) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        assert classify(p)[0] == expected, name


def test_list_show_delete(db_url: str, tmp_path: Path) -> None:
    cli(db_url, "experiment", "create", "gone")
    cli(db_url, "experiment", "add", "gone", str(small_plate(tmp_path / "p", 1, 1)))
    assert "gone" in cli(db_url, "experiment", "list").stdout
    assert "--yes" in cli(db_url, "experiment", "delete", "gone", expect=1).output  # no terminal to ask on
    cli(db_url, "experiment", "delete", "gone", "--yes")
    assert cli_json(db_url, "experiment", "list", "--json") == []
    res = cli(db_url, "experiment", "show", "gone", expect=1)
    assert "no experiment named 'gone'" in res.output
    assert "Traceback" not in res.output


def test_unknown_experiment_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no experiment"):
        add_folder(store, "nope", tmp_path)

