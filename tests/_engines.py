"""Checks every native engine's tests make the same way."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from metaextract.engines.base import ExtractionError
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, validate


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
