"""The class-data sharing archive: built on this machine, mapped by later JVM starts, and harmless when it
is damaged, missing or turned off. Each JVM here starts in its own process (one JVM per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metaextract.engines.bioformats import cds as _cds

PROBE = """
import json, sys
from metaextract.engines.bioformats import jvm as _java
from metaextract.engines.bioformats import BioFormatsEngine
_java.start_jvm()
import jpype
xml = BioFormatsEngine().extract(sys.argv[1])
print("PROBE=" + json.dumps({"info": str(jpype.java.lang.System.getProperty("java.vm.info")), "xml": xml}))
"""


def _probe(cache: Path, tiff: Path, **env: str) -> tuple[dict[str, str], str]:
    """Start a JVM the way the engine does and read ``tiff``: (what it reported, everything else it printed)."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(tiff)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "METAEXTRACT_CACHE": str(cache), "METAEXTRACT_CDS_BUILDING": "1",
                              **env}, check=True)
    lines = out.stdout.splitlines()
    found = [json.loads(line.removeprefix("PROBE=")) for line in lines if line.startswith("PROBE=")]
    rest = "\n".join(line for line in lines if not line.startswith("PROBE="))
    return found[0], rest


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding an archive built by the background builder's own entry point."""
    cache = tmp_path_factory.mktemp("cds-cache")
    env = {**os.environ, "METAEXTRACT_CACHE": str(cache)}
    subprocess.run([sys.executable, "-m", "metaextract.engines.bioformats.cds"], env=env, timeout=600, check=True)
    return cache


@pytest.fixture(scope="module")
def tiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from metaextract import synth

    return synth.write_metaxpress_plate(tmp_path_factory.mktemp("cds-tiff"), wells=1, sites=1, channels=1)[0]


def test_the_builder_writes_the_archive_under_its_key(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archives = list((built / "cds").glob("*.jsa"))
    assert len(archives) == 1 and archives[0].stat().st_size > 1_000_000
    assert not list((built / "cds").glob("*.building")) and not list((built / "cds").glob("*.tmp"))
    monkeypatch.setenv("METAEXTRACT_CACHE", str(built))
    assert _cds.archive_path() == archives[0]
    assert _cds.jvm_options()[0] == f"-XX:SharedArchiveFile={archives[0]}"
    monkeypatch.setenv("METAEXTRACT_JAVA_CDS", "0")
    assert _cds.jvm_options() == []


def test_a_jvm_maps_the_archive_and_reads_the_same(built: Path, tiff: Path) -> None:
    shared, rest = _probe(built, tiff)
    assert "sharing" in shared["info"], shared["info"]
    plain, _ = _probe(built, tiff, METAEXTRACT_JAVA_CDS="0")
    assert "sharing" not in plain["info"]
    assert shared["xml"] == plain["xml"] and "<Pixels" in shared["xml"]
    assert rest == ""


def test_a_damaged_archive_is_ignored_silently(built: Path, tiff: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "cds").mkdir(parents=True)
    good = next((built / "cds").glob("*.jsa"))
    damaged = cache / "cds" / good.name
    damaged.write_bytes(good.read_bytes()[:1_000_000])  # cut short
    report, rest = _probe(cache, tiff)
    assert "sharing" not in report["info"] and "<Pixels" in report["xml"]
    assert rest == ""


def test_one_builder_at_a_time(tmp_path: Path) -> None:
    env = {**os.environ, "METAEXTRACT_CACHE": str(tmp_path)}
    probe = "from metaextract.engines.bioformats import cds; print(cds.archive_path())"
    archive = Path(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                                  check=True).stdout.strip())
    archive.parent.mkdir(parents=True)
    archive.with_suffix(".building").write_text("12345")  # another builder holds the lock
    subprocess.run([sys.executable, "-m", "metaextract.engines.bioformats.cds"], env=env, timeout=60, check=True)
    assert not archive.exists()
    assert archive.with_suffix(".building").read_text() == "12345"


def test_a_failed_build_is_not_retried_at_every_jvm_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAEXTRACT_CACHE", str(tmp_path))
    monkeypatch.setattr(_cds, "_spawned", False)
    spawned: list[Path] = []
    monkeypatch.setattr(_cds, "_spawn_build", spawned.append)
    archive = _cds.archive_path()
    assert _cds.jvm_options() == [] and spawned == [archive]  # no archive yet: a build starts
    archive.with_suffix(".failed").write_text("CalledProcessError: ...")
    assert _cds.jvm_options() == [] and spawned == [archive]  # failed just now: not again
    old = time.time() - _cds.RETRY_SECONDS - 60
    os.utime(archive.with_suffix(".failed"), (old, old))
    assert _cds.jvm_options() == [] and spawned == [archive, archive]  # a day later: once more


def test_a_cache_that_cannot_be_written_spawns_no_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("METAEXTRACT_CACHE", str(blocker / "cache"))
    spawned: list[Path] = []
    monkeypatch.setattr(_cds, "_spawn_build", spawned.append)
    assert _cds.jvm_options() == [] and spawned == []
