"""``make demo``: the whole step on two plates with their vendor files, written by the project itself, ending
with their plate maps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metaextract import demo


def _plate_maps(text: str) -> dict[str, list[str]]:
    """Each fileset's block of ``EXP plate``'s output, by its kind and plate: ``{"metaxpress-htd demo": lines}``."""
    maps: dict[str, list[str]] = {}
    block: list[str] = []
    for line in text.split("$ metaextract demo plate\n", 1)[1].splitlines():
        head = re.fullmatch(r"fileset \d+ (\S+): .+ \(plate (\S+)\)", line)
        if head is not None:
            block = maps.setdefault(f"{head.group(1)} {head.group(2)}", [])
        elif line.startswith("  "):
            block.append(" ".join(line.split()))
    return maps


def test_demo_runs_the_whole_step_and_prints_the_plate_maps(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo-data"
    assert demo.main(["--out", str(out), "--wells", "2", "--sites", "3", "--channels", "2", "--batch-size", "4",
                      "--workers", "1"]) == 0
    text = capsys.readouterr().out
    for command in ("experiment create demo", "experiment add demo", "demo init", "demo run --job 1",
                    "demo run --job 2", "demo status", "demo plate"):
        assert f"$ metaextract {command}" in text
    # 2 wells x 3 sites x 2 channels = 12 TIFFs per plate; the .HTD plate's are one fileset job, the
    # CellVoyager ones in per-file batches of 4 beside its fileset job: 1 + 3 + 1 jobs
    assert "demo: 5 run jobs" in text
    assert "demo passed: 24 of 24 image files ok" in text
    assert (out / "plates" / "imagexpress" / "demo.HTD").is_file()
    assert (out / "plates" / "cellvoyager" / "MeasurementData.mlf").is_file()
    maps = _plate_maps(text)
    assert set(maps) == {"metaxpress-htd demo", "cellvoyager demo-cv"}
    for lines in maps.values():
        assert lines[0] == ("2 wells x 3 fields x 2 channels x 1 Z x 1 T: 12 of 12 planes; "
                            "files 12 ok, 0 failed, 0 pending")
        assert lines[1].split() == ["well", "fields", "chan", "Z", "T", "planes", "ok", "failed", "pending"]
        assert lines[2:4] == ["A01 3 2 1 1 6 6 0 0", "A02 3 2 1 1 6 6 0 0"]
    assert (out / "metaextract.db").is_file()
