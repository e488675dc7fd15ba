"""The registry imports an engine only when a file could be its kind, from what the engine declares."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from metaextract import engines, synth


@pytest.mark.parametrize("name", sorted(engines._BUILTIN))
def test_the_registry_says_what_each_engine_declares(name: str) -> None:
    """The endings and first bytes the registry filters by are the engine's own ``suffixes``/``magic``."""
    _, _, suffixes, magic = engines._BUILTIN[name]
    eng = engines.get(name)
    assert (getattr(eng, "suffixes", None), getattr(eng, "magic", None)) == (suffixes, magic)
    assert eng.name == name


def test_a_plate_of_tiffs_loads_no_engine_it_cannot_need(tmp_path: Path) -> None:
    """Choosing the engine for a TIFF imports none of the engines that declare other endings or bytes."""
    tif = synth.write_cellvoyager_plate(tmp_path, wells=1, sites=1, channels=1, seed=3)[0]
    code = (
        "import json, sys\n"
        "from metaextract.extraction.pipeline import extract_file\n"
        f"r = extract_file({str(tif)!r})\n"
        "assert r.ok and r.engine.startswith('tifffile'), r\n"
        "print(json.dumps([m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('metaextract.engines.')]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    lazy = {module for module, _, suffixes, magic in engines._BUILTIN.values() if suffixes or magic}
    assert "tiff" in loaded
    assert not loaded & lazy, loaded & lazy
