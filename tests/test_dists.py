"""metaextract._dists answers as importlib.metadata does, for everything installed here."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

from metaextract import _dists


def test_versions_agree_for_every_installed_distribution() -> None:
    names = {d.metadata["Name"] for d in md.distributions()}
    assert len(names) > 50 and "tifffile" in names and "metaextract" in names
    for name in sorted(names):
        assert _dists.version(name) == md.version(name), name
    assert _dists.version("no-such-distribution-here") is None


def test_entry_points_agree_for_every_group() -> None:
    groups = {ep.group for d in md.distributions() for ep in d.entry_points}
    assert "console_scripts" in groups
    for group in sorted(groups):
        expected: dict[str, str] = {}
        for ep in md.entry_points(group=group):
            expected.setdefault(ep.name, ep.value)
        assert dict(_dists.entry_points(group) or []) == expected, group


def test_a_plugin_on_the_path_of_a_new_interpreter_is_found(tmp_path: Path) -> None:
    dist = tmp_path / "metaextract_probe_engine-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: metaextract-probe-engine\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[metaextract.engines]\nprobe = metaextract_probe_engine:factory\n")
    code = ("import sys; from metaextract import _dists, engines; "
            "print(_dists.entry_points('metaextract.engines'), _dists.version('metaextract-probe-engine'), "
            "'importlib.metadata' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert out == ["[('probe',", "'metaextract_probe_engine:factory')]", "1.0", "False"]


def test_a_zip_on_the_path_leaves_the_answer_to_importlib_metadata(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("metaextract_zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: metaextract-zipped\n"
                    "Version: 1.0\n")
    code = ("from metaextract import _dists; from metaextract.engines.base import package_version; "
            "print(_dists.version('tifffile'), package_version('metaextract-zipped'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(archive), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert out == ["None", "1.0"]  # not sure about the zip: importlib.metadata answers, and finds it there
