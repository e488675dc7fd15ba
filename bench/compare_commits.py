"""Two source trees side by side: the plate, corpus and scale figures as a user types them.

Each figure is measured end to end through the command line, every ``metaextract`` command its own
process timed from outside (interpreter start, imports and opening the database included), for the tree of
``--against REV`` (checked out detached under ``.bench-data/``) and for this tree, **interleaved**: in
every round each figure runs on one tree and then at once on the other, the first tree alternating from
round to round (A B, B A, A B, ...), so the machine's drift and the page cache hit both alike. Both trees
run in the same interpreter and virtual environment: the installed console script imports
``metaextract.cli``, and the child's ``PYTHONPATH`` (the tree's ``src`` first) decides which tree that is
(checked before the first round). Both trees are byte-compiled first, as ``make compile`` does.

- **plate**: :func:`bench_plate.write_plate` (MetaXpress- and CellVoyager-like TIFFs, no ``.HTD``):
  ``experiment create``, ``experiment add`` per plate folder, ``init``, ``submit``, then ``status``;
- **corpus**: the real corpus registered as an experiment and submitted with ``--engine bioformats``
  and with ``--engine auto`` (the default);
- **scale**: :func:`bench_scale.make_links` hard-link tree, ``experiment add`` + ``init`` + ``status`` on
  a fresh SQLite file and a fresh PostgreSQL database (:func:`bench_scale.database`).

Usage::

    python bench/compare_commits.py --against 545f348 [--rounds 5] [--plate-files 20000]
        [--scale-files 100000] [--write]

``--write`` puts the section into BENCHMARKS.md between ``<!-- bench:compare-commits -->`` markers
(a whole ``make bench`` keeps it); the raw timings go to ``.bench-data/compare-*.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from bench_plate import typed_command, write_plate  # noqa: E402
from bench_scale import database, make_links, pg_reachable, tiny_tiff  # noqa: E402
from common import ROOT, corpus_root, md_table  # noqa: E402

SECTION = "compare-commits"
TOLERANCE = 0.05
DATA = ROOT / ".bench-data"


# -- the trees --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tree:
    """A source tree: its label (short commit) and ``src`` folder."""

    label: str
    src: Path

    def env(self) -> dict[str, str]:
        rest = os.environ.get("PYTHONPATH", "")
        return {**os.environ, "PYTHONPATH": os.pathsep.join([str(self.src), *([rest] if rest else [])])}


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def tree_of(rev: str) -> Tree:
    """``rev`` checked out detached under ``.bench-data/`` (made once, reused while at that commit)."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = DATA / f"tree-{commit[:7]}"
    if not (path / "src" / "metaextract").is_dir():
        DATA.mkdir(exist_ok=True)
        _git("worktree", "add", "--detach", str(path), commit)
    if _git("rev-parse", "HEAD", cwd=path) != commit:
        raise SystemExit(f"{path} is not at {commit}: remove it (git worktree remove {path})")
    return Tree(commit[:7], path / "src")


def this_tree() -> Tree:
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return Tree(_git("rev-parse", "--short=7", "HEAD") + ("+dirty" if dirty else ""), ROOT / "src")


def prepare(tree: Tree) -> str:
    """Byte-compile the tree (as ``make compile``) and check that a child with its env imports it."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree.src)], check=True)
    out = subprocess.run([sys.executable, "-c", "import metaextract; print(metaextract.__file__)"],
                         env=tree.env(), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(tree.src.resolve()):
        raise SystemExit(f"{tree.label}: the child imported {out}, not {tree.src}")
    return out


# -- timings ----------------------------------------------------------------------------------------------
Step = tuple[float, float]  # wall seconds, CPU seconds of the command's process tree


@dataclass
class Figure:
    """One figure's wall and CPU seconds per round on each tree, in the order measured."""

    name: str
    seconds: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def add(self, tree: str, step: Step) -> None:
        self.seconds.setdefault(tree, []).append(step[0])
        self.cpu.setdefault(tree, []).append(step[1])

    def median(self, tree: str, cpu: bool = False) -> float:
        return statistics.median((self.cpu if cpu else self.seconds)[tree])

    def ratios(self, base: str, head: str) -> list[float]:
        return [h / b for b, h in zip(self.seconds[base], self.seconds[head], strict=True)]


def timed(url: str, *args: str, tree: Tree, check: bool = True) -> Step:
    t = typed_command(url, *args, env=tree.env(), check=check)
    if t.proc.returncode not in (0, 1):
        raise RuntimeError(f"{tree.label}: {' '.join(args)} exited {t.proc.returncode}: {t.proc.stderr[-2000:]}")
    return t.seconds, t.cpu


def total(*steps: Step) -> Step:
    return sum(s[0] for s in steps), sum(s[1] for s in steps)


def status_json(url: str, experiment: str, tree: Tree) -> dict[str, Any]:
    """``EXP status --json`` (not timed): what the run left in the database."""
    proc = typed_command(url, experiment, "status", "--json", env=tree.env()).proc
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def engines_of(url: str) -> str:
    """Files per engine name in a SQLite database after a run (what ``auto`` chose), not timed."""
    if not url.startswith("sqlite:///"):
        return ""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT engine, COUNT(*) FROM image_files WHERE engine IS NOT NULL "
                            "GROUP BY engine ORDER BY COUNT(*) DESC, engine").fetchall()
    return ", ".join(f"{name} {count}" for name, count in rows)


def summary_of(status: dict[str, Any]) -> str:
    files = status["files"]
    by = ", ".join(f"{k} {v}" for k, v in sorted(files.get("by_status", {}).items()))
    return f"{files['total']} files ({by}), {len(status.get('jobs', []))} jobs"


# -- one figure on one tree -------------------------------------------------------------------------------
def plate_once(tree: Tree, url: str, folders: list[Path], n: int) -> tuple[dict[str, Step], str]:
    t = {"create": timed(url, "experiment", "create", "bench-plate", tree=tree),
         "add": total(*(timed(url, "experiment", "add", "bench-plate", str(f), tree=tree) for f in folders)),
         "init": timed(url, "bench-plate", "init", tree=tree),
         "submit": timed(url, "bench-plate", "submit", tree=tree),
         "status": timed(url, "bench-plate", "status", tree=tree)}
    t["total"] = total(t["create"], t["add"], t["init"], t["submit"])
    status = status_json(url, "bench-plate", tree)
    if status["files"]["ok"] != n:
        raise RuntimeError(f"{tree.label}: plate {summary_of(status)}, not {n} ok")
    return t, summary_of(status)


def corpus_once(tree: Tree, url: str, folder: Path, engine: str) -> tuple[dict[str, Step], str]:
    t = {"create": timed(url, "experiment", "create", "corpus", tree=tree),
         "add": timed(url, "experiment", "add", "corpus", str(folder), tree=tree),
         "init": timed(url, "corpus", "init", tree=tree),
         # exit 1 when some corpus files fail (it holds files Bio-Formats cannot read): not an error here
         "submit": timed(url, "corpus", "submit", "--engine", engine, tree=tree, check=False)}
    t["total"] = total(t["create"], t["add"], t["init"], t["submit"])
    status = status_json(url, "corpus", tree)
    if status["files"]["pending"]:
        raise RuntimeError(f"{tree.label}: corpus left files pending: {summary_of(status)}")
    return t, summary_of(status)


def scale_once(tree: Tree, url: str, folder: Path, n: int) -> tuple[dict[str, Step], str]:
    timed(url, "experiment", "create", "scale", tree=tree)
    t = {"add": timed(url, "experiment", "add", "scale", str(folder), tree=tree),
         "init": timed(url, "scale", "init", tree=tree),
         "status": timed(url, "scale", "status", tree=tree)}
    status = status_json(url, "scale", tree)
    if status["files"]["total"] != n:
        raise RuntimeError(f"{tree.label}: scale registered {summary_of(status)}, not {n}")
    return t, summary_of(status)


# -- the run ----------------------------------------------------------------------------------------------
Case = tuple[str, Callable[[Tree, Path], tuple[dict[str, Step], str]]]


def measure(trees: tuple[Tree, Tree], cases: list[Case], rounds: int, tmp: Path) -> tuple[
        dict[str, Figure], dict[str, dict[str, set[str]]]]:
    figures: dict[str, Figure] = {}
    outcomes: dict[str, dict[str, set[str]]] = {}
    for r in range(rounds):
        order = trees if r % 2 == 0 else trees[::-1]
        for case, once in cases:
            for tree in order:
                start = time.perf_counter()
                steps, outcome = once(tree, tmp)
                for step, seconds in steps.items():
                    figures.setdefault(f"{case}: {step}", Figure(f"{case}: {step}")).add(tree.label, seconds)
                outcomes.setdefault(case, {}).setdefault(tree.label, set()).add(outcome)
                print(f"round {r + 1} {case} {tree.label}: {time.perf_counter() - start:.1f} s "
                      f"({', '.join(f'{k} {v[0]:.2f}/{v[1]:.2f}' for k, v in steps.items())} wall/CPU s); "
                      f"{outcome}", file=sys.stderr)
    return figures, outcomes


def verdict(ratio: float) -> str:
    change = (ratio - 1) * 100
    if ratio > 1 + TOLERANCE:
        return f"✗ slower, {change:+.1f} %"
    if ratio < 1 - TOLERANCE:
        return f"✓ faster, {change:+.1f} %"
    return f"✓ {change:+.1f} %"


def render(trees: tuple[Tree, Tree], figures: dict[str, Figure], outcomes: dict[str, dict[str, set[str]]],
           meta: dict[str, str], command: str) -> str:
    base, head = trees[0].label, trees[1].label
    rows = []
    for name, fig in figures.items():
        ratios = fig.ratios(base, head)
        ratio = fig.median(head) / fig.median(base)
        label = f"**{name}**" if name.endswith(": total") else name
        cpu_b, cpu_h = fig.median(base, cpu=True), fig.median(head, cpu=True)
        rows.append([label, f"{fig.median(base):.2f} s", f"{fig.median(head):.2f} s",
                     " ".join(f"{x:.2f}" for x in ratios), f"{ratio:.3f}", verdict(ratio),
                     f"{cpu_b:.2f} / {cpu_h:.2f} s ({cpu_h / cpu_b:.2f})" if cpu_b else "-"])
    outcome_rows = [[case, "; ".join(sorted(by.get(base, set()))), "; ".join(sorted(by.get(head, set())))]
                    for case, by in outcomes.items()]
    return "\n".join([
        f"## Same behaviour: {base} against {head}, side by side (bench/compare_commits.py)",
        "",
        f"`{command}` — hand-run (not part of `make bench`, which keeps this section as it is). "
        f"Every `metaextract` command its own process, timed from outside (interpreter start, imports and "
        f"opening the database included), on fresh databases; the two trees interleaved, {meta['rounds']} "
        "rounds, each figure measured on one tree and at once on the other, the first alternating from round "
        "to round; both trees with the same venv (the console script imports the tree first on "
        f"`PYTHONPATH`: checked, {meta['imports']}), both byte-compiled first. Times are medians over the "
        f"rounds; *ratio* is {head} / {base} (below 1: {head} faster), per round and of the medians; "
        f"within ±{TOLERANCE:.0%} is ✓ (a fall beyond it is marked *faster*). *CPU*: user + system seconds of "
        "the command and the processes it waited for (its extraction processes), medians — what the code "
        f"costs, far less inflated by other work on the machine than the wall time. {meta['what']}",
        "",
        md_table(["figure", base, head, "ratio per round", "ratio of medians", "within 5 %?",
                  f"CPU {base} / {head} (ratio)"], rows),
        "",
        "What each tree left in the database (`EXP status --json`, every round):",
        "",
        md_table(["case", base, head], outcome_rows),
        "",
        f"Machine: {meta['machine']}. Load average (1, 5, 15 min) at the start {meta['load_start']}, at the "
        f"end {meta['load_end']} (other sessions were running on the same 2 cores: absolute times are "
        "inflated and noisy; the interleaving is what keeps the ratios fair).",
        "",
    ])


def write_section(path: Path, body: str, section: str = SECTION) -> None:
    """Put ``body`` between the ``section``'s markers in ``path`` (appended where it has none)."""
    import run as bench_run

    text = path.read_text() if path.is_file() else ""
    block = f"<!-- bench:{section} -->\n{body.rstrip()}\n<!-- /bench:{section} -->\n"
    match = next((m for m in bench_run._SECTION.finditer(text) if m["name"] == section), None)
    text = text[:match.start()] + block + text[match.end():].lstrip("\n") if match else \
        text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, metavar="REV", help="the other commit (the base)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree (default 5)")
    parser.add_argument("--plate-files", type=int, default=20_000, help="synthetic plate size (default 20,000)")
    parser.add_argument("--scale-files", type=int, default=100_000, help="hard links for scale (default 100,000)")
    parser.add_argument("--only", action="append", choices=["plate", "corpus", "scale"],
                        help="measure only this (repeatable)")
    parser.add_argument("--write", action="store_true", help=f"write the section into {ROOT / 'BENCHMARKS.md'}")
    args = parser.parse_args(argv)
    command = "python bench/compare_commits.py " + " ".join(argv if argv is not None else sys.argv[1:])

    load_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    trees = (tree_of(args.against), this_tree())
    imports = "; ".join(f"{t.label}: `{prepare(t)}`" for t in trees)
    only = set(args.only or ["plate", "corpus", "scale"])
    what = []
    with tempfile.TemporaryDirectory(prefix="metaextract-compare-") as tmp_name:
        tmp = Path(tmp_name)
        cases: list[Case] = []

        def fresh(kind: str, fn: Callable[[Tree, str], tuple[dict[str, Step], str]]) -> Callable[
                [Tree, Path], tuple[dict[str, Step], str]]:
            def once(tree: Tree, folder: Path) -> tuple[dict[str, Step], str]:
                with database(kind, folder) as url:
                    steps, outcome = fn(tree, url)
                    engines = engines_of(url)
                    return steps, outcome + (f"; by engine: {engines}" if engines else "")
            return once

        if "plate" in only:
            groups = write_plate(tmp / "plate", args.plate_files)
            n_plate = sum(len(v) for v in groups.values())
            folders = [tmp / "plate" / "MX-plate", tmp / "plate" / "CV-plate"]
            cases.append(("plate", fresh("sqlite", partial(plate_once, folders=folders, n=n_plate))))
            what.append(f"**plate**: {n_plate:,} synthetic TIFFs of `bench_plate.write_plate` (no `.HTD`), "
                        "SQLite; *total* = create + add (2 folders) + init + submit (`status` apart).")
        if "corpus" in only:
            for engine in ("bioformats", "auto"):
                cases.append((f"corpus --engine {engine}",
                              fresh("sqlite", partial(corpus_once, folder=corpus_root(), engine=engine))))
            what.append(f"**corpus**: `{corpus_root()}` registered whole (create, add, init) and "
                        "`submit --engine bioformats` / `--engine auto`, SQLite; *total* = all four commands.")
        if "scale" in only:
            links = make_links(tiny_tiff(tmp / "source" / "source.tif"), tmp / "links", args.scale_files)
            for kind in ["sqlite"] + (["postgresql"] if pg_reachable() else []):
                cases.append((f"scale {kind}",
                              fresh(kind, partial(scale_once, folder=links, n=args.scale_files))))
            what.append(f"**scale**: {args.scale_files:,} hard links (`bench_scale.make_links`, folders of 1,000) "
                        "`experiment add`, `init`, `status` on a fresh SQLite file and PostgreSQL database "
                        "(the database made and dropped outside the timing).")
        figures, outcomes = measure(trees, cases, args.rounds, tmp)
    load_end = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    meta = {"rounds": str(args.rounds), "imports": imports, "what": " ".join(what), "load_start": load_start,
            "load_end": load_end, "machine": f"{os.cpu_count()} cores, "
            f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}"}
    body = render(trees, figures, outcomes, meta, command)
    DATA.mkdir(exist_ok=True)
    raw = DATA / f"compare-{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}.json"
    raw.write_text(json.dumps({"trees": [t.label for t in trees], "meta": meta,
                               "figures": {k: {"wall": f.seconds, "cpu": f.cpu} for k, f in figures.items()},
                               "outcomes": {k: {t: sorted(v) for t, v in by.items()} for k, by in outcomes.items()}},
                              indent=1))
    print(body)
    print(f"raw timings: {raw}", file=sys.stderr)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", body)
        print(f"wrote the {SECTION} section of {ROOT / 'BENCHMARKS.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
