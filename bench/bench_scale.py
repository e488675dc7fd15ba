"""Scale: 10,000 / 100,000 (/ 1,000,000) registered files on SQLite and PostgreSQL side by side.

For each size and database: time and peak RSS of ``add``, ``init`` and ``status``, each in a fresh
process (its own peak RSS, ``VmHWM``), the database size per file after ``init`` and after every file got a
representative OME-XML result (written by the submitter's own ``record_results``); then ``submit``
throughput at two sizes (flat in N?), and the extraction worker: RSS with a warm JVM, cost of a JVM start.

Sizes: ``make bench`` runs 10k and 100k registered and submits 10k and 100k; ``--quick`` 10k and 20k, submits
2k and 10k; ``METAEXTRACT_BENCH_FULL=1`` adds 1,000,000 registered files
(``METAEXTRACT_BENCH_FULL=1 python bench/run.py --only scale``, about 10 minutes on 2 cores).

A step runs alone with ``python bench/bench_scale.py --step NAME URL EXPERIMENT '{json args}'``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from common import PG_ADMIN, Timing, fresh_postgres, md_table  # noqa: E402

FULL = os.environ.get("METAEXTRACT_BENCH_FULL", "") not in ("", "0")
MARK = "BENCH-STEP "
TARGET_INIT_1M_S = 60.0
TARGET_RSS_MB = 1024.0


# -- files ------------------------------------------------------------------------------------------------
def tiny_tiff(path: Path) -> Path:
    """A plain 16x16 uint16 TIFF (what the tifffile engine claims, like CellVoyager output)."""
    import numpy as np
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.arange(256, dtype="uint16").reshape(16, 16), metadata=None)
    return path


LINKS_PER_SOURCE = 50_000  # file systems cap the links to one inode (ext4: 65,000)


def make_links(source: Path, root: Path, n: int, per_folder: int = 1000) -> Path:
    """``n`` hard links under ``root``, in folders (wells) of ``per_folder``; every ``LINKS_PER_SOURCE``
    links a fresh copy of ``source`` (beside it, one set per ``root``) becomes the link target, so no inode
    gets more links than the file system allows, whatever the sizes made."""
    target = source
    for i in range(n):
        if i % LINKS_PER_SOURCE == 0:
            target = source.with_name(f"{source.stem}-{root.name}-{i // LINKS_PER_SOURCE}{source.suffix}")
            if not target.exists():
                shutil.copyfile(source, target)
        folder = root / f"well{i // per_folder:04d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True)
        os.link(target, folder / f"site{i % per_folder:04d}.tif")
    return root


def representative_xml() -> str:
    """The OME-XML the tifffile engine writes for a synthetic MetaXpress file (about 1.1 KB)."""
    from metaextract import synth
    from metaextract.extraction.pipeline import extract_file

    with tempfile.TemporaryDirectory() as tmp:
        path = synth.write_metaxpress_plate(tmp, wells=1, sites=1, channels=1)[0]
        result = extract_file(str(path))
    if not result.ok or not result.omexml:
        raise RuntimeError(f"no OME-XML from {path}: {result.error}")
    return result.omexml


# -- databases --------------------------------------------------------------------------------------------
@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL database, dropped afterwards; yields its URL."""
    if kind == "sqlite":
        path = folder / f"bench-{uuid.uuid4().hex[:6]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    with fresh_postgres() as url:
        yield url


def pg_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL here
        return False
    return True


def db_bytes(url: str) -> int:
    """The database's size on disk (SQLite: after a WAL checkpoint)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


# -- one step in a fresh process --------------------------------------------------------------------------
def _record(store: Any, experiment: str, xml: str) -> int:
    """Store an ``ok`` result with ``xml`` for every image file, as the submitter does (record_results)."""
    from sqlalchemy import select

    from metaextract.experiment import resolve
    from metaextract.result import Result
    from metaextract.store.jobs import record_results
    from metaextract.store.models import image_files

    with store.connect() as conn:
        exp_id = resolve(conn, experiment).id

    def pairs() -> Iterator[tuple[int, Result]]:
        last = 0
        while True:
            with store.connect() as conn:
                rows = conn.execute(select(image_files.c.id, image_files.c.location)
                                    .where(image_files.c.experiment_id == exp_id, image_files.c.id > last)
                                    .order_by(image_files.c.id).limit(10_000)).all()
            if not rows:
                return
            last = rows[-1].id
            for fid, location in rows:
                yield fid, Result(path=location, status="ok", omexml=xml, engine="tifffile 2026.3.3",
                                  seconds=0.001, valid=True)

    return sum(record_results(store, pairs()).values())


def _steady_rate(store: Any, experiment: str) -> float | None:
    """Files per second between the first and the last transaction of results stored by the submitter (the
    files of the first are not counted: they came in before the first time)."""
    from sqlalchemy import func, select

    from metaextract.experiment import resolve
    from metaextract.store.models import image_files

    with store.connect() as conn:
        exp_id = resolve(conn, experiment).id
        first, last = conn.execute(select(func.min(image_files.c.extracted_at), func.max(image_files.c.extracted_at))
                                   .where(image_files.c.experiment_id == exp_id)).one()
        if first is None or last is None or last <= first:
            return None
        n_first = conn.execute(select(func.count()).select_from(image_files)
                               .where(image_files.c.experiment_id == exp_id,
                                      image_files.c.extracted_at == first)).scalar_one()
        total = conn.execute(select(func.count()).select_from(image_files)
                             .where(image_files.c.experiment_id == exp_id)).scalar_one()
    return float(total - n_first) / (last - first).total_seconds()


def peak_rss_mb() -> float:
    """This process' peak RSS: ``VmHWM`` (``ru_maxrss`` would count the parent's RSS from before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process (the submitter; with ``--cluster dask`` also the Dask scheduler) and of its
    waited-for descendants (the extraction processes; with Dask, the Dask workers too, once closed)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def step_main(argv: list[str]) -> None:
    """Run one step and print ``BENCH-STEP {json}``: seconds, this process' peak RSS, step details."""
    name, url, experiment = argv[:3]
    kw: dict[str, Any] = json.loads(argv[3]) if len(argv) > 3 else {}
    from metaextract.experiment import add_folder, create_experiment
    from metaextract.jobs.step import MetadataExtractor, MetaextractBatchArguments
    from metaextract.store import open_store

    out: dict[str, Any] = {}
    with open_store(url) as store:
        start = time.perf_counter()
        if name == "baseline":
            pass
        elif name == "create":
            create_experiment(store, experiment)
        elif name == "add":
            for folder in kw["folders"]:
                out["files"] = out.get("files", 0) + add_folder(store, experiment, folder).image_files
        elif name == "init":
            with MetadataExtractor(experiment, db=store) as ex:
                out["jobs"] = ex.init(MetaextractBatchArguments(kw.get("batch", 100)))
        elif name == "status":
            with MetadataExtractor(experiment, db=store) as ex:
                out["files"] = ex.status()["files"]
        elif name == "record":
            out["files"] = _record(store, experiment, Path(kw["xml"]).read_text())
        elif name == "submit":
            from metaextract.jobs.submission import SubmitOptions, submit

            cpu0 = _cpu()
            opts = SubmitOptions(max_jobs=kw.get("workers", 2), interval=3600.0, cluster=kw.get("cluster", "local"))
            out["exit"] = submit(store, experiment, opts,
                                 echo=lambda s: None)
        else:
            raise SystemExit(f"unknown step {name}")
        out["seconds"] = time.perf_counter() - start
        if name == "submit":
            own, kids = _cpu()
            out["cpu_submitter"], out["cpu_workers"] = own - cpu0[0], kids - cpu0[1]
            out["steady_rate"] = _steady_rate(store, experiment)
            with MetadataExtractor(experiment, db=store) as ex:
                out["files"] = ex.status()["files"]
    out["maxrss_mb"] = peak_rss_mb()
    print(MARK + json.dumps(out, default=str), flush=True)


def run_step(name: str, url: str, experiment: str, timeout: float = 3600.0, **kw: Any) -> dict[str, Any]:
    """``step_main`` in a fresh interpreter; its result, with the wall time seen from here."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", name, url, experiment, json.dumps(kw)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"step {name} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    out: dict[str, Any] = json.loads(lines[-1].removeprefix(MARK))
    out["wall"] = wall
    return out


# -- the measurements -------------------------------------------------------------------------------------
def measure_size(kind: str, tmp: Path, folder: Path, n: int, xml_file: Path, repeats: int) -> dict[str, Any]:
    with database(kind, tmp) as url:
        base = run_step("baseline", url, "scale")
        run_step("create", url, "scale")
        empty = db_bytes(url)
        add = run_step("add", url, "scale", folders=[str(folder)])
        if add["files"] != n:
            raise RuntimeError(f"add registered {add['files']} of {n} files")
        inits = [run_step("init", url, "scale", batch=100) for _ in range(repeats)]
        after_init = db_bytes(url)
        statuses = [run_step("status", url, "scale") for _ in range(repeats)]
        record = run_step("record", url, "scale", xml=str(xml_file))
        after_record = db_bytes(url)
    return {"kind": kind, "n": n, "baseline_mb": base["maxrss_mb"], "add": add, "inits": inits,
            "statuses": statuses, "record": record, "per_file_init": (after_init - empty) / n,
            "per_file_record": (after_record - empty) / n}


def measure_submit(kind: str, tmp: Path, folder: Path, n: int) -> dict[str, Any]:
    with database(kind, tmp) as url:
        run_step("create", url, "submit-bench")
        run_step("add", url, "submit-bench", folders=[str(folder)])
        run_step("init", url, "submit-bench", batch=100)
        sub = run_step("submit", url, "submit-bench")
    if sub["exit"] != 0 or sub["files"]["ok"] != n:
        raise RuntimeError(f"submit of {n} files: exit {sub['exit']}, {sub['files']}")
    return sub


def measure_worker(tiff: Path, repeats: int, warm_files: int = 200) -> list[dict[str, Any]]:
    """Per engine: time from spawning ExtractionPool(1) to its first result, RSS and per-file cost warm;
    Bio-Formats with and without the JVM's class-data archive (``metaextract.engines.bioformats.cds``)."""
    from metaextract.engines.bioformats import cds as _cds
    from metaextract.extraction.pool import ExtractionPool

    if not _cds.archive_path().is_file():
        _cds.build()
    rows = []
    for engine, cds in (("tifffile", True), ("auto", True), ("bioformats", True), ("bioformats", False)):
        firsts, rss, per_file = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            os.environ[_cds.ENV] = "1" if cds else "0"  # the pool's process inherits it
            with ExtractionPool(1, engine=engine) as pool:
                first = next(iter(pool.map([str(tiff)])))
                firsts.append(time.perf_counter() - start)
                t0 = time.perf_counter()
                results = list(pool.map([str(tiff)] * warm_files))
                per_file.append((time.perf_counter() - t0) / warm_files)
            if not first.ok or not all(r.ok for r in results):
                raise RuntimeError(f"{engine}: {first.error}")
            rss.append(max(r.rss_mb or 0.0 for r in results))
        os.environ.pop(_cds.ENV, None)
        rows.append({"engine": engine if cds else f"{engine}, no class-data archive", "first": Timing(tuple(firsts)),
                     "rss": Timing(tuple(rss)), "per_file": Timing(tuple(per_file)), "label": first.engine})
    return rows


def _t(values: list[dict[str, Any]], key: str = "seconds") -> Timing:
    return Timing(tuple(float(v[key]) for v in values))


def section_name() -> str:
    """The full-size run keeps its own section, which a default ``make bench`` leaves as it is."""
    return "scale-full" if FULL else "scale"


def run(quick: bool) -> str:
    import plots

    sizes = [10_000, 20_000] if quick else [10_000, 100_000] + ([1_000_000] if FULL else [])
    submit_sizes = [2_000, 10_000] if quick else [10_000, 100_000]
    repeats = 2 if quick else 3
    kinds = ["sqlite"] + (["postgresql"] if pg_reachable() else [])
    scale_rows, size_rows, submit_rows = [], [], []
    baseline_mb = 0.0
    rates: dict[str, list[tuple[int, tuple[float, float, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="metaextract-bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        source = tiny_tiff(tmp / "source" / "source.tif")  # alone: no companion file beside it
        xml = representative_xml()
        xml_file = tmp / "xml" / "omexml.xml"
        xml_file.parent.mkdir()
        xml_file.write_text(xml)
        for n in sorted(set(sizes + submit_sizes)):
            make_links(source, tmp / f"files{n}", n)
        for n in sizes:
            for kind in kinds:
                r = measure_size(kind, tmp, tmp / f"files{n}", n, xml_file, repeats)
                add, init, status = Timing((r["add"]["seconds"],)), _t(r["inits"]), _t(r["statuses"])
                for label, t, steps in (("add", add, [r["add"]]), ("init", init, r["inits"]),
                                        ("status", status, r["statuses"])):
                    rss = max(s["maxrss_mb"] for s in steps)
                    flag = ""
                    if label == "init" and n >= 1_000_000:
                        flag = " ✓" if init.median < TARGET_INIT_1M_S else " ✗"
                    scale_rows.append([kind, f"{n:,}", label, t.fmt() + flag, f"{n / t.median:,.0f}",
                                       f"{rss:.0f} MB", f"{rss - r['baseline_mb']:.0f} MB"])
                    rates.setdefault(f"{label} ({kind})", []).append((n, (n / t.max, n / t.median, n / t.min)))
                rec, baseline_mb = r["record"], r["baseline_mb"]
                size_rows.append([kind, f"{n:,}", f"{r['per_file_init']:.0f} B", f"{r['per_file_record']:.0f} B",
                                  f"{rec['seconds']:.1f} s ({n / rec['seconds']:,.0f} files/s)",
                                  f"{rec['maxrss_mb']:.0f} MB"])
                print(f"scale {kind} {n}: add {add.median:.1f} s, init {init.median:.1f} s, "
                      f"status {status.median:.2f} s", file=sys.stderr)
        submits: dict[str, dict[int, dict[str, Any]]] = {}
        for kind in kinds:
            for n in submit_sizes:
                s = measure_submit(kind, tmp, tmp / f"files{n}", n)
                submits.setdefault(kind, {})[n] = s
                steady = s["steady_rate"] or float("nan")
                rss_flag = " ✓" if s["maxrss_mb"] < TARGET_RSS_MB else " ✗"
                submit_rows.append([kind, f"{n:,}", f"{s['seconds']:.1f} s", f"{n / s['seconds']:,.0f}",
                                    f"{steady:,.0f}", f"{s['maxrss_mb']:.0f} MB{rss_flag}"])
                rates.setdefault(f"submit, end to end ({kind})", []).append((n, (n / s["seconds"],) * 3))
                if s["steady_rate"]:
                    rates.setdefault(f"submit, steady ({kind})", []).append((n, (s["steady_rate"],) * 3))
                print(f"scale submit {kind} {n}: {s['seconds']:.1f} s", file=sys.stderr)
        workers = measure_worker(source, repeats)
    flat = []
    for kind, by_n in submits.items():
        lo, hi = min(by_n), max(by_n)
        a, b = by_n[lo]["steady_rate"], by_n[hi]["steady_rate"]
        if a and b:
            change = (b - a) / a * 100
            flat.append(f"{kind}: steady {a:,.0f} → {b:,.0f} files/s from {lo:,} to {hi:,} files "
                        f"(**{change:+.0f} %**{' ✓' if abs(change) <= 20 else ' ✗'} against ±20 %)")
    no_jvm = next(w for w in workers if w["engine"] == "tifffile")
    jvm = next(w for w in workers if w["engine"] == "bioformats")
    jvm_plain = next(w for w in workers if w["engine"].startswith("bioformats, no"))
    worker_rows = [[w["engine"], w["label"], w["first"].fmt(), w["rss"].fmt(digits=0, unit="MB"),
                    w["per_file"].fmt(1000, 2, "ms")] for w in workers]
    runs = f"{repeats} runs (add: 1 run; submit: 1 run)"
    plot = plots.rate_vs_files(rates, "scale_rate_full" if FULL else "scale_rate",
                               "Files per second against number of files (add, init, status, submit)", runs)
    lines = [
        "## Scale: add, init, status, submit on SQLite and PostgreSQL (bench/bench_scale.py)"
        + (" — the full-size run (`METAEXTRACT_BENCH_FULL=1`)" if FULL else ""),
        "",
        f"Hard links to one 16×16 TIFF in folders of 1,000; sizes {', '.join(f'{n:,}' for n in sizes)}"
        + ("" if FULL else " (1,000,000 only with `METAEXTRACT_BENCH_FULL=1`)") + ". Each step runs in a fresh "
        "process (`python bench/bench_scale.py --step ...`): *peak RSS* is that process' `VmHWM`, "
        "*growth* the same minus an idle process that imported everything and opened the store "
        f"({baseline_mb:.0f} MB here). `add` once per size (it needs a fresh database); `init` "
        f"(batches of 100) and `status` {repeats} times: median (min–max). Fresh databases per size, "
        "dropped afterwards.",
        "",
        md_table(["database", "files", "step", "time", "files/s (median)", "peak RSS", "growth"], scale_rows),
        "",
        f"Database size per file: after `init`, and after every file got a {len(xml):,}-character OME-XML "
        "result (the tifffile engine's output for a synthetic MetaXpress file) written through the "
        "submitter's `record_results` (transactions of 200): its time and peak RSS are given too. "
        "SQLite: file + WAL after a checkpoint; PostgreSQL: `pg_database_size` after a checkpoint; both "
        "minus the empty schema.",
        "",
        md_table(["database", "files", "per file after init", "per file with OME-XML", "record_results",
                  "peak RSS"], size_rows),
        "",
        f"`submit` (here, `--cluster local`: 2 extraction processes of the submitter, engine auto: the tifffile "
        f"engine claims these files; batches of 100) at {' and '.join(f'{n:,}' for n in submit_sizes)} files"
        + (" (`--quick`; 10,000 and 100,000 in `make bench`)" if quick else "") + ": end to end includes "
        "the extraction processes' start; *steady* is files per second from the first stored transaction of "
        "results to the last. Peak RSS is the submitter's own (target < 1 GB).",
        "",
        md_table(["database", "files", "submit", "files/s end to end", "files/s steady", "submitter peak RSS"],
                 submit_rows),
        "",
        "Flat in N: " + ("; ".join(flat) if flat else "n/a") + ".",
        "",
        f"Extraction worker (`ExtractionPool(1)` on the tiny TIFF, {repeats} runs): time from spawning the "
        "process to its first result, its RSS after 200 more reads, and the per-file cost once warm. "
        "`bioformats` starts the JVM at spawn; `auto` only when Bio-Formats first gets a file, so a worker "
        "that reads only native-engine files never pays it. The JVM maps Bio-Formats' classes from a "
        "class-data sharing archive built once per machine (`metaextract.engines.bioformats.cds`; `make` builds it, "
        "else the "
        "first JVM start does, in the background); the last row turns it off. "
        f"**JVM start cost: {jvm['first'].median - no_jvm['first'].median:.2f} s** (bioformats − "
        f"tifffile, medians; {jvm_plain['first'].median - no_jvm['first'].median:.2f} s without the archive); "
        f"**worker RSS with a warm JVM: {jvm['rss'].median:.0f} MB** against "
        f"{no_jvm['rss'].median:.0f} MB without one.",
        "",
        md_table(["engine", "as reported", "spawn → first result", "worker RSS (warm)", "per file (warm)"],
                 worker_rows),
        "",
        plot,
        "",
        "What bounds these figures. `add`: a Python loop per file (`os.scandir`, reading the first 4 KiB "
        "to tell images from sidecars, one row dict) and batched inserts of 5,000 — PostgreSQL pays a round "
        "trip per row of SQLAlchemy's executemany. `init`: the batches are numbered in the database "
        "(window functions into a temporary table), the jobs inserted a thousand at a time and every file "
        "row updated by one join `UPDATE`, so each file row is written once; on PostgreSQL each updated row "
        "leaves a dead tuple (hence its larger size per file after init until a vacuum). `status`: "
        "`GROUP BY` counts over `image_files`, a scan of the experiment's rows. Size per file: the relative "
        "name and the absolute path (both stored) plus the unique index on (acquisition, name); the "
        "OME-XML adds its own length. `submit`: a fixed start (each extraction process ~0.2 s of imports; a "
        "JVM only when Bio-Formats gets a file) that weighs on small N — hence end to end rising with N — "
        "then the extraction processes' CPU (~0.15 ms per file, files in chunks and results in batches), on "
        "2 cores shared with the submitter, which claims the jobs and writes the results (on PostgreSQL each "
        "written row also costs the server's CPU, on the same 2 cores).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--step":
        step_main(sys.argv[2:])
    else:
        print(run(quick="--quick" in sys.argv))
