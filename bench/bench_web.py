"""Web view: the plate map's response time for a 1,536-well plate with 100,000 files (target < 300 ms).

100,000 hard links of one small TIFF, named as MetaXpress names them (``PLATE_AF48_s12_w2.tif``: 1,536
wells, 65 or 66 files each), are registered with ``experiment add``; then results are written for most of
them through the submitter's own ``record_results`` (ok, some failed, the rest left pending), so every well
colour occurs. A ``metaextract serve`` process (read-only) answers; the time is the wall time of one whole
HTTP request from this process (the median of several, after one warm-up): the JSON endpoint, the HTML
page, and one well's files. ``--quick``: SQLite only; otherwise SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from bench_scale import LINKS_PER_SOURCE, tiny_tiff  # noqa: E402
from common import fresh_postgres, md_table  # noqa: E402

FILES = 100_000
TARGET_MS = 300.0
REPEATS = 7


def _wells() -> list[str]:
    rows = [chr(65 + i) for i in range(26)] + ["A" + chr(65 + i) for i in range(6)]
    return [f"{r}{c:02d}" for r in rows for c in range(1, 49)]


def make_plate(root: Path, n: int) -> Path:
    """``n`` hard links spread over the 1,536 wells, sites and two channels."""
    source = tiny_tiff(root.parent / f"{root.name}-source.tif")
    wells = _wells()
    root.mkdir(parents=True)
    target = source
    for i in range(n):
        if i % LINKS_PER_SOURCE == 0:
            target = source.with_name(f"{source.stem}-{i // LINKS_PER_SOURCE}.tif")
            shutil.copyfile(source, target)
        well, rest = wells[i % len(wells)], i // len(wells)
        os.link(target, root / f"PLATE_{well}_s{rest // 2 + 1}_w{rest % 2 + 1}.tif")
    return root


def fill(url: str, folder: Path) -> int:
    """Register the plate, then write results: 4 of 5 files ok, 1 in 50 failed, the rest pending."""
    from metaextract.experiment import add_folder, create_experiment
    from metaextract.result import Result
    from metaextract.store import open_store
    from metaextract.store.jobs import record_results
    from metaextract.store.results import open_experiment

    store = open_store(url)
    try:
        create_experiment(store, "web")
        add_folder(store, "web", folder, plate="P1536")
        with open_experiment("web", store) as exp:
            ids = [f.id for f in exp.files()]
        pairs = []
        for k, fid in enumerate(ids):
            if k % 50 == 0:
                pairs.append((fid, Result(path="x", status="failed", engine="tifffile",
                                          error=f"file {fid}: bench failure")))
            elif k % 5 != 4:
                pairs.append((fid, Result(path="x", status="ok", engine="tifffile")))
        record_results(store, pairs, chunk=5000)
        return len(ids)
    finally:
        store.close()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time(url: str) -> tuple[float, int]:
    """Median milliseconds of one whole request, and the body's size."""
    size = len(urllib.request.urlopen(url, timeout=120).read())  # warm-up (the cold request is timed apart)
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        urllib.request.urlopen(url, timeout=120).read()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), size


def measure(url: str) -> list[tuple[str, float, int]]:
    """Start ``serve`` on ``url``; time the plate map (JSON and HTML) and one well."""
    import json

    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "metaextract", "--db", url, "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                exp = json.loads(urllib.request.urlopen(base + "/api/experiments", timeout=5).read())[0]
                break
            except OSError:
                time.sleep(0.2)
        plate = json.loads(urllib.request.urlopen(f"{base}/api/experiments/{exp['id']}", timeout=60).read())
        pid = plate["plates"][0]["id"]
        t0 = time.perf_counter()
        pmap = json.loads(urllib.request.urlopen(f"{base}/api/experiments/{exp['id']}/plates/{pid}").read())
        cold = (time.perf_counter() - t0) * 1000
        assert len(pmap["wells"]) == 1536 and (pmap["rows"], pmap["columns"]) == (32, 48), pmap["rows"]
        out = [("plate map, JSON, first request (builds the well index from 100,000 names)", cold, 0)]
        for label, path in (("plate map, JSON", f"/api/experiments/{exp['id']}/plates/{pid}"),
                            ("plate map, HTML page", f"/experiments/{exp['id']}/plates/{pid}"),
                            ("one well's files (65 files), HTML", f"/experiments/{exp['id']}/plates/{pid}?well=P24")):
            ms, size = _time(base + path)
            out.append((label, ms, size))
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(quick: bool) -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        folder = make_plate(Path(tmp) / "plate", FILES)
        dbs: list[tuple[str, str]] = [("SQLite", f"sqlite:///{tmp}/web.db")]
        with ExitStack() as stack:
            if not quick:
                dbs.append(("PostgreSQL", stack.enter_context(fresh_postgres())))
            for name, url in dbs:
                t0 = time.perf_counter()
                n = fill(url, folder)
                setup = time.perf_counter() - t0
                for label, ms, size in measure(url):
                    rows.append((name, label, f"{n:,}", f"{ms:.0f}", f"{size / 1024:.0f} KiB" if size else "",
                                 "yes" if ms < TARGET_MS else "**no**"))
                rows.append((name, "(set-up: register + write results)", f"{n:,}", f"{setup * 1000:.0f}", "", ""))
    return "\n".join([
        "## Web view: plate map of a 1,536-well plate with 100,000 files",
        "",
        "`metaextract serve` (read-only, one uvicorn process) answering over HTTP on this machine; the median of "
        f"{REPEATS} whole requests after a warm-up. Wells come from the file names (`PLATE_AF48_s12_w2.tif`); "
        "80 % of the files ok, 2 % failed, the rest pending. Target: the plate map in under "
        f"{TARGET_MS:.0f} ms. The first request of a plate reads every file name once (the well index, kept "
        "by the server and brought up to date on each request); later ones read only the files whose status "
        "is not the plate's most common one. The load average below says how busy the machine was.",
        "",
        md_table(["database", "request", "files", "ms", "body", f"< {TARGET_MS:.0f} ms"], rows),
    ])


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
