"""The comparison a differential test makes for each generated variant: ``auto`` against live Bio-Formats.

Each variant is read twice through :func:`~metaextract.extraction.pipeline.extract_file`, as a run reads
it: by the project's Bio-Formats engine (the live JVM) and in ``auto``. Wherever a native engine answers in
``auto``, its document must equal Bio-Formats' whole after :func:`~metaextract.ome.normalise`; a variant
``auto`` leaves to Bio-Formats is declined, and the native engine, asked by name, says why (its one-line
error), so a test can print and count the kinds it declines. Mismatches are gathered, not raised at the
first, so one run shows every kind that differs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from metaextract.extraction.pipeline import extract_file
from metaextract.ome import normalise
from metaextract.ome.diff import first_difference


@dataclass
class Tally:
    """What the comparison found over all variants."""

    answered: Counter[str] = field(default_factory=Counter)  #: variants each engine answered in ``auto``
    agree: int = 0  #: native answers equal to Bio-Formats' whole document
    declined: Counter[str] = field(default_factory=Counter)  #: the native engine's reason -> variants
    declined_labels: list[str] = field(default_factory=list)  #: the labels of the declined variants
    bioformats_fails: list[str] = field(default_factory=list)  #: variants Bio-Formats fails on, what auto did
    mismatches: list[str] = field(default_factory=list)  #: labels and first differences (must stay empty)

    def report(self, total: int) -> str:
        return (f"{total} variants: answered {dict(self.answered)}, {self.agree} agree with Bio-Formats whole, "
                f"{sum(self.declined.values())} declined, Bio-Formats fails on {len(self.bioformats_fails)}\n"
                "declined kinds:\n" + "\n".join(f"  {n} x {reason}" for reason, n in self.declined.most_common())
                + "".join(f"\nBio-Formats fails: {failure}" for failure in self.bioformats_fails))


def _reason(error: str | None, path: Path) -> str:
    """The reason in a native engine's one-line error: without the file's path and the engine's preamble,
    the values it quotes after ``: [`` or ``: (`` dropped (so variants of one kind count together)."""
    text = (error or "").replace(str(path), "*").replace(path.stem, "*")
    text = text.split("(use Bio-Formats): ", 1)[-1].removeprefix("*: ")
    for quote in (": [", ": ("):
        text = text.split(quote, 1)[0]
    return text[:100]


def compare_with_bioformats(variants: Iterable[tuple[Path, str]], native: str) -> Tally:
    """Read each ``(path, label)`` with Bio-Formats and in ``auto``; ``native`` is the engine under test."""
    tally = Tally()
    for path, label in variants:
        theirs = extract_file(str(path), "bioformats")
        ours = extract_file(str(path), "auto")
        name = (ours.engine or "").split(" ", 1)[0]
        tally.answered[name] += 1
        why = "" if name != "bioformats" else _reason(extract_file(str(path), native).error, path)
        if theirs.status != "ok":  # a native answer here is more than Bio-Formats gives, never less
            tally.bioformats_fails.append(f"{label} (auto: {name} {ours.status}, {native}: {why or 'answers'}): "
                                          f"{_reason(theirs.error, path)}")
            continue
        if name == "bioformats":
            tally.declined[why] += 1
            tally.declined_labels.append(label)
            continue
        if ours.status != "ok":
            tally.mismatches.append(f"{label}: {name} failed where Bio-Formats reads it: {ours.error}")
            continue
        difference = first_difference(ours.omexml or "", theirs.omexml or "")
        if difference is not None or normalise(ours.omexml or "") != normalise(theirs.omexml or ""):
            tally.mismatches.append(f"{path.name} {label}: {difference}")
            continue
        tally.agree += 1
    return tally
