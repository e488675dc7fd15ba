"""How many corpus files ``auto`` answers without Bio-Formats, per engine, whether each native answer equals
Bio-Formats' stored document whole (normalised), and ms per file per engine — for two source trees, before
and after (issue #20's record).

Each tree runs in a child process of its own (the same venv; ``PYTHONPATH`` picks the tree, as in
``bench/compare_commits.py``), reading every corpus file twice in that process and timing the second read:
an **in-process** figure (no CLI, no extraction processes), labelled as such.

Usage::

    PYTHONPATH=src python bench/native_share.py [--against REV] [--write]

``--write`` puts the section into BENCHMARKS.md between ``<!-- bench:native-share -->`` markers (a hand-run
record: ``make bench`` keeps it).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
SHARED = BENCH.parents[1] / "shared"
SECTION = "native-share"


def measure(corpus: Path, reference: Path) -> dict[str, dict[str, Any]]:
    """Per engine: files answered, how many equal the reference whole, ms per file (second read)."""
    try:
        from metaextract.extraction.pipeline import extract_file
    except ImportError:  # a tree from before the restructure (545f348)
        from metaextract._extract import extract_file  # type: ignore[import-not-found,no-redef]
    from metaextract.ome import normalise

    with open(corpus / "MANIFEST.tsv", newline="") as fh:
        files = [row["local_path"] for row in csv.DictReader(fh, delimiter="\t")]
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"files": 0, "whole": 0, "ms": []})
    for rel in files:
        path = str(corpus / rel)
        extract_file(path, "auto")  # warm: imports, JVM start where Bio-Formats answers
        start = time.perf_counter()
        result = extract_file(path, "auto")
        elapsed = (time.perf_counter() - start) * 1000
        name = (result.engine or "none").split(" ", 1)[0]
        row = out[name]
        row["files"] += 1
        row["ms"].append(elapsed)
        ref = reference / f"{rel}.xml"
        if result.omexml and ref.exists() and normalise(result.omexml) == normalise(ref.read_text("utf-8")):
            row["whole"] += 1
    return dict(out)


def render(labels: tuple[str, str], runs: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]],
           total: int) -> str:
    def native(run: dict[str, dict[str, Any]]) -> int:
        return sum(r["files"] for name, r in run.items() if name != "bioformats")

    def cell(run: dict[str, dict[str, Any]], name: str) -> str:
        r = run.get(name)
        if r is None:
            return "— | — | —"
        return f"{r['files']} | {r['whole']} | {statistics.median(r['ms']):.1f}"

    before, after = runs
    lines = [
        "## Native share of the corpus in `auto`, before and after (issue #20)",
        "",
        f"`PYTHONPATH=src python bench/native_share.py --against {labels[0]} --write` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): the {total} files of `../shared/corpus` "
        "read by `auto` in one process per tree, each file twice, the second read timed (**in-process**, "
        "ms per file, median per engine; no CLI, no extraction processes). *Whole* counts the answers "
        "equal to the stored Bio-Formats 7.3.1 document after normalisation (whitespace, UUIDs); the seed "
        "could not read the 5 DICOMs of one folder in place and the sidecars have no document, so those "
        "count 0 on both sides.",
        "",
        f"**Answered without Bio-Formats: {native(before)} of {total} at {labels[0]}, {native(after)} of "
        f"{total} at {labels[1]}** — at {labels[0]} the CZI, LIF, ND2 and LSM answers agreed on the key "
        "fields only (`auto` gave less than Bio-Formats); at " + labels[1] + " every native answer in `auto` "
        "is Bio-Formats' whole document, and CZI is complete.",
        "",
        f"| engine | {labels[0]}: files | whole | ms/file | {labels[1]}: files | whole | ms/file |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sorted(set(before) | set(after)):
        lines.append(f"| `{name}` | {cell(before, name)} | {cell(after, name)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="545f348", help="the 'before' commit (default 545f348)")
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    parser.add_argument("--reference", type=Path, default=SHARED / "reference" / "bioformats-7.3.1")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.corpus, args.reference)))
        return 0
    sys.path.insert(0, str(BENCH))
    from compare_commits import prepare, this_tree, tree_of, write_section
    from run import OUTPUT

    trees = (tree_of(args.against), this_tree())
    runs = []
    for tree in trees:
        prepare(tree)
        out = subprocess.run([sys.executable, __file__, "--child", "--corpus", str(args.corpus),
                              "--reference", str(args.reference)], env=tree.env(), capture_output=True,
                             text=True, check=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    total = sum(r["files"] for r in runs[1].values())
    body = render((trees[0].label, trees[1].label), (runs[0], runs[1]), total)
    print(body)
    if args.write:
        write_section(OUTPUT, body, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
