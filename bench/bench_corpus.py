"""The seed's way (one JVM per file, two at a time) against metaextract's pool of two warm JVMs: on the
real corpus (114 files, 23 formats), then on a synthetic MetaXpress plate (many files of one format, the
TissueMAPS case). Same files, same JRE and jar, in one run."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import metaextract
from common import Timing, corpus_files, corpus_root, md_table, seed_run
from metaextract.extraction.pool import ExtractionPool
from metaextract.ome import key_fields, normalise, ome_block

WORKERS = 2
REPEATS = 3


def _one_pass(files: list[Path], engine: str = "bioformats") -> tuple[float, float, list[metaextract.Result]]:
    """``extract_many`` with a fresh pool: (total seconds, seconds to the first result, results)."""
    start = time.perf_counter()
    first = 0.0
    results = []
    for result in metaextract.extract_many(files, engine=engine, workers=WORKERS):
        if not results:
            first = time.perf_counter() - start
        results.append(result)
    return time.perf_counter() - start, first, results


def _warm_pass(files: list[Path], engine: str = "bioformats") -> tuple[float, list[metaextract.Result]]:
    """Seconds for a second pass over ``files`` through a pool whose JVMs have already read them once."""
    with ExtractionPool(WORKERS, engine=engine) as pool:
        list(pool.map(files))
        start = time.perf_counter()
        results = list(pool.map(files))
        return time.perf_counter() - start, results


def run(quick: bool) -> str:
    return _corpus(quick) + "\n" + _plate(quick)


def _corpus(quick: bool) -> str:
    files = corpus_files()
    missing = [f for f in files if not f.exists()]
    if not files or missing:
        return f"## Corpus: the seed's way vs metaextract\n\nSkipped: corpus not found at {corpus_root()}.\n"
    if quick:
        files = files[::6]
    n = len(files)

    seed_s, seed_out = seed_run(files, WORKERS)
    totals, firsts = [], []
    results: list[metaextract.Result] = []
    for _ in range(REPEATS):
        total, first, results = _one_pass(files)
        totals.append(total)
        firsts.append(first)
    warm_s, warm_results = _warm_pass(files)
    auto_totals = [_one_pass(files, "auto")[0] for _ in range(REPEATS - 1)]
    total, _, auto_results = _one_pass(files, "auto")
    auto = Timing(tuple([*auto_totals, total]))
    auto_warm_s, _ = _warm_pass(files, "auto")

    me = Timing(tuple(totals))
    ttfr = Timing(tuple(firsts))
    by_path = {Path(r.path): r for r in results}
    statuses = Counter(r.status for r in results)
    seed_ok = {p: ome_block(out) for p, (code, out) in seed_out.items() if code == 0 and ome_block(out)}
    same = sum(1 for p, xml in seed_ok.items() if normalise(by_path[p].omexml or "") == normalise(xml or ""))
    rss = [r.rss_mb for r in results + warm_results if r.rss_mb is not None]
    in_worker = [r.seconds for r in warm_results]
    steady = (me.median - ttfr.median) / max(1, n - 1)
    auto_by_path = {Path(r.path): r for r in auto_results}
    native = sum(1 for r in auto_results if r.ok and not r.engine.startswith("bioformats"))
    no_jvm = sum(1 for r in auto_results if not r.engine.startswith("bioformats"))
    same_keys = sum(1 for p, xml in seed_ok.items() if auto_by_path[p].ok
                    and key_fields(auto_by_path[p].omexml or "") == key_fields(xml or ""))

    rows = [
        ["seed: `ImageInfo` subprocess per file, 2 at a time", "1", f"{seed_s:.2f} s",
         f"{seed_s / n * 1000:.0f} ms", "1.0x"],
        [f"metaextract `extract_many(workers={WORKERS})`, fresh pool", str(REPEATS), me.fmt(),
         f"{me.median / n * 1000:.0f} ms", f"**{seed_s / me.median:.1f}x**"],
        ["metaextract, warm pool (second pass)", "1", f"{warm_s:.2f} s", f"{warm_s / n * 1000:.1f} ms",
         f"**{seed_s / warm_s:.0f}x**"],
        ["metaextract, engine `auto` (native engines where proven), fresh pool", str(REPEATS), auto.fmt(),
         f"{auto.median / n * 1000:.0f} ms", f"**{seed_s / auto.median:.1f}x**"],
        ["metaextract, engine `auto`, warm pool (second pass)", "1", f"{auto_warm_s:.2f} s",
         f"{auto_warm_s / n * 1000:.1f} ms", f"**{seed_s / auto_warm_s:.0f}x**"],
    ]
    lines = [
        "## Corpus: the seed's way vs metaextract",
        "",
        f"{n} files{' (every 6th: `--quick`)' if quick else ''} from `{corpus_root()}`, read by "
        f"Bio-Formats 7.3.1 with the same bundled JRE (engine `bioformats`), then as `auto` reads them (native "
        f"engines where they have been shown to agree, Bio-Formats for the rest); {WORKERS} processes on each "
        "side. The seed runs `java -cp bioformats_package.jar loci.formats.tools.ImageInfo -omexml-only "
        "-nopix -novalid -nocore -no-upgrade -no-sas FILE` in the file's folder, one JVM per file. Wall time "
        "over all files; median (min–max) over repeats; per file = wall / files.",
        "",
        md_table(["way", "runs", "wall", "per file", "speed-up"], rows),
        "",
        md_table(["metaextract detail", "value"], [
            ["pool start: time to the first result (2 JVMs starting, first file read)", ttfr.fmt()],
            ["after the first result, per file (fresh pool)", f"{steady * 1000:.1f} ms"],
            ["warm, per file (wall / files, second pass)", f"{warm_s / n * 1000:.1f} ms"],
            ["warm, median in-worker time per file", f"{statistics.median(in_worker) * 1000:.1f} ms"],
            ["worker RSS after a file, median / max",
             f"{statistics.median(rss):.0f} / {max(rss):.0f} MB" if rss else "n/a"],
            ["statuses", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))],
            ["same OME-XML as the seed (normalised), of the files the seed read",
             f"{same} / {len(seed_ok)}"],
            ["engine `auto`: files read by a native engine", f"{native} / {n}"],
            ["engine `auto`: files answered without Bio-Formats (a document, or *unsupported* for a non-image)",
             f"{no_jvm} / {n}"],
            ["engine `auto`: same key fields as the seed, of the files the seed read",
             f"{same_keys} / {len(seed_ok)}"],
        ]),
        "",
        f"Seed: {seed_s / n:.3f} s/file; metaextract: {me.median / n:.3f} s/file end to end "
        f"({seed_s / me.median:.1f}x), {warm_s / n:.4f} s/file once warm ({seed_s / warm_s:.0f}x). "
        f"With `auto`: {auto.median / n:.3f} s/file end to end ({seed_s / auto.median:.1f}x), "
        f"{auto_warm_s / n:.4f} s/file warm ({seed_s / auto_warm_s:.0f}x). "
        "What bounds these figures: with `--engine bioformats`, two JVM starts (each mapping Bio-Formats' "
        "classes from the class-data archive) and each reader's first-use class loading, then Bio-Formats' "
        "own `setId`; a long-lived pool (a Dask worker, the workflow step over many batches) pays the starts "
        "once. With `auto`"
        + (", every file has a native answer, so no JVM starts at all: the time is two Python processes "
           "starting (~0.15 s), each engine's first use in each process (importing pydicom, tifffile and "
           "numpy, nd2; loading the OME schema) and reading the files' headers."
           if no_jvm == n else
           f", {n - no_jvm} files still go to Bio-Formats, and the JVM starts they need dominate."),
        "",
    ]
    return "\n".join(lines)


def _plate(quick: bool) -> str:
    """A MetaXpress plate: the seed on a sample of its files; metaextract on the sample and on all."""
    from metaextract.synth import write_metaxpress_plate

    wells, sample_n = (24, 10) if quick else (96, 40)
    with tempfile.TemporaryDirectory(prefix="bench-plate-") as tmp:
        plate = write_metaxpress_plate(Path(tmp), wells=wells, sites=4, channels=3, size=(256, 256), seed=1)
        sample = plate[:: max(1, len(plate) // sample_n)][:sample_n]
        seed_s, seed_out = seed_run(sample, WORKERS)
        small, small_first, small_res = _one_pass(sample)
        whole, whole_first, whole_res = _one_pass(plate)
    n, m = len(sample), len(plate)
    bad = sum(1 for r in small_res + whole_res if not r.ok)
    same = sum(1 for r in small_res
               if normalise(r.omexml or "") == normalise(ome_block(seed_out[Path(r.path)][1]) or "-"))
    seed_per = seed_s / n
    steady = (whole - whole_first) / max(1, m - 1)
    rows = [
        ["seed", f"{n} (sample)", f"{seed_s:.2f} s", f"{seed_per * 1000:.0f} ms", "1.0x"],
        ["metaextract, fresh pool", f"{n} (sample)", f"{small:.2f} s", f"{small / n * 1000:.0f} ms",
         f"{seed_s / small:.1f}x"],
        ["metaextract, fresh pool", f"{m} (whole plate)", f"{whole:.2f} s", f"{whole / m * 1000:.1f} ms",
         f"**{seed_per * m / whole:.0f}x** (vs seed {seed_per * m:.0f} s, from its per-file time)"],
        ["metaextract after the first result", f"{m - 1}", f"{whole - whole_first:.2f} s",
         f"{steady * 1000:.1f} ms", f"**{seed_per / steady:.0f}x**"],
    ]
    return "\n".join([
        "## A MetaXpress plate: the seed's way vs metaextract",
        "",
        f"`synth.write_metaxpress_plate`: {wells} wells × 4 sites × 3 channels = {m} MetaSeries TIFFs of "
        f"256×256 in one folder. The seed ran on {n} of them (one JVM each, 2 at a time: its cost is per "
        f"file, so the whole-plate seed figure is {m} × its per-file time, not a run); metaextract ran on "
        f"the same {n} and on all {m}, each with a fresh 2-process pool (time to first result: "
        f"{small_first:.2f} s and {whole_first:.2f} s).",
        "",
        md_table(["way", "files", "wall", "per file", "speed-up"], rows),
        "",
        f"Same OME-XML as the seed on {same} / {n} sampled files; {bad} results not ok. Seed {seed_per:.3f} "
        f"s/file; metaextract {whole / m:.4f} s/file over the plate, {steady:.4f} s/file once started.",
        "",
    ])
