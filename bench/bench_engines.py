"""Milliseconds per file for each engine on each format: the corpus (by folder) and synthetic plates.

Every engine runs in this process on the files it reads: Bio-Formats with its JVM already warm (each
file read once before timing), each native engine on the files it claims in ``auto``, each rescue engine
(which claims nothing and answers in ``auto`` only where Bio-Formats fails) on every file it recognises.
The time is the median over repeats of one ``extract`` call, claim included for the native engines.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import plots
from common import corpus_files, corpus_root, md_table
from metaextract import engines, synth
from metaextract.engines.base import ExtractionError
from metaextract.engines.rescue import rescuers
from metaextract.extraction.pipeline import read_head
from plots import Spread

TITLE = "Engines: ms per file"


def _time(fn: object, path: str, repeats: int) -> float | None:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            fn(path)  # type: ignore[operator]
        except ExtractionError:
            return None
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _native(path: str) -> str | None:
    chosen = engines.choose(path, read_head(path), "auto")
    return None if chosen.name == "bioformats" else chosen.name


def _claim_and_extract(name: str) -> object:
    engine = engines.get(name)

    def run(path: str) -> str:
        if engine.claim(path, read_head(path)) <= 0:
            raise ExtractionError("not claimed")
        return engine.extract(path)

    return run


def _measure(groups: dict[str, list[Path]], repeats: int) -> tuple[list[list[object]], list[tuple[str, Spread]]]:
    """The table rows, and per (format, engine) the (min, median, max) ms over the format's files."""
    bioformats = engines.get("bioformats")
    rows = []
    bars: list[tuple[str, Spread]] = []
    for label, files in groups.items():
        per_engine: dict[str, list[float]] = defaultdict(list)
        for path in map(str, files):
            with contextlib.suppress(ExtractionError):
                bioformats.extract(path)  # warm: the first read of a format loads its classes
            bf = _time(bioformats.extract, path, repeats)
            if bf is not None:
                per_engine["bioformats"].append(bf)
            native = _native(path)
            if native is not None:
                ms = _time(_claim_and_extract(native), path, repeats)
                if ms is not None:
                    per_engine[native].append(ms)
            others = [engines.get(name) for name in engines.available() if name != "bioformats"]
            for rescuer in rescuers(others, path, read_head(path)):
                rescue_ms = _time(rescuer.rescue, path, repeats)
                if rescue_ms is not None:
                    per_engine[f"{rescuer.name} (rescue)"].append(rescue_ms)
        bf_ms = statistics.mean(per_engine["bioformats"]) if per_engine.get("bioformats") else None
        for name in sorted(per_engine):
            values = per_engine[name]
            mean = statistics.mean(values)
            ratio = bf_ms / mean if name != "bioformats" and bf_ms else None
            speedup = "-" if ratio is None else f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2f}x"
            rows.append([label, name, len(values), f"{mean:.2f}", f"{max(values):.2f}", speedup])
            bars.append((f"{label}, {name}", (min(values), statistics.median(values), max(values))))
    return rows, bars


def run(quick: bool) -> str:
    repeats = 2 if quick else 5
    groups: dict[str, list[Path]] = defaultdict(list)
    root = corpus_root()
    for path in corpus_files(root):
        groups[path.relative_to(root).parts[0]].append(path)
    if quick:
        groups = {k: v[:3] for k, v in groups.items()}
    with tempfile.TemporaryDirectory() as tmp:
        wells = 4 if quick else 24
        groups["synthetic MetaXpress plate"] = synth.write_metaxpress_plate(Path(tmp) / "mx", wells=wells,
                                                                            size=(256, 256))
        groups["synthetic CellVoyager plate"] = synth.write_cellvoyager_plate(Path(tmp) / "cv", wells=wells,
                                                                              size=(256, 256))
        rows, bars = _measure(dict(sorted(groups.items())), repeats)
    table = md_table(["format (folder)", "engine", "files", "ms/file (mean)", "ms/file (max)",
                      "vs Bio-Formats"], rows)
    plot = plots.ms_per_file(bars, "engines_ms_per_file", "ms per file, per format and engine",
                             f"the files of each format (each file: median of {repeats} reads)")
    return (
        f"## {TITLE}\n\n"
        f"In one process, median of {repeats} reads per file; Bio-Formats warm (each file read once before "
        "timing); a native engine only on the files it claims in `auto` (claim + extract); a rescue engine "
        "(used in `auto` only where Bio-Formats fails) on every file it recognises. Files an engine fails on "
        "are left out of its row.\n\n" + table + "\n\n" + plot + "\n"
    )


if __name__ == "__main__":
    print(run(quick=True))
