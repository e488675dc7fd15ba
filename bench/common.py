"""What every benchmark shares: the machine, timing over repeats, the corpus, and the seed's way.

The seed (TissueMAPS' ``metaextract`` step) started one JVM per file::

    java -cp bioformats_package.jar loci.formats.tools.ImageInfo \\
         -omexml-only -nopix -novalid -nocore -no-upgrade -no-sas FILE

in the file's folder, two at a time. :func:`seed_extract` does exactly that, with the same JRE and jar
as metaextract, so the two are compared on equal terms.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED_FLAGS = ("-omexml-only", "-nopix", "-novalid", "-nocore", "-no-upgrade", "-no-sas")


# -- the machine -----------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """Short commit of the working tree, with ``+dirty`` when it has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine_info() -> dict[str, str]:
    """Cores, memory, CPU, OS, Python, Java, Bio-Formats, date and git commit, as display strings."""
    import psutil

    import metaextract

    java = "unknown"
    try:
        from metaextract.engines.bioformats.jvm import java_executable

        out = subprocess.run([str(java_executable()), "-version"], capture_output=True, text=True, timeout=30)
        java = (out.stderr or out.stdout).splitlines()[0].strip()
    except Exception:  # noqa: BLE001 - informative only
        pass
    return {
        "cpu": _cpu_model(),
        "cores": f"{os.cpu_count()} logical ({psutil.cpu_count(logical=False) or '?'} physical)",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": java,
        "bioformats": metaextract.bioformats_version(),
        "metaextract": metaextract.__version__,
        "load average (1, 5, 15 min) at the start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
    }


# -- timing ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Seconds measured over repeats."""

    values: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def fmt(self, scale: float = 1.0, digits: int = 2, unit: str = "s") -> str:
        """``median (min–max) unit`` with every value multiplied by ``scale``."""
        if len(self.values) == 1:
            return f"{self.median * scale:.{digits}f} {unit}"
        return (f"{self.median * scale:.{digits}f} {unit} "
                f"({self.min * scale:.{digits}f}–{self.max * scale:.{digits}f})")


def repeat(fn: Callable[[], float | None], repeats: int) -> Timing:
    """Run ``fn`` ``repeats`` times; each run's time is what ``fn`` returns, or its wall time if None."""
    values = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        got = fn()
        values.append(got if got is not None else time.perf_counter() - start)
    return Timing(tuple(values))


# -- the corpus ------------------------------------------------------------------------------------------
def corpus_root() -> Path:
    return Path(os.environ.get("METAEXTRACT_CORPUS", ROOT.parent / "shared" / "corpus")).resolve()


def corpus_files(root: Path | None = None) -> list[Path]:
    """Every file the corpus manifest lists (or, without a manifest, every file under the root)."""
    base = root or corpus_root()
    manifest = base / "MANIFEST.tsv"
    if manifest.is_file():
        with open(manifest, newline="") as fh:
            return [base / row["local_path"] for row in csv.DictReader(fh, delimiter="\t")]
    return sorted(p for p in base.rglob("*") if p.is_file() and p.name not in ("README.md", "MANIFEST.tsv"))


# -- the seed's way --------------------------------------------------------------------------------------
def seed_command(path: Path) -> list[str]:
    from metaextract.engines.bioformats.jvm import bioformats_jar, java_executable

    return [str(java_executable()), "-cp", str(bioformats_jar()), "loci.formats.tools.ImageInfo",
            *SEED_FLAGS, path.name]


def seed_one(path: Path, timeout: float = 300.0) -> tuple[int, str]:
    """One JVM for one file, in the file's folder, as the seed did: ``(exit status, stdout)``."""
    proc = subprocess.run(seed_command(path), cwd=path.parent, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return proc.returncode, proc.stdout


def seed_run(paths: Sequence[Path], parallel: int = 2) -> tuple[float, dict[Path, tuple[int, str]]]:
    """The seed's way over ``paths``: wall seconds and each file's ``(exit status, stdout)``."""
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        outputs = dict(zip(paths, pool.map(seed_one, paths), strict=True))
    return time.perf_counter() - start, outputs


def seed_extract(paths: Sequence[Path], parallel: int = 2) -> float:
    """Seconds the seed's way takes over ``paths`` (one JVM subprocess per file, ``parallel`` at a time)."""
    return seed_run(paths, parallel)[0]


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- databases -------------------------------------------------------------------------------------------
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new PostgreSQL database on the machine's server, dropped afterwards; yields its URL."""
    import uuid

    import psycopg

    name = f"metaextract_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
