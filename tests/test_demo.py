"""``make demo``: the whole step on a synthetic plate, written by the project itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaextract import demo


def test_demo_runs_the_whole_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo-data"
    assert demo.main(["--out", str(out), "--wells", "1", "--sites", "1", "--channels", "2",
                      "--workers", "1"]) == 0
    text = capsys.readouterr().out
    for command in ("experiment create demo", "experiment add demo", "demo init", "demo run --job 1",
                    "demo run --job 2", "demo status"):
        assert f"$ metaextract {command}" in text
    assert "demo passed: 3 of 3 image files ok" in text  # 2 channels as TIFFs + 1 OME-TIFF
    assert (out / "metaextract.db").is_file()
