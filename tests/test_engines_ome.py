"""The OME engine (standalone OME-XML, OME-TIFF and OME-TIFF sets) against Bio-Formats 7.3.1's reference.

Sets are written here with tifffile (every file with the whole XML, BinaryOnly files with a
``.companion.ome``, an ``.ome.xml`` or a master OME-TIFF) and compared with live Bio-Formats (``slow``).

Bio-Formats' printer (``XMLTools.indentXML``) trims every text between two tags with Java's ``String.trim()``,
mixed text inside an XMLAnnotation too: ``ome-xml-reference/xmlannotation-body-space.ome.xml``'s
"There should be a <b>space</b>" is printed "There should be a<b>space</b>", and so by the engine
(tests/test_differential_ome.py draws such text against the live engine).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from lxml import etree

from metaextract import engines
from metaextract.engines.base import ExtractionError
from metaextract.engines.ometiff.files import OmeEngine, omexml_document
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise, validate

OME_TIFF = ("ome-tiff/FOV7_HV110_P0500510000.ome.tiff", "ome-tiff/grey.ome.tiff", "ome-tiff/ome.tiff",
            "ome-tiff/rgb.ome.tiff")
BODY_SPACE = "ome-xml-reference/xmlannotation-body-space.ome.xml"
#: Files Bio-Formats' OME-TIFF reader refuses, so its TIFF reader answers (plain-TIFF documents): a BinaryOnly
#: file whose metadata file is not in the folder, and the split spec samples, whose embedded XML is not
#: well-formed (``<BinaryOnly ...>`` is never closed)
PLAIN_FALLBACK = (
    "ome-tiff/plane.ome.tiff",
    *(f"ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-split-Z{z}.ome.tiff" for z in range(1, 6)),
)
#: (the older-schema spec samples are read after an upgrade: tests/test_engines_ome_upgrade.py)
DECLINED = (
    "micromanager-mmstack/Cos7_A647_WF1/Cos7_A647_WF1_MMStack_Pos0.ome.tif",  # Micro-Manager's reader
)
NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def _claimed(corpus: Path) -> list[str]:
    return [*OME_TIFF, *PLAIN_FALLBACK,
            *sorted(str(p.relative_to(corpus)) for p in (corpus / "ome-xml-reference").glob("*.ome.xml"))]


def _claim(path: Path) -> int:
    return OmeEngine().claim(str(path), read_head(str(path)))


def test_every_readable_ome_xml_file_is_claimed(corpus: Path) -> None:
    files = _claimed(corpus)
    assert len(files) == 4 + 6 + 32
    for rel in files:
        assert _claim(corpus / rel) > 0, rel


@pytest.mark.parametrize("kind", ["ome-xml", "ome-tiff"])
def test_claimed_corpus_files_agree_with_the_reference(kind: str, corpus: Path, reference: Path) -> None:
    engine = OmeEngine()
    for rel in _claimed(corpus):
        if ("tif" in rel) != (kind == "ome-tiff"):
            continue
        xml = engine.extract(str(corpus / rel))
        expected = (reference / f"{rel}.xml").read_text("utf-8")
        assert key_fields(xml) == key_fields(expected), rel
        assert normalise(xml) == normalise(expected), rel
        ok, why = validate(xml)
        assert ok, f"{rel}: {why}"


def test_annotation_text_is_trimmed_as_bioformats_trims_it(corpus: Path, reference: Path) -> None:
    rel = BODY_SPACE
    xml = OmeEngine().extract(str(corpus / rel))
    expected = (reference / f"{rel}.xml").read_text("utf-8")
    source = (corpus / rel).read_text("utf-8")
    assert "There should be a <b>space</b>" in source
    assert "There should be a<b>space</b>" in expected  # Bio-Formats trims the text beside the element
    assert "There should be a<b>space</b>" in xml and "<i>between</i>the bold" in xml
    assert normalise(xml) == normalise(expected)


@pytest.mark.parametrize("rel", DECLINED)
def test_declines_what_it_does_not_prove(rel: str, corpus: Path) -> None:
    assert _claim(corpus / rel) == 0


def test_the_split_spec_samples_carry_malformed_xml(corpus: Path, reference: Path) -> None:
    folder = corpus / "ome-tiff-spec-samples" / "meta-companion-set"
    for rel in PLAIN_FALLBACK[1:]:
        with tifffile.TiffFile(corpus / rel) as tf:
            text = tf.pages.first.description
        assert "<BinaryOnly" in text and "</BinaryOnly>" not in text and "/>" not in text
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(text.encode())
        # so Bio-Formats' TIFF reader answered, for this one file: its name, its description, no TiffData
        expected = (reference / f"{rel}.xml").read_text("utf-8")
        fields = key_fields(expected)["images"][0]
        assert fields["name"] == Path(rel).name and fields["pixels"]["size_z"] == 1
        assert "<MetadataOnly/>" in expected and "TiffData" not in expected
    # the 2011-06 companion is read by the OME-XML reader (its name is not *.companion.ome) after an XSLT
    # upgrade, which this engine reproduces (tests/test_engines_ome_upgrade.py)
    companion = folder / "18x24y5z1t1c8b-text-companion.ome"
    assert engines.choose(str(companion), read_head(str(companion)), "auto").name == "ome-xml"


def test_binary_only_without_its_metadata_file_is_a_plain_tiff(corpus: Path, reference: Path, tmp_path: Path) -> None:
    rel = "ome-tiff/plane.ome.tiff"
    with tifffile.TiffFile(corpus / rel) as tf:
        assert "BinaryOnly" in tf.pages.first.description
    assert not (corpus / "ome-tiff" / "multi-channel-4D-series.companion.ome").exists()
    xml = OmeEngine().extract(str(corpus / rel))
    assert normalise(xml) == normalise((reference / f"{rel}.xml").read_text("utf-8"))
    assert "<MetadataOnly/>" in xml and "&lt;BinaryOnly" in xml


# -- sets of files, written here ------------------------------------------------------------------------
def _uuid(n: int) -> str:
    return f"urn:uuid:{n:08x}-0000-4000-8000-000000000000"


def _set_meta(names: list[str], *, per_file: int, split: str, order: str, dtype: str, own: int,
              extra: str = "") -> str:
    sizes = {"Z": 1, "C": 1, "T": 1}
    sizes[split] = len(names)
    if per_file > 1:
        assert order[2] != split
        sizes[order[2]] = per_file
    channels = "".join(f'<Channel ID="Channel:0:{c}" Name="ch{c}" SamplesPerPixel="1"/>' for c in range(sizes["C"]))
    tds = "".join(f'<TiffData First{split}="{i}" IFD="0" PlaneCount="{per_file}"><UUID FileName="{name}">'
                  f"{_uuid(i + 1)}</UUID></TiffData>" for i, name in enumerate(names))
    return (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{_uuid(own)}" Creator="test">'
            f'<Image ID="Image:0" Name="set"><AcquisitionDate>2020-01-02T03:04:05</AcquisitionDate>'
            f'<Pixels ID="Pixels:0" DimensionOrder="{order}" Type="{dtype}" SizeX="8" SizeY="6" SizeZ="{sizes["Z"]}" '
            f'SizeC="{sizes["C"]}" SizeT="{sizes["T"]}" PhysicalSizeX="0.25">{channels}{tds}</Pixels></Image>'
            f"{extra}</OME>")


def _binary_only(metadata_file: str, own: int) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{_uuid(own)}">'
            f'<BinaryOnly MetadataFile="{metadata_file}" UUID="{_uuid(0)}"/></OME>')


def _write_tiff(path: Path, xml: str, planes: int = 1, dtype: str = "uint8", byteorder: str = "<") -> None:
    data = np.arange(planes * 48, dtype=dtype).reshape(planes, 6, 8)
    tifffile.imwrite(path, data, description=xml, metadata=None, byteorder=byteorder)


def _write_set(folder: Path, layout: str, *, files: int = 3, per_file: int = 1, split: str = "Z",
               order: str = "XYZCT", dtype: str = "uint8", byteorder: str = "<") -> list[Path]:
    """A set of ``files`` OME-TIFFs: each with the whole set's XML (``full``), or BinaryOnly pointing to a
    ``.companion.ome`` (``companion``), to an ``.ome.xml`` (``xml``) or to the first TIFF (``master``)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"set_{split.lower()}{i}.ome.tif" for i in range(files)]
    meta = {"companion": "set.companion.ome", "xml": "set.ome.xml", "master": names[0]}.get(layout)
    kwargs = {"per_file": per_file, "split": split, "order": order, "dtype": dtype}
    for i, name in enumerate(names):
        if layout == "full" or (layout == "master" and i == 0):
            xml = _set_meta(names, own=i + 1, **kwargs)  # type: ignore[arg-type]
        else:
            xml = _binary_only(str(meta), i + 1)
        _write_tiff(folder / name, xml, per_file, {"float": "float32"}.get(dtype, dtype), byteorder)
    paths = [folder / name for name in names]
    if layout in ("companion", "xml"):
        (folder / str(meta)).write_text(_set_meta(names, own=0, **kwargs), "utf-8")  # type: ignore[arg-type]
        paths.append(folder / str(meta))
    return paths


SETS = {
    "full-z": {"layout": "full"},
    "companion-c-be16": {"layout": "companion", "split": "C", "per_file": 2, "dtype": "uint16", "byteorder": ">"},
    "master-t": {"layout": "master", "split": "T", "order": "XYCZT"},
    "ome-xml-metadata": {"layout": "xml", "files": 2, "split": "Z", "order": "XYCTZ", "dtype": "float"},
}


@pytest.mark.parametrize("case", sorted(SETS))
def test_every_file_of_a_present_set_describes_the_whole_set(case: str, tmp_path: Path) -> None:
    paths = _write_set(tmp_path, **SETS[case])  # type: ignore[arg-type]
    docs = []
    for path in paths:
        if path.suffix == ".xml":
            assert _claim(path) == 0  # a standalone OME-XML document whose TiffData name other files
            continue
        assert _claim(path) > 0, path.name
        xml = OmeEngine().extract(str(path))
        assert validate(xml)[0]
        pixels = key_fields(xml)["images"][0]["pixels"]
        assert pixels["size_z"] * pixels["size_c"] * pixels["size_t"] == 3 * max(1, SETS[case].get("per_file", 1)) \
            or case == "ome-xml-metadata"
        assert all(f'FileName="{p.name}"' in xml for p in paths if p.name.endswith(".ome.tif"))
        assert f'BigEndian="{"true" if SETS[case].get("byteorder") == ">" else "false"}"' in xml
        docs.append(normalise(xml))
        # in auto, with the sanity checks: each TIFF's own planes are compared with its own IFDs only
        result = extract_file(str(path), "auto")
        assert result.status == "ok" and result.engine == "ome-xml", result.error
        assert normalise(result.omexml or "") == docs[-1]
    if SETS[case]["layout"] != "full":  # one metadata document for the whole set: the same output for each file
        assert all(doc == docs[0] for doc in docs)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SETS))
def test_sets_agree_with_live_bioformats(case: str, tmp_path: Path) -> None:
    from metaextract.engines.bioformats import BioFormatsEngine

    paths = _write_set(tmp_path, **SETS[case])  # type: ignore[arg-type]
    bioformats = BioFormatsEngine()
    for path in paths:
        if path.suffix == ".xml":
            continue
        ours, theirs = OmeEngine().extract(str(path)), bioformats.extract(str(path))
        assert key_fields(ours) == key_fields(theirs), path.name
        assert normalise(ours) == normalise(theirs), path.name


def _plain_variants(folder: Path) -> list[Path]:
    folder.mkdir()
    lone = folder / "lone.ome.tif"
    data = np.arange(2 * 48, dtype=np.uint16).reshape(2, 6, 8)
    tifffile.imwrite(lone, data, description=_binary_only("gone.companion.ome", 1), metadata=None,
                     resolution=(4.0, 4.0), resolutionunit="CENTIMETER")
    broken = folder / "broken.ome.tif"
    xml = _set_meta([broken.name], per_file=1, split="Z", order="XYZCT", dtype="uint8", own=1)
    tifffile.imwrite(broken, np.zeros((6, 8), np.uint8), description=xml.replace("</Image>", "", 1), metadata=None)
    return [lone, broken]


def test_ome_tiffs_the_ome_tiff_reader_refuses_are_plain_tiffs(tmp_path: Path) -> None:
    for path in _plain_variants(tmp_path / "p"):
        assert _claim(path) > 0, path.name
        fields = key_fields(OmeEngine().extract(str(path)))["images"][0]
        assert fields["name"] == path.name


@pytest.mark.slow
def test_plain_fallbacks_agree_with_live_bioformats(tmp_path: Path) -> None:
    from metaextract.engines.bioformats import BioFormatsEngine

    bioformats = BioFormatsEngine()
    for path in _plain_variants(tmp_path / "p"):
        ours, theirs = OmeEngine().extract(str(path)), bioformats.extract(str(path))
        assert normalise(ours) == normalise(theirs), path.name


def test_a_set_with_a_missing_file_is_declined(tmp_path: Path) -> None:
    paths = _write_set(tmp_path, "full")
    paths[1].unlink()
    for path in (paths[0], paths[2]):
        assert _claim(path) == 0
        with pytest.raises(ExtractionError, match="missing"):
            OmeEngine().extract(str(path))


def test_a_companion_without_its_tiffs_is_declined(tmp_path: Path) -> None:
    paths = _write_set(tmp_path, "companion")
    for path in paths[:-1]:
        path.unlink()
    assert _claim(paths[-1]) == 0


def test_a_set_whose_files_disagree_is_declined(tmp_path: Path) -> None:
    paths = _write_set(tmp_path / "shape", "full")
    tifffile.imwrite(paths[2], np.zeros((1, 7, 8), np.uint8), description=_binary_only("x", 3), metadata=None)
    assert _claim(paths[0]) == 0  # its planes are 8 x 7, not 8 x 6
    paths = _write_set(tmp_path / "ifds", "companion", per_file=2, split="C")
    tifffile.imwrite(paths[1], np.zeros((1, 6, 8), np.uint8), description=_binary_only("set.companion.ome", 2),
                     metadata=None)
    assert _claim(paths[0]) == 0  # the companion maps two IFDs of the file that holds one
    paths = _write_set(tmp_path / "uuid", "companion")
    text = paths[-1].read_text("utf-8").replace(_uuid(2), _uuid(1))
    paths[-1].write_text(text, "utf-8")  # one UUID for two files: Bio-Formats fails ("Inconsistent UUID filenames")
    assert all(_claim(path) == 0 for path in paths)


def test_a_metadata_file_that_is_binary_only_itself_is_declined(tmp_path: Path) -> None:
    paths = _write_set(tmp_path, "master")
    _write_tiff(paths[0], _binary_only(paths[1].name, 1))
    assert all(_claim(path) == 0 for path in paths)


@pytest.mark.parametrize("ref", ["../set.companion.ome", "/etc/set.companion.ome", "sub/set.companion.ome"])
def test_references_out_of_the_folder_are_refused(ref: str, tmp_path: Path) -> None:
    path = tmp_path / "a.ome.tif"
    _write_tiff(path, _binary_only(ref, 1))
    assert _claim(path) == 0
    with pytest.raises(ExtractionError, match="refused"):
        OmeEngine().extract(str(path))
    result = extract_file(str(path), "ome-xml")
    assert result.status == "failed" and "refused" in (result.error or "")
    names = ["a.ome.tif", ref]
    path = tmp_path / "b.ome.tif"
    _write_tiff(path, _set_meta(names, per_file=1, split="Z", order="XYZCT", dtype="uint8", own=1))
    with pytest.raises(ExtractionError, match="refused"):
        OmeEngine().extract(str(path))


def test_a_linked_file_of_the_set_outside_the_folder_is_refused(tmp_path: Path) -> None:
    paths = _write_set(tmp_path / "set", "companion")
    outside = tmp_path / "elsewhere.companion.ome"
    paths[-1].rename(outside)
    paths[-1].symlink_to(outside)
    with pytest.raises(ExtractionError, match="refused"):
        OmeEngine().extract(str(paths[0]))


def test_a_truncated_file_of_a_set_is_caught(tmp_path: Path) -> None:
    paths = _write_set(tmp_path, "companion", per_file=2, split="C", dtype="uint16")
    for cut in (paths[0], paths[1]):
        data = cut.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
    assert _claim(paths[2]) == 0 and _claim(paths[-1]) == 0  # a file of the set lost IFDs
    for path in paths[:2]:
        if _claim(path) > 0:  # whichever engine answers, the damage is reported
            result = extract_file(str(path), "ome-xml")
            assert result.status == "failed" and ("truncated" in (result.error or "")
                                                  or "damaged" in (result.error or ""))


def test_ome_tiff_written_by_tifffile(tmp_path: Path) -> None:
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 2, 16, 8), np.uint16), ome=True,
                     metadata={"axes": "ZCYX", "PhysicalSizeX": 0.5, "Channel": {"Name": ["g", "r"]}})
    xml = OmeEngine().extract(str(path))
    fields = key_fields(xml)["images"][0]
    assert fields["pixels"]["size_z"] == 3 and fields["pixels"]["size_c"] == 2
    assert fields["pixels"]["physical_size_x"] == [0.5, "µm"]
    assert [c["name"] for c in fields["channels"]] == ["g", "r"]
    assert 'Interleaved="false"' in xml and 'SignificantBits="16"' in xml and "<LightPath/>" in xml
    assert validate(xml)[0]


def test_forged_plane_size_is_declined(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "f.ome.tif", np.zeros((4, 4), np.uint8), ome=True)
    with tifffile.TiffFile(tmp_path / "f.ome.tif") as tf:
        text = tf.pages.first.description
    forged = tmp_path / "forged.ome.tif"
    tifffile.imwrite(forged, np.zeros((4, 4), np.uint8), metadata=None,
                     description=text.replace('SizeX="4"', 'SizeX="1048576"').replace("f.ome.tif", "forged.ome.tif"))
    assert _claim(forged) == 0


def test_truncated_ome_tiff_is_caught(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "ome-tiff/grey.ome.tiff").read_bytes()
    cut = tmp_path / "grey.ome.tiff"
    cut.write_bytes(data[: len(data) // 2])
    if _claim(cut) > 0:  # whichever engine answers, the damage is reported
        result = extract_file(str(cut), "ome-xml")
        assert result.status == "failed" and "truncated" in (result.error or "")


DTD = '<!DOCTYPE OME [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def test_entities_in_an_ome_tiff_are_refused(tmp_path: Path) -> None:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>{DTD}<OME xmlns="{NS}"><Image ID="Image:0" Name="&x;">'
           '<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="4" SizeY="4" SizeZ="1" SizeC="1" '
           'SizeT="1"><Channel ID="Channel:0:0"/><TiffData/></Pixels></Image></OME>')
    path = tmp_path / "xxe.ome.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), description=xml, metadata=None)
    assert _claim(path) == 0
    with pytest.raises(ExtractionError, match="refused"):
        OmeEngine().extract(str(path))
    result = extract_file(str(path), "ome-xml")
    assert result.status == "failed" and "DTD" in (result.error or "")


def test_entities_in_an_ome_xml_file_are_refused(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "ome-xml-reference/single-image.ome.xml").read_text("utf-8")
    path = tmp_path / "lol.ome.xml"
    path.write_text(text.replace("?>", '?><!DOCTYPE OME [<!ENTITY l "lol">]>', 1).replace(
        'Name="6x6x1x8-swatch.tif"', 'Name="&l;"'), "utf-8")
    assert _claim(path) == 0
    with pytest.raises(ExtractionError):
        OmeEngine().extract(str(path))  # the DOCTYPE pushes <OME out of the first 64 bytes: not claimed
    with pytest.raises(ExtractionError, match="refused"):
        omexml_document(path.read_bytes())


def test_a_rewritten_image_id_that_is_referred_to_is_declined(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "ome-xml-reference/hcs.ome.xml").read_text("utf-8")
    path = tmp_path / "hcs.ome.xml"
    path.write_text(text.replace('"Image:0"', '"Image:7"'), "utf-8")
    assert _claim(path) == 0


def test_ome_xml_is_known_by_its_first_64_bytes(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "ome-xml-reference/single-image.ome.xml").read_text("utf-8")
    late = tmp_path / "late.ome.xml"
    late.write_text(text.replace("?>", "?><!--" + "x" * 80 + "-->", 1), "utf-8")
    assert _claim(late) == 0  # Bio-Formats' OME-XML reader would not know it either
    renamed = tmp_path / "plain.xml"
    shutil.copy(corpus / "ome-xml-reference/single-image.ome.xml", renamed)
    assert _claim(renamed) == 0  # other readers take some .xml files by name


def test_other_schema_versions_are_declined(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "ome-xml-reference/single-image.ome.xml").read_text("utf-8")
    path = tmp_path / "old.ome.xml"
    path.write_text(text.replace("2016-06", "2015-01"), "utf-8")
    assert _claim(path) == 0


def test_auto_routes_the_claimed_files_to_this_engine(corpus: Path) -> None:
    # each is Bio-Formats' whole document (the body-space XMLAnnotation's text trimmed as Bio-Formats trims it)
    for rel in _claimed(corpus):
        path = str(corpus / rel)
        assert engines.choose(path, read_head(path), "auto").name == "ome-xml", rel


def _own_uuid_tiff(folder: Path, channel: str) -> Path:
    """A one-plane OME-TIFF whose TiffData names its plane by the document's own UUID, without FileName."""
    uuid = "urn:uuid:11111111-2222-4333-8000-444444444444"
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{uuid}"><Image ID="Image:0">'
           '<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="4" SizeY="3" SizeZ="1" SizeC="1" '
           f'SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"{channel}/><TiffData IFD="0" PlaneCount="1">'
           f"<UUID>{uuid}</UUID></TiffData></Pixels></Image></OME>")
    folder.mkdir()
    path = folder / "own.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 4), np.uint8), description=xml, metadata=None)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("channel", "readable"), [("", False), (' Name=""', True), (' Name="DAPI"', True)])
def test_an_own_uuid_without_file_name_needs_a_named_first_channel(channel: str, readable: bool,
                                                                    tmp_path: Path) -> None:
    """OMETiffReader reads the first TiffData's FileName when the first channel has no Name (an OMERO-export
    check) and fails on a missing one: the engine declines exactly that, and agrees with Bio-Formats otherwise."""
    path = _own_uuid_tiff(tmp_path / "set", channel)
    theirs = extract_file(str(path), "bioformats")
    assert (theirs.status == "ok") is readable, theirs.error
    assert (_claim(path) > 0) is readable
    if readable:
        ours = extract_file(str(path), "auto")
        assert ours.engine.split(" ", 1)[0] == OmeEngine.name
        assert normalise(ours.omexml or "") == normalise(theirs.omexml or "")


def _mixed_set(folder: Path, rgb_first: bool, grey_channels: int = 1) -> list[Path]:
    """Two images in two files, every file with the whole XML: a grey uint16 image (two planes a channel) and
    an RGB uint8 one."""
    grey = ('<Pixels ID="Pixels:{i}" DimensionOrder="XYZCT" Type="uint16" SizeX="8" SizeY="6" SizeZ="2" '
            f'SizeC="{grey_channels}" SizeT="1">'
            + "".join(f'<Channel ID="Channel:{{i}}:{c}" Name="g" SamplesPerPixel="1"/>' for c in range(grey_channels))
            + "{td}</Pixels>")
    rgb = ('<Pixels ID="Pixels:{i}" DimensionOrder="XYZCT" Type="uint8" SizeX="4" SizeY="3" SizeZ="1" SizeC="3" '
           'SizeT="1"><Channel ID="Channel:{i}:0" Name="rgb" SamplesPerPixel="3"/>{td}</Pixels>')
    kinds = ["rgb", "grey"] if rgb_first else ["grey", "rgb"]
    names = [f"{kind}.ome.tif" for kind in kinds]
    images = []
    for i, kind in enumerate(kinds):
        planes = [(z, c) for c in range(grey_channels) for z in range(2)] if kind == "grey" else [(0, 0)]
        td = "".join(f'<TiffData FirstZ="{z}" FirstC="{c}" IFD="{n}" PlaneCount="1"><UUID FileName="{names[i]}">'
                     f"{_uuid(i + 1)}</UUID></TiffData>" for n, (z, c) in enumerate(planes))
        images.append(f'<Image ID="Image:{i}">{(rgb if kind == "rgb" else grey).format(i=i, td=td)}</Image>')
    folder.mkdir()
    paths = []
    for i, kind in enumerate(kinds):
        xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{_uuid(i + 1)}">{"".join(images)}'
               "</OME>")
        data = np.zeros((2 * grey_channels, 6, 8), np.uint16) if kind == "grey" else np.zeros((3, 4, 3), np.uint8)
        tifffile.imwrite(folder / names[i], data, description=xml, metadata=None,
                         photometric="rgb" if kind == "rgb" else "minisblack")
        paths.append(folder / names[i])
    return paths


@pytest.mark.slow
@pytest.mark.parametrize(("rgb_first", "grey_channels", "expected"), [
    (False, 1, ("uint8", 3)), (True, 1, ("uint16", 3)), (False, 2, ("uint8", 6))])
def test_a_file_of_another_image_reports_image_0_as_its_own_ifd(rgb_first: bool, grey_channels: int,
                                                                 expected: tuple[str, int], tmp_path: Path) -> None:
    """OMETiffReader takes image 0's type, and its samples per pixel when its Channel disagrees, from the
    opened file's first IFD: the file of image 1 reports image 0 as an RGB uint8 image (SizeC 1 -> 3, or 2
    channels -> 6, "adjusted", which carries on to image 1), or as three grey uint16 channels; the engine
    writes what live Bio-Formats writes."""
    paths = _mixed_set(tmp_path / "mixed", rgb_first, grey_channels)
    for path in paths:
        theirs = extract_file(str(path), "bioformats")
        ours = extract_file(str(path), "auto")
        assert ours.engine.split(" ", 1)[0] == OmeEngine.name, ours.error
        assert normalise(ours.omexml or "") == normalise(theirs.omexml or ""), path.name
    other = key_fields(extract_file(str(paths[1]), "auto").omexml or "")["images"][0]["pixels"]
    assert (other["type"], other["size_c"]) == expected
