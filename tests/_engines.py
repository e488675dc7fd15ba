"""Checks every native engine's tests make the same way."""

from __future__ import annotations

import os
import re
import textwrap
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from metaextract.engines.base import ExtractionError
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise, validate
from metaextract.ome.diff import first_difference


def reads_as_the_reference(engine: Any, corpus: Path, reference: Path, rel: str, claim: int) -> str:
    """Claim and read the corpus file ``rel``: the claim is ``claim`` and the document equals Bio-Formats'
    reference (key fields and, normalised, as a whole) and validates. Returns the document."""
    path = corpus / rel
    assert engine.claim(str(path), read_head(path)) == claim
    xml = str(engine.extract(str(path)))
    expected = (reference / f"{rel}.xml").read_text(encoding="utf-8")
    assert key_fields(xml) == key_fields(expected)
    assert normalise(xml) == normalise(expected)
    assert validate(xml, remember=False) == (True, None)
    return xml


def damaged_copy_is_contained(engine: Any, path: Path, raw: bytes) -> None:
    """Write ``raw`` (a damaged copy) to ``path``: the engine claims it only if it reads it; it reads it into
    a valid document or refuses it with a one-line :class:`ExtractionError`, never anything else."""
    path.write_bytes(raw)
    score = engine.claim(str(path), raw[:4096])
    try:
        xml = engine.extract(str(path))
    except ExtractionError as exc:
        assert "\n" not in str(exc)
        assert score == 0
    else:
        assert validate(xml, remember=False)[0]


def install_plugin_engine(site: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put an engine module ``metaextract_{name}_engine`` (``source``, with a ``factory``) in ``site``, with
    a ``metaextract.engines`` entry point, on the ``PYTHONPATH`` every new interpreter of the test inherits."""
    site.mkdir(exist_ok=True)
    module = f"metaextract_{name}_engine"
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[metaextract.engines]\n{name} = {module}:factory\n")
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(site) + (os.pathsep + old if old else ""))
    return site


def differential(engine: str, variants: Iterable[tuple[Path, str]],
                 declinable: Iterable[str]) -> tuple[Counter[str], list[str]]:
    """Read each ``(path, label)`` variant in ``auto`` and with the live Bio-Formats engine (issue 20).

    Wherever ``auto`` answers natively, the answer must be ``engine``'s and its document Bio-Formats' whole
    (after normalisation; the first difference in the failure). Where Bio-Formats fails, ``auto`` must not
    answer natively either. Every variant left to Bio-Formats is asked of ``engine`` by name: its reason must
    match one of the ``declinable`` patterns (the kinds the engine is known to leave to Bio-Formats), so a
    kind declined by mistake fails too. Returns the counts ("agree", "declined", "refused by Bio-Formats")
    and, for each declined variant, its label and the engine's reason.
    """
    kinds = [re.compile(pattern) for pattern in declinable]
    counts: Counter[str] = Counter()
    declined: list[str] = []
    for path, label in variants:
        theirs = extract_file(str(path), "bioformats")
        ours = extract_file(str(path), "auto")
        name = (ours.engine or "").split(" ", 1)[0]
        assert name in (engine, "bioformats"), (label, ours.engine)
        if theirs.status != "ok":
            counts["refused by Bio-Formats"] += 1
            assert name == "bioformats", (label, theirs.error)
            continue
        if name == "bioformats":
            reason = (extract_file(str(path), engine).error or "").split("(use Bio-Formats): ")[-1]
            assert any(kind.search(reason) for kind in kinds), f"{label}: declined for {reason!r}"
            counts["declined"] += 1
            declined.append(f"{label}: {reason}")
            continue
        assert ours.status == "ok", (label, ours.error)
        difference = first_difference(ours.omexml or "", theirs.omexml or "")
        assert difference is None, f"{label}: {difference}"
        assert normalise(ours.omexml or "") == normalise(theirs.omexml or ""), label
        counts["agree"] += 1
    return counts, declined
