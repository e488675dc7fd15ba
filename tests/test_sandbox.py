"""Extraction processes that know their registered folders read nothing outside them, whoever asks.

A plug-in engine (registered for these tests only through the ``metaextract.engines`` entry-point group
on a ``PYTHONPATH`` directory) behaves as a hostile or careless reader would: it opens whatever path the
file names and puts what it read into the OME-XML. In a process restricted to its folders (Landlock,
:mod:`metaextract.extraction.sandbox`) the kernel refuses that read; a process that was not told its folders (the
control) reads it, which shows the test would see a leak.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from metaextract import extract_many
from metaextract.extraction import sandbox as _sandbox
from metaextract.store import open_store
from metaextract.store.models import image_files

from ._engines import install_plugin_engine
from .test_hostile import OpenWatch
from .test_submit import cli, make_experiment

SECRET = "canary-7f3a9c"

_ENGINE = '''
"""A metaextract engine for tests: a ``.leak`` file names another file, whose text it reports."""
import os


class LeakEngine:
    name = "leak"

    def version(self):
        return "1"

    def claim(self, path, head):
        return 1_000_000 if path.endswith(".leak") else 0

    def extract(self, path):
        with open(path, "rb") as fh:
            target = fh.read()[1:].decode()  # after a NUL byte, so registration takes the file for an image
        with open(target, encoding="utf-8") as fh:  # outside the registered folder
            text = fh.read().strip()
        return ('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
                f'<Image ID="Image:0" Name="{text}"><Pixels DimensionOrder="XYCZT" ID="Pixels:0" SizeC="1" '
                'SizeT="1" SizeX="1" SizeY="1" SizeZ="1" Type="uint8"><MetadataOnly/></Pixels></Image></OME>')


def factory():
    return LeakEngine()
'''


@pytest.fixture
def leak_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return install_plugin_engine(tmp_path / "site", "leak", _ENGINE, monkeypatch)


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    """A registered folder with a ``.leak`` file naming a canary in a folder beside it."""
    inside, outside = tmp_path / "plate", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (outside / "canary.txt").write_text(SECRET)
    (inside / "a.leak").write_bytes(b"\x00" + str(outside / "canary.txt").encode())
    return inside, outside


def test_landlock_is_here() -> None:
    """The machines this project runs on have Landlock; without it the tests below would prove nothing."""
    import ctypes

    abi = ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1)
    assert abi >= 1, "this kernel has no Landlock: extraction processes cannot be kept to their folders"


def test_a_process_told_its_folders_cannot_read_beside_them(leak_engine: Path, places: tuple[Path, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    inside, outside = places
    watch = OpenWatch(outside)
    try:
        [kept] = extract_many([(str(inside / "a.leak"), str(inside))], workers=1, roots=[str(inside)])
        assert watch.events() == b""  # the kernel refused the open: nothing outside was opened
    finally:
        watch.close()
    assert kept.status == "failed", kept
    assert "Permission denied" in (kept.error or "") and SECRET not in (kept.omexml or ""), kept
    # by default a process is kept to its files' own folders: the same refusal
    [default] = extract_many([str(inside / "a.leak")], workers=1)
    assert default.status == "failed" and SECRET not in (default.omexml or ""), default
    # the control: with the sandbox off the process reads the canary, so the checks above could fail
    monkeypatch.setenv(_sandbox.ENV, "0")
    [free] = extract_many([(str(inside / "a.leak"), str(inside))], workers=1)
    assert free.status == "ok" and SECRET in (free.omexml or ""), free


def test_submit_and_run_keep_their_processes_to_the_experiment_folders(
        leak_engine: Path, places: tuple[Path, Path], tmp_path: Path) -> None:
    inside, outside = places
    url = f"sqlite:///{tmp_path / 'm.db'}"
    name = make_experiment(url, inside, 3, batch=2)  # 3 TIFFs and the .leak file: 2 jobs
    watch = OpenWatch(outside)
    codes = []
    try:
        for args in (["submit", "--interval", "5"], ["resubmit", "--all", "--interval", "5"],
                     ["run", "--job", "1"], ["run", "--job", "2"]):
            out = cli(url, name, *args)
            codes.append(out.returncode)
            assert "Traceback" not in out.stderr, out.stderr
            store = open_store(url)
            with store.connect() as conn:
                rows = {Path(r.location).name: r for r in conn.execute(
                    select(image_files.c.location, image_files.c.status, image_files.c.error,
                           image_files.c.omexml))}
            store.engine.dispose()
            assert {n: r.status for n, r in rows.items()} == {
                "a.leak": "failed", "f00000.tif": "ok", "f00001.tif": "ok", "f00002.tif": "ok"}, args
            assert "Permission denied" in rows["a.leak"].error, rows["a.leak"].error
            assert all(SECRET not in (r.omexml or "") + (r.error or "") for r in rows.values())
        assert watch.events() == b""
    finally:
        watch.close()
    # the .leak file fails and the TIFFs are read: submit and resubmit exit 1, and so does the run of its job
    assert codes[:2] == [1, 1] and sorted(codes[2:]) == [0, 1], codes


def test_what_a_process_needs_itself_stays_readable() -> None:
    needed = _sandbox.needed()
    for path in ("/usr", "/proc", "/dev/urandom", "/etc/ld.so.cache"):
        assert path in needed
    assert "/etc" not in needed and "/dev" not in needed and "/dev/shm" not in needed
    from metaextract.engines.bioformats import jvm

    assert str(jvm.java_home()) in needed and str(jvm.bioformats_jar().parent) in needed
    assert "" not in needed and "/tmp" not in needed and os.path.expanduser("~") not in needed
