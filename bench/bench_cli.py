"""The command line's start: ``metaextract --version``, ``--help`` and ``EXP status`` of a 20,000-file experiment.

Each command runs in its own process, timed from outside (``subprocess.run`` wall time: the interpreter's
start, the imports, the database and the output), as a user types it. The rounds are interleaved (every
round runs each command once, in turn, on SQLite and PostgreSQL), so a load that comes and goes touches
all of them alike; the table gives the median (min–max) of the rounds.

With ``METAEXTRACT_BENCH_BASELINE=DIR`` (a checkout of another commit's ``src`` folder, e.g. made by
``git archive COMMIT src | tar -x -C /tmp/base``), every command is also run from that tree, right after
this one's, in the same round: an A/B comparison on equal terms.

Targets (issue 18): ``--version`` and ``--help`` under 0.25 s, ``status`` of 20,000 files under 0.5 s.
Run alone with ``python bench/bench_cli.py [--quick]``.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from bench_scale import database, make_links, pg_reachable, tiny_tiff  # noqa: E402
from common import ROOT, Timing, md_table  # noqa: E402

FILES = 20_000
TARGETS = {"--version": 0.25, "--help": 0.25, "status": 0.5}
BASELINE_ENV = "METAEXTRACT_BENCH_BASELINE"


def _env(src: Path) -> dict[str, str]:
    """The environment a user's shell would give, with ``src`` first on the path (this tree or the baseline)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "METAEXTRACT_DB")}
    env["PYTHONPATH"] = str(src)
    return env


def _command() -> list[str]:
    """The installed ``metaextract`` script beside this interpreter, else ``python -m metaextract.cli``."""
    script = Path(sys.executable).with_name("metaextract")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "metaextract.cli"]


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one command in a fresh process; it must succeed."""
    cpu, start = _cpu_children(), time.perf_counter()
    proc = subprocess.run([*_command(), *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    seconds, cpu = time.perf_counter() - start, _cpu_children() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"metaextract {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-1000:]}")
    return seconds, cpu


def _experiment(url: str, folder: Path, env: dict[str, str]) -> None:
    """A registered experiment ``bench`` of the files under ``folder``, cut into jobs of 100."""
    for args in (["experiment", "create", "bench"], ["experiment", "add", "bench", str(folder)],
                 ["bench", "init"]):
        _run(["--db", url, *args], env)


def rounds(urls: dict[str, str], trees: dict[str, Path], n: int) -> dict[tuple[str, str, str], tuple[Timing, Timing]]:
    """``n`` interleaved rounds; ``(tree, command, database)`` → wall and CPU seconds of each round."""
    cases: list[tuple[str, list[str]]] = [("--version", ["--version"]), ("--help", ["--help"])]
    cases += [(f"status|{kind}", ["--db", url, "bench", "status"]) for kind, url in urls.items()]
    envs = {tree: _env(src) for tree, src in trees.items()}
    for tree in trees:  # once each before timing: compiled bytecode, the file cache warm
        for _, args in cases:
            _run(args, envs[tree])
    got: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for _ in range(n):
        for label, args in cases:
            command, _, kind = label.partition("|")
            for tree in trees:
                got.setdefault((tree, command, kind or "—"), []).append(_run(args, envs[tree]))
    return {key: (Timing(tuple(w for w, _ in values)), Timing(tuple(c for _, c in values)))
            for key, values in got.items()}


def _sources() -> Iterator[tuple[str, Path]]:
    yield "this commit", ROOT / "src"
    baseline = os.environ.get(BASELINE_ENV)
    if baseline:
        yield f"baseline ({Path(baseline).resolve().parent.name})", Path(baseline).resolve()


def run(quick: bool) -> str:
    n = 5 if quick else 9
    trees = dict(_sources())
    kinds = ["sqlite"] + (["postgresql"] if pg_reachable() else [])
    with tempfile.TemporaryDirectory(prefix="metaextract-bench-cli-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        source = tiny_tiff(tmp / "source" / "source.tif")
        folder = make_links(source, tmp / "files", FILES)
        urls = {kind: stack.enter_context(database(kind, tmp)) for kind in kinds}
        for url in urls.values():
            _experiment(url, folder, _env(ROOT / "src"))
        timings = rounds(urls, trees, n)
        shutil.rmtree(folder)
    rows = []
    for (tree, command, kind), (t, cpu) in sorted(timings.items(), key=lambda kv: (kv[0][1] != "--version",
                                                                            kv[0][1], kv[0][2], kv[0][0])):
        target = TARGETS[command]
        mark = " ✓" if t.median < target else " ✗"
        rows.append([f"`{command}`" if command != "status" else f"`EXP status` ({FILES:,} files)", kind, tree,
                     t.fmt(1000, 0, "ms") + (mark if tree == "this commit" else ""), cpu.fmt(1000, 0, "ms"),
                     f"< {target * 1000:.0f} ms"])
    return "\n".join([
        "## Command-line start: --version, --help, status of 20,000 files (bench/bench_cli.py)",
        "",
        f"Each command in its own process, timed from outside (interpreter start included), as "
        f"`{Path(_command()[0]).name} …`; {n} interleaved rounds, median (min–max), after one untimed run of "
        "each. The CPU time (the command's process, from `getrusage`) hardly moves with the machine's load; the "
        "wall time does. "
        f"`status` of an experiment of {FILES:,} registered files cut into {FILES // 100} jobs (hard links to "
        "one 16×16 TIFF), on a fresh SQLite file and PostgreSQL database."
        + (f" Baseline: `{BASELINE_ENV}` run in the same rounds, right after this commit's." if len(trees) > 1
           else ""),
        "",
        md_table(["command", "database", "tree", "wall time", "CPU (user + system)", "target"], rows),
        "",
    ])


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
