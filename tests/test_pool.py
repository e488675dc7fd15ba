"""Worker processes for real: timeouts, killed workers, JVM errors; the other files go on."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

import metaextract
from metaextract.extraction.pool import ExtractionPool

from ._files import big_omexml, tiny_tiff


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "big": big_omexml(tmp_path / "big.ome.xml"),
        "a": tiny_tiff(tmp_path / "a.tif"),
        "b": tiny_tiff(tmp_path / "b.tif"),
        "c": tiny_tiff(tmp_path / "c.tif"),
    }


def _by_name(results: list[metaextract.Result]) -> dict[str, metaextract.Result]:
    return {Path(r.path).name: r for r in results}


def test_extract_many_reads_good_files(files: dict[str, Path]) -> None:
    results = _by_name(list(metaextract.extract_many([files["a"], files["b"], files["c"]], workers=2)))
    assert {r.status for r in results.values()} == {"ok"}
    assert all(r.rss_mb and r.rss_mb > 50 for r in results.values())
    assert "SizeX=\"4\"" in results["a.tif"].omexml


def test_timeout_kills_and_replaces_the_worker(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAEXTRACT_JAVA_HEAP_MB", "3000")  # parsing then runs far longer than the timeout
    paths = [files["a"], files["big"], files["b"], files["c"]]
    with ExtractionPool(1, timeout=3.0) as pool:
        results = _by_name(list(pool.map(paths)))
        assert pool.stats.replaced_workers == 1
        assert pool.stats.started_workers == 2
    assert results["big.ome.xml"].status == "timeout"
    assert "no result after 3 s" in (results["big.ome.xml"].error or "")
    assert "big.ome.xml" in (results["big.ome.xml"].error or "")
    assert [results[n].status for n in ("a.tif", "b.tif", "c.tif")] == ["ok", "ok", "ok"]


def test_timeout_blames_the_file_being_read_not_the_first_unanswered(files: dict[str, Path], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Results come back in batches, so when the slow file starts, results of the fast files before it may
    not have been sent yet: the shared marker, not the queue, says which file the process is on."""
    monkeypatch.setenv("METAEXTRACT_JAVA_HEAP_MB", "3000")
    tiny = [tiny_tiff(tmp_path / f"t{i:02d}.tif") for i in range(60)]
    paths = [*tiny[:50], files["big"], *tiny[50:]]
    with ExtractionPool(1, timeout=3.0) as pool:
        results = list(pool.map(paths))
        assert pool.stats.replaced_workers == 1
    assert sorted(Path(r.path).name for r in results) == sorted(p.name for p in paths)  # each exactly once
    by_name = _by_name(results)
    assert by_name["big.ome.xml"].status == "timeout"
    assert {by_name[p.name].status for p in tiny} == {"ok"}


def test_marker_round_trip() -> None:
    from metaextract.extraction.pool import _Marker

    marker, fd = _Marker.create()
    try:
        import mmap

        child_view = _Marker(mmap.mmap(fd, 24))
        assert marker.get() == (_Marker.IDLE, 0.0)
        child_view.set(41, 123.5)
        assert marker.get() == (41, 123.5)
        child_view.set(_Marker.IDLE, 0.0)
        assert marker.get() == (_Marker.IDLE, 0.0)
        child_view.close()
    finally:
        os.close(fd)
        marker.close()


def test_out_of_memory_costs_one_worker_not_the_run(files: dict[str, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAEXTRACT_JAVA_HEAP_MB", "128")
    with ExtractionPool(1, timeout=120) as pool:
        results = _by_name(list(pool.map([files["big"], files["a"], files["b"]])))
        assert pool.stats.replaced_workers == 1
    assert results["big.ome.xml"].status == "failed"
    assert "OutOfMemoryError" in (results["big.ome.xml"].error or "")
    assert results["a.tif"].status == results["b.tif"].status == "ok"


def _kill_busy_worker_when_busy(sig: int, delay: float) -> threading.Thread:
    me = psutil.Process()

    def killer() -> None:
        time.sleep(delay)
        for child in me.children(recursive=True):
            if "metaextract.engines.bioformats.cds" in " ".join(child.cmdline()):  # a class-data archive builder
                continue
            if child.cpu_percent(interval=0.3) > 20:  # the one busy on the big file
                os.kill(child.pid, sig)
                return

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    return t


# A JVM crash (a fault in native code) ends in abort() after writing its hs_err file; a SIGSEGV sent from
# outside is no such crash: the JVM's own handler takes it once the JVM runs (faster workers made that the
# usual case), so the crash is simulated with SIGABRT.
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGABRT], ids=["kill-9", "abort"])
def test_dead_worker_is_replaced_and_its_file_failed(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                     sig: int) -> None:
    monkeypatch.setenv("METAEXTRACT_JAVA_HEAP_MB", "3000")
    paths = [files["big"], files["a"], files["b"], files["c"]]
    with ExtractionPool(2, timeout=60) as pool:
        # warm the pool first, so the only busy process later is the one on the looping file
        list(pool.map([files["a"], files["b"]]))
        killer = _kill_busy_worker_when_busy(sig, 1.0)
        results = _by_name(list(pool.map(paths)))
        killer.join()
        assert pool.stats.replaced_workers == 1
    big = results["big.ome.xml"]
    assert big.status == "failed"
    assert "died while reading" in (big.error or "") and "big.ome.xml" in (big.error or "")
    assert [results[n].status for n in ("a.tif", "b.tif", "c.tif")] == ["ok", "ok", "ok"]


def test_extraction_processes_have_no_network() -> None:
    """A worker process cannot connect anywhere, not even to a port listening on 127.0.0.1."""
    import socket
    import subprocess
    import sys

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    probe = ("import socket, sys; from metaextract.extraction.pool import isolate_network; ok = isolate_network(); "
             f"s = socket.socket(); s.settimeout(2)\n"
             f"try:\n    s.connect(('127.0.0.1', {port})); print(ok, 'connected')\n"
             f"except OSError as e:\n    print(ok, 'refused', e)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    server.close()
    assert out.stdout.startswith("True refused"), out.stdout + out.stderr


def test_a_result_travels_as_a_row_and_back_whole() -> None:
    """Extraction processes send Results as tuples of their fields: every field must come back, in place."""
    import dataclasses

    from metaextract.result import ROW_PATH, ROW_RSS, ROW_SECONDS, Result

    r = Result(path="/p/a.tif", status="ok", omexml="<OME/>", engine="tifffile", engine_version="1", seconds=0.25,
               valid=False, validation_error="line 1: x", notes=["n"], rss_mb=12.5)
    row = r.to_row()
    assert len(row) == len(dataclasses.fields(Result))
    assert (row[ROW_PATH], row[ROW_SECONDS], row[ROW_RSS]) == ("/p/a.tif", 0.25, 12.5)
    assert Result.from_row(row) == r
    assert Result.from_dict(r.to_dict()) == r  # the public dict form (JSON) goes round too
