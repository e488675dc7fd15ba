"""One-off: how many corpus files ``auto`` answers natively, whether each native answer equals Bio-Formats'
stored document whole (normalised), and ms per file per engine (in this process, second of two reads).

Usage: ``PYTHONPATH=src python bench/native_share.py [CORPUS [REFERENCE]]``. Prints a Markdown table.
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from metaextract.extraction.pipeline import extract_file
from metaextract.ome import normalise


def main(corpus: Path, reference: Path) -> None:
    with open(corpus / "MANIFEST.tsv", newline="") as fh:
        files = [row["local_path"] for row in csv.DictReader(fh, delimiter="\t")]
    ms: dict[str, list[float]] = defaultdict(list)
    whole: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    for rel in files:
        path = str(corpus / rel)
        extract_file(path, "auto")  # warm: imports, JVM start where Bio-Formats answers
        start = time.perf_counter()
        result = extract_file(path, "auto")
        elapsed = (time.perf_counter() - start) * 1000
        name = (result.engine or "none").split(" ", 1)[0]
        count[name] += 1
        ms[name].append(elapsed)
        ref = reference / f"{rel}.xml"
        if result.omexml and ref.exists() and normalise(result.omexml) == normalise(ref.read_text("utf-8")):
            whole[name] += 1
    native = sum(n for name, n in count.items() if name != "bioformats")
    print(f"{native} of {len(files)} corpus files answered without Bio-Formats\n")
    print("| engine | files | equal to the reference, whole | ms per file (median) |")
    print("|---|---|---|---|")
    for name in sorted(count):
        print(f"| `{name}` | {count[name]} | {whole[name]} | {statistics.median(ms[name]):.1f} |")


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2] / "shared"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "corpus",
         Path(sys.argv[2]) if len(sys.argv) > 2 else root / "reference" / "bioformats-7.3.1")
