"""`submit` (here, and on a Dask LocalCluster) against `run` of the same jobs, on 2 cores: the scheduling
overhead.

All start from a cold pool (JVMs included), read the same synthetic files and write the same database
rows; `run` takes the jobs one after another through one warm 2-process extraction pool; `submit` streams
them through the 2 extraction processes of the submitter (the default, `--cluster local`), or hands them to
a 2-worker Dask LocalCluster whose workers keep one extraction process (one JVM) each (`--cluster dask`).
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from common import md_table  # noqa: E402


def _tiny_tiff(path: Path) -> None:
    entries = [(256, 3, 1, 4), (257, 3, 1, 4), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 200), (277, 3, 1, 1), (278, 3, 1, 4), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    data = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    path.write_bytes(data + b"\0" * (216 - len(data)))


def _experiment(root: Path, n: int, batch: int) -> tuple[str, str]:
    from metaextract.experiment import add_folder, create_experiment
    from metaextract.jobs.step import MetadataExtractor, MetaextractBatchArguments
    from metaextract.store import open_store

    folder = root / "plate"
    folder.mkdir()
    first = folder / "s00000.tif"
    _tiny_tiff(first)
    for i in range(1, n):
        os.link(first, folder / f"s{i:05d}.tif")
    url = f"sqlite:///{root / 'bench.db'}"
    store = open_store(url)
    create_experiment(store, "bench")
    add_folder(store, "bench", folder)
    with MetadataExtractor("bench", db=store) as ex:
        ex.init(MetaextractBatchArguments(batch_size=batch))
    return url, "bench"


def _time_run(url: str, name: str, jobs: int) -> float:
    from metaextract.extraction.pool import ExtractionPool
    from metaextract.jobs.step import MetadataExtractor

    start = time.perf_counter()
    with MetadataExtractor(name, db=url) as ex, ExtractionPool(2, engine="bioformats") as pool:
        for number in range(1, jobs + 1):
            ex.run_job(number, pool=pool)
    return time.perf_counter() - start


def _time_submit(url: str, name: str, cluster: str) -> float:
    from metaextract.jobs.submission import SubmitOptions, submit
    from metaextract.store import open_store

    store = open_store(url)
    start = time.perf_counter()
    opts = SubmitOptions(max_jobs=2, interval=3600.0, mode="resubmit-all", engine="bioformats", cluster=cluster)
    code = submit(store, name, opts, echo=lambda s: None)
    elapsed = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"submit exited {code}")
    return elapsed


def run(quick: bool) -> str:
    from metaextract.jobs.step import MetadataExtractor

    n, batch = (2000, 100) if quick else (8000, 200)
    jobs = n // batch
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        url, name = _experiment(Path(tmp), n, batch)
        runs, submits, dasks = [], [], []
        for _ in range(1 if quick else 2):
            runs.append(_time_run(url, name, jobs))
            with MetadataExtractor(name, db=url) as ex:
                ex.delete_previous_job_output()
            dasks.append(_time_submit(url, name, "dask"))
            with MetadataExtractor(name, db=url) as ex:
                ex.delete_previous_job_output()
            submits.append(_time_submit(url, name, "local"))
        with MetadataExtractor(name, db=url) as ex:
            ok = ex.status()["files"]["ok"]
    if ok != n:
        raise RuntimeError(f"only {ok} of {n} files ok after submit")
    for label, values in (("run (jobs in turn, one 2-process pool)", runs),
                          ("submit (here: 2 extraction processes)", submits),
                          ("submit --cluster dask (LocalCluster, 2 workers)", dasks)):
        best = min(values)
        rows.append([label, " / ".join(f"{v:.2f}" for v in values), f"{n / best:.0f}"])
    overhead = (min(submits) - min(runs)) / min(submits) * 100
    dask_overhead = (min(dasks) - min(runs)) / min(dasks) * 100
    return (
        "## submit against run (scheduling overhead)\n\n"
        f"{n} tiny synthetic TIFFs in {jobs} jobs of {batch}, read by Bio-Formats (`--engine bioformats`, "
        "so that the extraction is the same few ms a file as for most vendor formats), SQLite, 2 cores; both "
        "from a cold start (JVM starts included); seconds per repeat.\n\n"
        + md_table(["how", "seconds", "files/s (best)"], rows)
        + f"\n\nScheduling overhead of submit (best against best): **{overhead:.1f} %** of its total "
        f"(target < 10 %); through a Dask LocalCluster {dask_overhead:.1f} %. Dask's own cost is the cluster "
        "start (~1 s) and one task per bundle of jobs; the files are read by the same extraction processes "
        "every way.\n"
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
