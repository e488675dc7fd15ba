"""Real HCS plates end to end as a user types them, against the seed and the I/O floor (issue 19).

Plates, each in a temporary folder: ImageXpress plates with their ``.HTD``, hard links to the real MetaXpress
TIFFs of ``corpus-hcs`` (:func:`metaextract.synth.link_htd_plate`; 96 wells x 4 sites x 3 wavelengths =
1,152 TIFFs, and 384 wells = 4,608; ``--quick``: the 1,152 one only), and the CellVoyager measurement
``CV7000-example`` completed with the ~2,000 TIFFs its ``.mlf`` names
(:func:`metaextract.synth.complete_cellvoyager`). For each: ``experiment add --create`` (the experiment
made by the same command), ``init``, ``submit`` typed as three ``metaextract`` processes, timed from outside,
on a fresh SQLite database per round; after each round a slice of the seed's random sample of the same
files, vendor files present, each run in its folder with its absolute path as the seed did (one JVM per
file, two at a time); the I/O floor (open, read 4 KiB, one SQLite row, per file) on every file.

``METAEXTRACT_BENCH_HCS_SMALL=1``: a 2-well ImageXpress plate instead of the big ones (for a tree where
an ``.HTD`` plate is still read whole once per file, which grows as N²).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from bench_plate import io_floor  # noqa: E402
from common import ROOT, SEED_FLAGS, Timing, md_table  # noqa: E402

TARGET_SEED = 1000.0
TARGET_FLOOR = 10.0
TARGET_FLAT = 0.20
SEED_TIMEOUT = 900.0


def corpus_hcs() -> Path:
    return Path(os.environ.get("METAEXTRACT_CORPUS_HCS", ROOT.parent / "shared" / "corpus-hcs")).resolve()


# -- the seed, as it ran on plates -----------------------------------------------------------------------
def seed_one(path: Path) -> tuple[float, int, str]:
    """One JVM for one file, started in the file's folder with its absolute path (as the seed and the
    reference outputs did): ``(seconds, exit status, stdout)``."""
    from metaextract.engines.bioformats.jvm import bioformats_jar, java_executable

    cmd = [str(java_executable()), "-cp", str(bioformats_jar()), "loci.formats.tools.ImageInfo", *SEED_FLAGS,
           str(path.resolve())]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True, timeout=SEED_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, -1, ""
    return time.perf_counter() - start, proc.returncode, proc.stdout


def seed_slice(paths: Sequence[Path]) -> tuple[float, list[tuple[float, int, str]]]:
    """The seed's way over ``paths``, two at a time: wall seconds and each file's outcome."""
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        out = list(pool.map(seed_one, paths))
    return time.perf_counter() - start, out


# -- ours, as typed --------------------------------------------------------------------------------------
def typed(url: str, *args: str) -> tuple[float, str]:
    """One ``metaextract`` command in its own process (the installed console script): wall seconds seen
    from here — interpreter start, imports, opening the database included — and its stdout."""
    exe = Path(sys.executable).with_name("metaextract")
    cmd = [str(exe) if exe.is_file() else sys.executable, *([] if exe.is_file() else ["-m", "metaextract"]),
           "--db", url, *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return seconds, proc.stdout


def status_totals(text: str) -> tuple[int, int, int]:
    """``(files, ok, failed)`` from the ``total`` line of ``EXP status``."""
    for line in text.splitlines():
        if line.startswith("total"):
            files, ok, failed = (int(x) for x in line.split()[1:4])
            return files, ok, failed
    raise RuntimeError(f"no total in status output: {text[-500:]}")


STEPS = ("add", "init", "submit")


@dataclass
class PlateRun:
    """What one plate measured: per-step seconds per round, the seed's per-file seconds, the floor."""

    label: str
    n: int
    steps: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    db_bytes: list[int] = field(default_factory=list)
    stored: tuple[int, int, int] = (0, 0, 0)
    seed_wall: float = 0.0
    seed_files: list[tuple[float, int, str]] = field(default_factory=list)
    floor: Timing = Timing((0.0,))

    @property
    def total(self) -> Timing:
        rounds = len(self.steps["submit"])
        return Timing(tuple(sum(self.steps[s][i] for s in STEPS) for i in range(rounds)))

    @property
    def seed_per_file(self) -> float:
        return self.seed_wall / max(1, len(self.seed_files))

    @property
    def bytes_per_file(self) -> float:
        return sorted(self.db_bytes)[len(self.db_bytes) // 2] / self.n


def _db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def measure(label: str, folder: Path, tmp: Path, rounds: int, seed_sample: int) -> PlateRun:
    """``rounds`` typed runs of the plate in ``folder``, each followed by one slice of the seed sample."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    run = PlateRun(label, len(files))
    sample = random.Random(0).sample(files, min(seed_sample, len(files)))
    name = "hcs-bench"
    for r in range(rounds):
        db = tmp / f"{folder.name}-{r}.db"
        db.unlink(missing_ok=True)
        url = f"sqlite:///{db}"
        for step, args in (("add", ("experiment", "add", "--create", name, str(folder))), ("init", (name, "init")),
                           ("submit", (name, "submit"))):
            run.steps[step].append(typed(url, *args)[0])
        run.stored = status_totals(typed(url, name, "status")[1])
        run.db_bytes.append(_db_size(db))
        part = sample[r::rounds]
        wall, out = seed_slice(part)
        run.seed_wall += wall
        run.seed_files += out
        print(f"hcs: {label} round {r + 1}: ours {run.total.values[-1]:.1f} s ({run.stored}); seed {wall:.1f} s "
              f"on {len(part)} files", file=sys.stderr)
    run.floor = Timing(tuple(io_floor(files, tmp / "floor.db") for _ in range(3)))
    return run


# -- the report ------------------------------------------------------------------------------------------
def _mark(ok: bool) -> str:
    return " ✓" if ok else " ✗"


def _row(run: PlateRun) -> list[str]:
    total = run.total.median
    seed_x = run.seed_per_file * run.n / total
    floor_x = total / run.floor.median
    ok_seed = sum(1 for _, code, out in run.seed_files if code == 0 and "<OME" in out)
    seed_bytes = sum(len(out.encode()) for _, _, out in run.seed_files) / max(1, len(run.seed_files))
    return [run.label, f"{run.n:,}", f"**{run.total.fmt()}**", f"{total / run.n * 1e3:.2f} ms",
            f"{run.seed_per_file:.1f} s, {seed_bytes / 1024:,.0f} KiB ({ok_seed}/{len(run.seed_files)} read)",
            f"**{seed_x:,.0f}x**" + _mark(seed_x >= TARGET_SEED),
            f"{run.floor.median / run.n * 1e6:.0f} µs", f"**{floor_x:.1f}x**" + _mark(floor_x <= TARGET_FLOOR),
            f"{run.bytes_per_file / 1024:.1f} KiB", f"{run.stored[1]:,} ok, {run.stored[2]:,} failed"]


def _steps_rows(runs: Sequence[PlateRun]) -> list[list[str]]:
    return [[r.label, *(Timing(tuple(r.steps[s])).fmt() for s in STEPS)] for r in runs]


def _flat(a: PlateRun, b: PlateRun) -> str:
    t = (b.total.median / b.n) / (a.total.median / a.n) - 1
    s = b.bytes_per_file / a.bytes_per_file - 1
    return (f"{a.label.split(' ')[0]}: from {a.n:,} to {b.n:,} files (same layout, 4x the wells): time per file "
            f"{t:+.0%}{_mark(t <= TARGET_FLAT)}, stored bytes per file {s:+.0%}{_mark(s <= TARGET_FLAT)} "
            f"(target: no growth beyond +{TARGET_FLAT:.0%}; a fall is the three processes' fixed start "
            "spread over more files).")


def process_start(tmp: Path, rounds: int = 3) -> tuple[Timing, Timing]:
    """Seconds of a bare ``metaextract --version`` process (interpreter start and the CLI's imports, no
    database), and of ``metaextract --db URL experiment list`` on an existing, empty database (the same plus
    SQLAlchemy and opening the database: what every command of the plate pays before any work), timed from
    outside as the commands are."""
    db = tmp / "empty.db"
    db.unlink(missing_ok=True)
    typed(f"sqlite:///{db}", "experiment", "list")  # created (and migrated) before the rounds
    bare, opened = [], []
    for _ in range(rounds):
        bare.append(typed(f"sqlite:///{db}", "--version")[0])
        opened.append(typed(f"sqlite:///{db}", "experiment", "list")[0])
    return Timing(tuple(bare)), Timing(tuple(opened))


def _bounds(runs: Sequence[PlateRun], start: Timing, opened: Timing) -> str:
    """Where the time goes: the short commands (mostly a process start each) against the floor."""
    parts = []
    for r in runs:
        short = sum(Timing(tuple(r.steps[s])).median for s in ("add", "init"))
        parts.append(f"{r.label.split(' (')[0]}: `add --create` + `init` {short:.2f} s, `submit` "
                     f"{Timing(tuple(r.steps['submit'])).median:.2f} s, the floor for every file "
                     f"{r.floor.median * 1e3:.0f} ms")
    smallest = min(runs, key=lambda r: r.n)
    three = 3 * opened.median
    return ("What bounds these figures: each command is its own process, and its start — the interpreter, the "
            "imports (SQLAlchemy; Alembic for the new database), opening the database — costs the same "
            f"whatever the plate (a bare `metaextract --version` process: {start.fmt()}; `experiment list` on "
            f"an existing empty database, which imports SQLAlchemy and opens it: {opened.fmt()}); `submit` adds "
            "its extraction processes' start and, per plate, one read of the vendor files and TIFF headers. "
            + "; ".join(parts) + f". Three process starts that open the database, and do nothing else, are "
            f"{three:.2f} s: {three / smallest.floor.median:.0f}x the floor of the {smallest.n:,}-file plate "
            "before any file is read, so ≤ 10x the floor cannot be met by commands typed as separate processes "
            "(it would need the plate's I/O floor to be over a tenth of three process starts: plates of "
            f"~{three / 10 / (smallest.floor.median / smallest.n):,.0f} files). The CellVoyager TIFFs are read by "
            "the native TIFF engine: the `.wpi` beside them does not make Bio-Formats group them (its CV7000 "
            "reader takes the `.wpi` alone), which the engine had taken as a reason to leave every TIFF to the "
            "JVM (`submit` 23.4 s on this plate on 2026-12-06 07:14 UTC).")


def plates(quick: bool, small: bool) -> list[tuple[str, Callable[[Path], Path], int, int]]:
    """``(label, builder, rounds, seed sample)`` per plate; a builder writes into a folder and returns it."""
    hcs = corpus_hcs()
    from metaextract import synth

    def htd(wells: int) -> Callable[[Path], Path]:
        def build(into: Path) -> Path:
            synth.link_htd_plate(hcs, into, wells=wells)
            return into
        return build

    def cv(columns: int) -> Callable[[Path], Path]:
        def build(into: Path) -> Path:
            synth.complete_cellvoyager(hcs / "yokogawa-cv7000" / "CV7000-example", into, columns=columns)
            return into
        return build

    out: list[tuple[str, Callable[[Path], Path], int, int]] = []
    if small:
        out.append(("ImageXpress `.HTD`, 2 wells × 4 sites × 3 λ", htd(2), 3, 6))
    else:
        out.append(("ImageXpress `.HTD`, 96 wells × 4 sites × 3 λ", htd(96), 2, 8))
        if not quick:
            out.append(("ImageXpress `.HTD`, 384 wells × 4 sites × 3 λ", htd(384), 2, 6))
    out.append(("CellVoyager CV7000-example (`.wpi` + `.mlf`/`.mrf` + TIFFs)", cv(1), 2, 20))
    if not quick and not small:
        out.append(("CellVoyager CV7000-example, its wells measured in 4 plate columns", cv(4), 2, 20))
    return out


def run(quick: bool) -> str:
    small = os.environ.get("METAEXTRACT_BENCH_HCS_SMALL") == "1"
    runs: list[PlateRun] = []
    with tempfile.TemporaryDirectory(prefix="metaextract-bench-hcs-") as tmp_name:
        tmp = Path(tmp_name)
        for i, (label, build, rounds, sample) in enumerate(plates(quick, small)):
            folder = build(tmp / f"plate{i}")
            runs.append(measure(label, folder, tmp, rounds, sample))
        start, opened = process_start(tmp)
    htd_runs = [r for r in runs if r.label.startswith("ImageXpress")]
    cv_runs = [r for r in runs if r.label.startswith("CellVoyager")]
    lines = [
        "## Real HCS plates end to end, as a user types them (bench/bench_hcs.py)",
        "",
    ]
    if small:
        lines += ["**Measured before the fileset reader of issue 19 landed on this tree** (an `.HTD` plate's "
                  "TIFFs are each read through Bio-Formats as the whole plate, which grows as N²): only a "
                  "2-well ImageXpress plate and the CellVoyager plate were measured "
                  "(`METAEXTRACT_BENCH_HCS_SMALL=1`); the 1,152- and 4,608-file plates wait for that reader.",
                  ""]
    lines += [
        "Each plate: `metaextract --db URL experiment add --create NAME DIR` (which creates the experiment), "
        "`NAME init`, `NAME submit`, each its own process timed from outside (interpreter start, imports, opening the "
        "database included), on a fresh SQLite database per round; after each round one slice of the seed's "
        "random sample of the same files (vendor files present; one `ImageInfo` JVM per file, started in the "
        "file's folder with its absolute path, 2 at a time), so the machine's drift hits both; the I/O "
        "floor (open + read 4 KiB + one SQLite row per file, 3 runs) on every file of the plate. Files = "
        "every file of the plate folder, TIFFs and vendor files. Stored = SQLite file size after `submit` / "
        "files. Targets: ≥ 1,000x the seed, ≤ 10x the floor.",
        "",
        md_table(["plate", "files", "ours end to end (typed)", "per file", "seed per file, its OME-XML",
                  "vs seed (scaled to the plate)", "floor per file", "vs floor", "stored per file",
                  "results (status)"], [_row(r) for r in runs]),
        "",
        "Per command (median (min–max) over the rounds):",
        "",
        md_table(["plate", *(f"`{s}`" for s in STEPS)], _steps_rows(runs)),
        "",
    ]
    for same in (htd_runs, cv_runs):
        if len(same) >= 2:
            lines += [_flat(same[0], same[-1]), ""]
    lines += [_bounds(runs, start, opened), ""]
    lines += ["The ImageXpress plates are hard links to the real MetaXpress TIFFs of `corpus-hcs` "
              "(`faim-ipa_9987_Plate_3435`, site parity and wavelength kept) under a generated `.HTD` "
              "(`metaextract.synth.link_htd_plate`); the CellVoyager TIFFs are the 16×16 planes the `.mlf` "
              "names, written by `metaextract.synth.complete_cellvoyager` (the instrument's TIFFs carry no "
              "metadata); the larger CellVoyager plate is the same measurement with every record repeated for "
              "the wells of the next 3 plate columns (`complete_cellvoyager(columns=4)`; Bio-Formats' CV7000 "
              "reader and ours agree on its key fields, `tests/test_filesets_cellvoyager.py`). The seed's per-file "
              "time is scaled to the plate (per file × files).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
