"""Damaged copies of the corpus files each native engine reads: cut short, or with bytes changed in the
headers the engines parse. Every claim answers (no exception, no hang), and every extraction by the engine
that claims the original ends in a recorded result: a document, or a one-line ExtractionError naming the
file — never a timeout, and never a bare Python exception (IndexError, KeyError, struct.error …) leaking out
of an engine. The variants are seeded, so a failure here is reproducible.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from metaextract import engines
from metaextract.extraction.pool import ExtractionPool

#: corpus file -> (engine that claims it, files copied unchanged beside each damaged copy)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cellomics-c01/iamac01file.c01": ("cellomics", ()),
    "svs/small.svs": ("svs", ()),
    "olympus-oib/test.oib": ("oib", ()),
    "zeiss-zvi/BlockSize4096.zvi": ("zvi", ()),
    "dicom/boxes_0.dcm": ("pydicom", ()),
    "dicom/seg_image_sm_dots_tiled_full.dcm": ("pydicom", ()),
    "dicom/sm_annotations.dcm": ("pydicom", ()),
    "ics/testim.ics": ("ics", ("ics/testim.ids",)),
    "ics/testim_c.ics": ("ics", ()),
    "czi/S3_1Pos_2Mosaic_T1_Z1_CH1.czi": ("czi", ()),
    "czi/LSM880_AiryScan.czi": ("czi", ()),
    "czi/CD_s_1_t_3_c_2_z_5.czi": ("czi", ()),
    "ome-tiff-spec-samples/single-channel.ome.tif": ("ome-xml", ()),
    "ome-tiff-spec-samples/18x24y5z5t2c8b-text.ome.tiff": ("ome-xml", ()),
    "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/"
    "HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0_metadata.txt": (
        "micromanager", ("micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/"
                         "HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0.ome.tif",)),
    "micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff.index": ("sidecar", ()),
    "yokogawa-cv7000/MeasurementDetail.mrf": ("sidecar", ()),
    "dv/toxo.dv": ("dv", ()),
    "lif/testdata_2channel_xz.lif": ("lif", ()),
    "andor-sif/raman1.sif": ("sif", ()),
    "spe/spestack_test.spe": ("spe", ()),
}
VARIANTS = 14
#: what ``extract_file`` records when an engine raised something other than an ExtractionError
LEAKED = re.compile(r"(IndexError|KeyError|TypeError|AttributeError|ValueError|ZeroDivisionError|error|"
                    r"UnicodeDecodeError|UnicodeEncodeError|RecursionError|OverflowError|AssertionError|"
                    r"NameError|UnboundLocalError|StopIteration|NotImplementedError|LookupError): ")


def _damaged(data: bytes, rnd: random.Random) -> Iterator[tuple[str, bytes]]:
    n = len(data)
    for cut in (16, 200, n // 3, 2 * n // 3, n - 1):
        if 0 < cut < n:
            yield f"cut{cut}", data[:cut]
    head = min(n, 8192)
    for i in range(VARIANTS - 5):
        raw = bytearray(data)
        span = head if i < 6 else n  # most changes where the headers are, some anywhere
        for _ in range(8):
            at = rnd.randrange(span)
            raw[at] = rnd.choice((0, 0xFF, rnd.randrange(256), raw[at] ^ 0x80))
        yield f"flip{i}", bytes(raw)


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def variants(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, Path]]]:
    root = tmp_path_factory.mktemp("fuzz-engines")
    out: dict[str, list[tuple[str, Path]]] = {}
    for k, (rel, (_, siblings)) in enumerate(sorted(CASES.items())):
        rnd = random.Random(f"{rel}:{k}")
        for label, data in _damaged((corpus / rel).read_bytes(), rnd):
            folder = root / f"{k:02d}-{label}"
            folder.mkdir()
            for sib in siblings:
                shutil.copy(corpus / sib, folder / Path(sib).name)
            path = folder / Path(rel).name
            path.write_bytes(data)
            out.setdefault(rel, []).append((label, path))
    return out


def test_the_cases_are_what_auto_routes(corpus: Path) -> None:
    # an engine that gives the key fields only (lif) reads its cases by name; auto leaves them to
    # Bio-Formats (issue 20); the czi engine answers these whole
    for rel, (name, _) in CASES.items():
        path = str(corpus / rel)
        with open(path, "rb") as fh:
            head = fh.read(engines.HEAD_BYTES)
        assert engines.get(name).claim(path, head) > 0, rel
        whole = engines.whole_document_in_auto(engines.get(name))
        assert engines.choose(path, head, "auto").name == (name if whole else "bioformats"), rel


def test_every_claim_answers_on_damaged_files(variants: dict[str, list[tuple[str, Path]]]) -> None:
    for rel, items in variants.items():
        for label, path in items:
            with open(path, "rb") as fh:
                head = fh.read(engines.HEAD_BYTES)
            for name in engines.available():
                if name == "bioformats":
                    continue
                with _deadline(10):
                    score = engines.get(name).claim(str(path), head)
                assert isinstance(score, int), (rel, label, name)


def test_every_damaged_file_gets_a_clean_result(variants: dict[str, list[tuple[str, Path]]]) -> None:
    by_engine: dict[str, list[Path]] = {}
    for rel, items in variants.items():
        by_engine.setdefault(CASES[rel][0], []).extend(path for _, path in items)
    seen = 0
    for name, paths in sorted(by_engine.items()):
        with ExtractionPool(2, engine=name, timeout=30) as pool:
            for result in pool.map([str(p) for p in paths]):
                seen += 1
                assert result.status in ("ok", "failed", "unsupported"), (name, result.path, result.error)
                if result.status != "ok":
                    assert result.error and result.error.startswith(result.path) and "\n" not in result.error
                    assert not LEAKED.match(result.error[len(result.path) + 2:]), (name, result.error)
    assert seen == sum(len(items) for items in variants.values()) >= len(CASES) * 10
