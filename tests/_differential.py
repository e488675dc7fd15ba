"""The comparison a differential test makes for each generated variant: ``auto`` against live Bio-Formats.

Each variant is read twice through :func:`~metaextract.extraction.pipeline.extract_file`, as a run reads
it: by the project's Bio-Formats engine (the live JVM) and in ``auto``. Wherever a native engine answers in
``auto``, its document must equal Bio-Formats' whole after :func:`~metaextract.ome.normalise`; a variant
``auto`` leaves to Bio-Formats is declined, and the native engine, asked by name, says why (its one-line
error), so a test can print and count the kinds it declines. Mismatches are gathered, not raised at the
first, so one run shows every kind that differs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    invalid: int = 0  #: agreeing answers that are not valid OME (Bio-Formats' own document is not either)

    def report(self, total: int) -> str:
        return (f"{total} variants: answered {dict(self.answered)}, {self.agree} agree with Bio-Formats whole, "
                f"{sum(self.declined.values())} declined, Bio-Formats fails on {len(self.bioformats_fails)}, "
                f"{self.invalid} invalid as Bio-Formats' own\n"
                "declined kinds:\n" + "\n".join(f"  {n} x {reason}" for reason, n in self.declined.most_common())
                + "".join(f"\nBio-Formats fails: {failure}" for failure in self.bioformats_fails)
                + "".join(f"\n  declined: {label}" for label in self.declined_labels))

    def assert_proven(self, total: int, native: str, floor: int, *, reasons: Iterable[str] = (),
                      known: Iterable[str] | None = None, declinable: Iterable[str] | None = None) -> None:
        """A differential test's verdict on ``total`` variants: no native answer differs from Bio-Formats'
        whole document; where Bio-Formats fails, ``auto`` left the variant to it (no native answer is more
        than the seed's failure); at least ``floor`` variants agree and every native answer is ``native``'s;
        each of ``reasons`` (kinds the test drew to be declined) is among the declines and failures; with
        ``known``, every declined kind is one of those; with ``declinable`` (patterns), every declined kind
        matches one of them."""
        report = self.report(total)
        print("\n" + report)
        assert self.mismatches == [], "\n".join(self.mismatches)
        for failure in self.bioformats_fails:
            assert "(auto: bioformats " in failure, failure
        assert self.agree >= floor and self.answered[native] == self.agree, report
        assert set(self.answered) <= {native, "bioformats"}, report
        seen = " | ".join([*self.declined, *self.bioformats_fails])
        for reason in reasons:
            assert reason in seen, f"{reason!r} was drawn but not declined: {seen}"
        if known is not None:
            assert set(self.declined) <= set(known), f"declined for an unknown reason: {dict(self.declined)}"
        if declinable is not None:
            kinds = [re.compile(pattern) for pattern in declinable]
            odd = [reason for reason in self.declined if not any(kind.search(reason) for kind in kinds)]
            assert not odd, f"declined for an unknown reason: {odd}"


def _reason(error: str | None, path: Path) -> str:
    """The reason in a native engine's one-line error: without the file's path and the engine's preamble,
    the values it quotes after ``: [`` or ``: (`` dropped (so variants of one kind count together)."""
    text = (error or "").replace(str(path), "*").replace(path.stem, "*")
    text = text.split("(use Bio-Formats): ", 1)[-1].removeprefix("*: ")
    for quote in (": [", ": ("):
        text = text.split(quote, 1)[0]
    return text[:100]


def compare_with_bioformats(variants: Iterable[tuple[Path, Any]], native: str,
                            why: Callable[[Path, Any], str] | None = None, *, stored_alike: bool = False) -> Tally:
    """Read each ``(path, label)`` with Bio-Formats and in ``auto``; ``native`` is the engine under test. A
    label is text or a list of what was drawn; ``why(path, label)``, when given, names the kind of a variant
    ``auto`` left to Bio-Formats (default: the native engine's own error, asked by name). With
    ``stored_alike`` an agreeing answer must also be stored as Bio-Formats' is: the same validity and
    validation error (a document Bio-Formats prints invalid, e.g. with IDs the schema refuses, stays so)."""
    tally = Tally()
    for path, drawn in variants:
        label = drawn if isinstance(drawn, str) else "; ".join(map(str, drawn))
        theirs = extract_file(str(path), "bioformats")
        ours = extract_file(str(path), "auto")
        name = (ours.engine or "").split(" ", 1)[0]
        tally.answered[name] += 1
        why_not = ("" if name != "bioformats" else why(path, drawn) if why is not None
                   else _reason(extract_file(str(path), native).error, path))
        if theirs.status != "ok":  # a native answer here is more than Bio-Formats gives, never less
            tally.bioformats_fails.append(f"{label} (auto: {name} {ours.status}, {native}: {why_not or 'answers'}): "
                                          f"{_reason(theirs.error, path)}")
            continue
        if name == "bioformats":
            tally.declined[why_not] += 1
            tally.declined_labels.append(label)
            continue
        if ours.status != "ok":
            tally.mismatches.append(f"{label}: {name} failed where Bio-Formats reads it: {ours.error}")
            continue
        difference = first_difference(ours.omexml or "", theirs.omexml or "")
        if difference is not None or normalise(ours.omexml or "") != normalise(theirs.omexml or ""):
            tally.mismatches.append(f"{path.name} {label}: {difference}")
            continue
        if stored_alike and (ours.valid, ours.validation_error) != (theirs.valid, theirs.validation_error):
            tally.mismatches.append(f"{path.name} {label}: stored otherwise: valid {ours.valid} "
                                    f"({ours.validation_error}) != {theirs.valid} ({theirs.validation_error})")
            continue
        tally.invalid += not theirs.valid
        tally.agree += 1
    return tally


def named_kind(native: str, path: Path, kinds: Mapping[str, str],
               answered: Callable[[str], str] = lambda _: "answered by name") -> str:
    """The kind of a variant ``auto`` left to Bio-Formats, from the ``native`` engine's own answer by name:
    ``kinds`` maps a part of its error to the kind; an answer it gives by name is ``answered(xml)``."""
    from metaextract import engines
    from metaextract.engines.base import ExtractionError

    try:
        message = answered(engines.get(native).extract(str(path)))
    except ExtractionError as exc:
        message = str(exc)
    return next((kind for part, kind in kinds.items() if part in message), message)


def engine_reason(native: str) -> Callable[[Path, Any], str]:
    """A ``why`` for :func:`compare_with_bioformats`: the ``native`` engine's whole reason, asked by name
    (not shortened to its kind), for tests whose declinable kinds are patterns."""
    def why(path: Path, _: Any) -> str:
        return (extract_file(str(path), native).error or "").split("(use Bio-Formats): ")[-1]
    return why
