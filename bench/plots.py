"""PNG figures for BENCHMARKS.md, written to ``bench/figures/`` and linked from the Markdown.

Every figure carries its own provenance in a footer: the machine (cores, memory), the date, the command
that produced it, and what the marks mean (median, with bars from min to max over the repeated runs).
matplotlib is optional (the ``bench`` extra); without it the sections say so and keep their tables.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "figures"
#: (min, median, max) of one measured quantity.
Spread = tuple[float, float, float]


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def command() -> str:
    """The command line this process runs (``python bench/run.py --quick --only plate``, ``make bench``)."""
    argv = [Path(sys.argv[0]).name if sys.argv else "run.py", *sys.argv[1:]]
    line = " ".join(["python", f"bench/{argv[0]}", *argv[1:]])
    if os.environ.get("METAEXTRACT_BENCH_FULL", "") not in ("", "0"):
        return f"METAEXTRACT_BENCH_FULL=1 {line}"
    return "make bench" if line == "python bench/run.py" else line


def footer(runs: str) -> str:
    import psutil

    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mem = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores, {mem:.1f} GiB; {when}; load {load}; `{command()}`\n"
            f"marks: median; bars: min-max over {runs}")


def _figure(title: str, runs: str, height: float = 5.0, width: float = 8.0) -> tuple[object, object]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.set_title(title, fontsize=11)
    fig.text(0.01, 0.01, footer(runs), fontsize=7, color="0.35", va="bottom")
    fig.subplots_adjust(bottom=0.2)
    return fig, ax


def _save(fig: object, name: str) -> str:
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{name}.png"
    fig.savefig(path)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return f"bench/figures/{path.name}"


def rate_vs_files(series: dict[str, Sequence[tuple[int, Spread]]], name: str, title: str, runs: str) -> str:
    """Files per second against the number of files (log-log), one line per series; Markdown image."""
    if not available():
        return "_(plot skipped: matplotlib is not installed — `pip install -e '.[bench]'`)_"
    fig, ax = _figure(title, runs)
    for label, points in series.items():
        pts = sorted(points)
        xs = [n for n, _ in pts]
        med = [s[1] for _, s in pts]
        lo = [s[1] - s[0] for _, s in pts]
        hi = [s[2] - s[1] for _, s in pts]
        ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=3, label=label)  # type: ignore[attr-defined]
    ax.set_xscale("log")  # type: ignore[attr-defined]
    ax.set_yscale("log")  # type: ignore[attr-defined]
    ax.set_xlabel("files")  # type: ignore[attr-defined]
    ax.set_ylabel("files per second")  # type: ignore[attr-defined]
    ax.grid(True, which="both", alpha=0.3)  # type: ignore[attr-defined]
    ax.legend(fontsize=8)  # type: ignore[attr-defined]
    return f"![{title}]({_save(fig, name)})"


def ms_per_file(bars: Sequence[tuple[str, Spread]], name: str, title: str, runs: str) -> str:
    """Horizontal bars of milliseconds per file (log scale), one per (format, engine); Markdown image."""
    if not available():
        return "_(plot skipped: matplotlib is not installed — `pip install -e '.[bench]'`)_"
    fig, ax = _figure(title, runs, height=max(5.0, 1.5 + 0.22 * len(bars)), width=8.0 if len(bars) < 15 else 10.0)
    labels = [label for label, _ in bars]
    med = [s[1] for _, s in bars]
    err = [[s[1] - s[0] for _, s in bars], [s[2] - s[1] for _, s in bars]]
    ys = range(len(bars))
    ax.barh(list(ys), med, xerr=err, capsize=3, color="tab:blue")  # type: ignore[attr-defined]
    ax.set_yticks(list(ys), labels, fontsize=8)  # type: ignore[attr-defined]
    ax.invert_yaxis()  # type: ignore[attr-defined]
    ax.set_xscale("log")  # type: ignore[attr-defined]
    ax.set_xlabel("ms per file")  # type: ignore[attr-defined]
    ax.grid(True, axis="x", which="both", alpha=0.3)  # type: ignore[attr-defined]
    for y, m in zip(ys, med, strict=True):
        ax.text(m, y, f" {m:.3g}", va="center", fontsize=7)  # type: ignore[attr-defined]
    fig.subplots_adjust(left=0.45 if len(bars) < 15 else 0.33, bottom=min(0.2, 0.9 / fig.get_figheight()),  # type: ignore[attr-defined]
                        top=1 - min(0.1, 0.6 / fig.get_figheight()))  # type: ignore[attr-defined]
    return f"![{title}]({_save(fig, name)})"
