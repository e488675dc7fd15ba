"""``experiment add`` says what it could not read (issue 17, item 5): an unreadable folder and paths longer than
PATH_MAX are counted, named with their reason, and the rest is registered; nothing is dropped without a word."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from metaextract.experiment import add_folder, create_experiment
from metaextract.store import Store

from .conftest import ROOT, cli

PATH_MAX = os.pathconf("/", "PC_PATH_MAX")


def _tif(path: Path | str) -> None:
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))


def _too_deep(root: Path) -> str:
    """A chain of folders under ``root/deep`` whose full path passes PATH_MAX, with a TIFF at the bottom; made
    through directory descriptors (a path that long cannot be named whole), holding a copy of ``root/a.tif``.
    Returns the bottom's relative name."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    rel = []
    try:
        for i in range(PATH_MAX // 200 + 2):
            name = f"{i:03d}" + "d" * 197
            os.mkdir(name if i else "deep", dir_fd=fd)
            nxt = os.open(name if i else "deep", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
            rel.append(name if i else "deep")
        out = os.open("bottom.tif", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(out, "wb") as fh:
            fh.write((root / "a.tif").read_bytes())
    finally:
        os.close(fd)
    return "/".join([*rel, "bottom.tif"])


def test_paths_past_path_max_are_counted_and_named(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "plate"
    data.mkdir()
    _tif(data / "a.tif")
    bottom = _too_deep(data)
    assert len(str(data / bottom)) > PATH_MAX  # the premise: the file cannot be reached by its path
    create_experiment(store, "e")
    reg = add_folder(store, "e", data)
    assert reg.image_files == 1  # a.tif: what can be read is registered
    assert reg.skipped == 1, reg.skipped_paths  # the first folder past PATH_MAX, with everything under it
    path, reason = reg.skipped_paths[0]
    assert path.startswith(str(data / "deep")) and len(path) >= PATH_MAX
    assert reason == os.strerror(36)  # ENAMETOOLONG: "File name too long"


def test_cli_warns_on_stderr_with_count_and_reasons(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "plate"
    data.mkdir()
    _tif(data / "a.tif")
    _too_deep(data)
    cli(db_url, "experiment", "create", "e")
    res = cli(db_url, "experiment", "add", "e", str(data))  # exit 0: a.tif was registered
    assert "1 image files" in res.stdout  # type: ignore[attr-defined]
    err = res.stderr.splitlines()  # type: ignore[attr-defined]
    assert err[0].startswith("warning: 1 path could not be read")
    assert err[1].startswith("  File name too long: " + str(data / "deep"))


def _drop_dac(cmd: list[str]) -> list[str]:
    """``cmd`` run as root without the capabilities that bypass permission bits (the tests run as root, for
    whom chmod 000 means nothing otherwise): the honest way to meet a folder its user cannot read."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]


def test_unreadable_folder_is_counted_named_and_the_rest_registered(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "plate"
    for sub in ("ok1", "locked", "ok2"):
        (data / sub).mkdir(parents=True)
        _tif(data / sub / "x.tif")
        _tif(data / sub / "y.tif")
    cli(db_url, "experiment", "create", "e")
    (data / "locked").chmod(0)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        res = subprocess.run(_drop_dac([sys.executable, "-m", "metaextract", "--db", db_url, "-v", "experiment",
                                        "add", "e", str(data)]),
                             capture_output=True, text=True, env=env, timeout=120, check=False)
    finally:
        (data / "locked").chmod(0o755)
    assert res.returncode == 0, res.stderr
    assert "4 image files" in res.stdout  # ok1 and ok2
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert lines[0].startswith("warning: 1 path could not be read"), res.stderr
    assert lines[1] == f"  Permission denied: {data / 'locked'}"
