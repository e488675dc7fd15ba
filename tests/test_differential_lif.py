"""Differential testing of the lif engine against the live Bio-Formats engine on edited corpus LIFs (issue 20).

Variants are edited copies of the two corpus LIF files (in ``tmp_path``; the corpus is never written): the
XML header is changed along the axes LAS X files vary - image names (Latin-1 and beyond), images dropped
from the tree, stage positions and the flip/swap flags, dimension lengths and origins, element counts,
time stamps, dye names, detectors switched on, bit resolution, dimension units and pixel depth - and the
memory blocks are kept as they are. The lif engine agrees with Bio-Formats on the key fields only, so
``auto`` must leave every variant to Bio-Formats (asserted for each); by name (``engine="lif"``) each
variant it claims must give Bio-Formats' key fields, and what it declines is counted. The expected fields
are what the JVM says for the same bytes; nothing is copied from the engine.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from metaextract import engines
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise

from .test_engines_lif import _build, _split

SEED = 20
VARIANTS = 40
SOURCES = ("LeicaLASX_xz-plane_example.lif", "testdata_2channel_xz.lif")
NAMES = ("scan 1", "S\u00e9rie \u00e9t\u00e9", "", "a  b", "Position 12", "A/B", "x\u2013z")  # the last: not Latin-1
DYES = ("Leica/FITC", "DAPI", "Alexa 488", "Cy5", "Leica/TRITC", "", " ")


def _images(root: Any) -> list[Any]:
    """The ``Element`` of each image (its ``Data/Image``)."""
    return [image.getparent().getparent() for image in root.iter("Image")]


#: how often each kind of edit is made to a variant (to some of the places it applies to); the kinds that
#: make the engine decline (a detector switched on without a dye, a unit other than metres) are rarer
EDITS = {"drop": 0.3, "names": 0.4, "flags": 0.4, "stage": 0.4, "length": 0.4, "origin": 0.3, "elements": 0.2,
         "stamps": 0.3, "dye": 0.3, "resolution": 0.2, "detector": 0.06, "unit": 0.06}


def _edit(rng: random.Random, xml: str) -> tuple[str, list[str]]:
    """``xml`` with a random set of edits, and their names."""
    root = etree.fromstring(xml.encode("utf-8"))
    edits = [kind for kind, p in EDITS.items() if rng.random() < p]

    def some(items: list[Any]) -> list[Any]:
        return [item for item in items if rng.random() < 0.6]

    elements = _images(root)
    if "drop" in edits and len(elements) > 1:
        for element in rng.sample(elements, rng.randrange(1, len(elements))):
            element.getparent().remove(element)
        elements = _images(root)
    for element in some(elements) if "names" in edits else []:
        element.set("Name", rng.choice(NAMES))
    for setting in root.iter("ATLConfocalSettingDefinition"):
        if "flags" in edits:
            for flag in ("FlipX", "FlipY", "SwapXY"):
                setting.set(flag, rng.choice(("0", "1")))
        if "stage" in edits:
            setting.set("StagePosX", rng.choice(("0", "0.012345678901", "-0.5", "1e-3")))
            setting.set("StagePosY", rng.choice(("0.02", "-0.00731", "0.1")))
    dims = list(root.iter("DimensionDescription"))
    for dim in some(dims) if "length" in edits else []:
        dim.set("Length", rng.choice(("1.0e-004", "2.5e-005", "3.3333e-006", "7.5e+000", "-2.5e-005", "0.0e+000")))
        if dim.get("Length", "").startswith("-") and dim.get("DimID") != "4" and "negative length" not in edits:
            edits.append("negative length")
    for dim in some(dims) if "origin" in edits else []:
        dim.set("Origin", rng.choice(("0", "1.5e-005", "-3e-006")))
    for dim in some(dims) if "elements" in edits else []:
        if dim.get("DimID") != "1":
            dim.set("NumberOfElements", str(max(1, int(dim.get("NumberOfElements", "1")) // rng.choice((2, 3)))))
    for dim in some(dims) if "unit" in edits else []:
        if dim.get("Unit") == "m":
            dim.set("Unit", "um")
    for stamps in some(list(root.iter("TimeStampList"))) if "stamps" in edits else []:
        if stamps.text:
            shift = rng.choice((0x10000000, -0x1000000, 0x3B9ACA00))
            stamps.text = " ".join(f"{int(token, 16) + shift:x}" for token in stamps.text.split()) + " "
    for band in some(list(root.iter("MultiBand"))) if "dye" in edits else []:
        if band.get("DyeName"):
            band.set("DyeName", rng.choice(DYES))
    for detector in some(list(root.iter("Detector"))) if "detector" in edits else []:
        detector.set("IsActive", "1")
    for channel in some(list(root.iter("ChannelDescription"))) if "resolution" in edits else []:
        channel.set("Resolution", rng.choice(("12", "16")))
    return etree.tostring(root, encoding="unicode"), edits


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> list[tuple[Path, list[str]]]:
    folder = tmp_path_factory.mktemp("lif-variants")
    rng = random.Random(SEED)
    sources = {name: _split(corpus / "lif" / name) for name in SOURCES}
    made = []
    for index in range(VARIANTS):
        source = rng.choice(SOURCES)
        xml, rest = sources[source]
        edited, edits = _edit(rng, xml)
        path = folder / f"v{index:03d}.lif"
        path.write_bytes(_build(edited, rest))
        made.append((path, [source[:8], *edits]))
    return made


@pytest.mark.slow
def test_every_lif_claim_on_edited_files_gives_live_bioformats_key_fields(
        variants: list[tuple[Path, list[str]]]) -> None:
    counts: Counter[str] = Counter()
    declined: list[str] = []
    for path, edits in variants:
        theirs = extract_file(str(path), "bioformats")
        # key fields only: auto never answers with the lif engine's document
        assert engines.choose(str(path), read_head(str(path)), "auto").name == "bioformats", edits
        if theirs.status != "ok":
            counts["refused by Bio-Formats"] += 1
            continue
        counts["read"] += 1
        named = extract_file(str(path), "lif")
        if named.status != "ok":
            declined.append(f"{path.name} {edits}: {(named.error or '').rsplit('(', 1)[-1][:80]}")
            continue
        counts["claimed"] += 1
        assert key_fields(named.omexml or "") == key_fields(theirs.omexml or ""), (path.name, edits)
        counts["key fields agree"] += 1
        counts["negative X/Y length agrees"] += "negative length" in edits
        names = [c["name"] for im in key_fields(theirs.omexml or "")["images"] for c in im["channels"]]
        counts["blank dye agrees"] += any(name is not None and not name.strip() for name in names)
        counts["whole document agrees"] += normalise(named.omexml or "") == normalise(theirs.omexml or "")
    # the comparison has teeth: most variants are claimed and agree, some are declined
    assert counts["claimed"] > counts["read"] // 2 and declined, (counts, declined)
    # the rules for negative lengths and blank dye names were compared
    assert counts["negative X/Y length agrees"] > 0 and counts["blank dye agrees"] > 0, counts
    print(f"\n{VARIANTS} variants: {dict(counts)}; declined by the lif engine ({len(declined)}):\n"
          + "\n".join(declined))
