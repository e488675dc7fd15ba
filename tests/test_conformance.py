"""Conformance: every corpus file that ``auto`` routes to a native engine gives Bio-Formats' whole document.

The reference is what Bio-Formats 7.3.1's showinf printed for each file (``../shared/reference``); equal
means equal after :func:`metaextract.ome.normalise` (white space and UUIDs, nothing else). A native
engine that cannot give the whole document for a kind of file must not claim it in ``auto`` (issue 20):
the test pins which corpus files each native engine answers, and that the files whose native answer
agrees on the key fields only go to Bio-Formats (their engine still answers when named).
No element differs today, so there is no list of Bio-Formats errors to excuse.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metaextract import engines
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise
from metaextract.ome.diff import first_difference

from ._corpus import corpus_files, reference_rows

#: Corpus files the native engines answer for in ``auto`` (everything else goes to Bio-Formats).
NATIVE = {
    "tiff/01_POS002_D.TIF": "tifffile",
    "tiff/AS_09125_050116030001_D03f00d0.tif": "tifffile",
    "tiff/NikonTIF.tif": "tifffile",
    "tiff/calcium_imaging.tif": "tifffile",
    "tiff/membrane_2d_timelapse.tif": "tifffile",
    "tiff/psf.tif": "tifffile",
    "tiff-plate-sbs/Channel1-01-A-01.tif": "tifffile",
    "tiff-plate-sbs/Channel1-02-A-02.tif": "tifffile",
    "tiff-plate-sbs/Channel2-01-A-01.tif": "tifffile",
    "imagej-tiff/5channel.tif": "tifffile-imagej",
    "imagej-tiff/ADSAWorm2x384wp_A03_w22D06038D-D9FD-4DE3-95F6-3D9430FBA9A5.tif": "tifffile-imagej",
    "imagej-tiff/HeLa00.tif": "tifffile-imagej",
    "imagej-tiff/IXMtest_A02_s9.tif": "tifffile-imagej",
    "imagej-tiff/Well96_CH2.ome00.tif": "tifffile-imagej",
    "imagej-tiff/_blobs_3d_fiji_skeleton.tif": "tifffile-imagej",
    "imagej-tiff/calcium.ome0000.tif": "tifffile-imagej",
    "metamorph-stk/MetamorphImage.tif": "tifffile-stk",
    "zeiss-lsm/test.lsm": "tifffile-lsm",
    "dv/toxo.dv": "dv",
    "nd2/cluster.nd2": "nd2",
    "czi/100x100.czi": "czi",
    "czi/Al2O3_SE_020_sp.czi": "czi",
    "czi/1_tileregion.czi": "czi",
    "czi/CD_s_1_t_3_c_2_z_5.czi": "czi",
    "czi/CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi": "czi",
    "czi/CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD.czi": "czi",
    "czi/DAPI_GFP.czi": "czi",
    "czi/FOV7_HV110_P0500510000.czi": "czi",
    "czi/LSM880_AiryScan.czi": "czi",
    "czi/RGB-8bit.czi": "czi",
    "czi/S3_1Pos_2Mosaic_T1_Z1_CH1.czi": "czi",
    "czi/WellD6_S1.czi": "czi",
    "czi/mosaic_test.czi": "czi",
    "czi/nuc_small.czi": "czi",
    "czi/s_1_t_1_c_1_z_1.czi": "czi",
    "czi/tiles.czi": "czi",
    "czi/tiles_z.czi": "czi",
    "lif/LeicaLASX_xz-plane_example.lif": "lif",
    "lif/testdata_2channel_xz.lif": "lif",
    "svs/small.svs": "svs",
    "cellomics-c01/iamac01file.c01": "cellomics",
    "olympus-oib/test.oib": "oib",
    "ics/testim.ics": "ics",
    "ics/testim.ids": "ics",
    "micromanager-mmstack/Cos7_A647_WF1/Cos7_A647_WF1_MMStack_Pos0.ome.tif": "micromanager",
    "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0.ome.tif":
        "micromanager",
    "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0_metadata.txt":
        "micromanager",
    "zeiss-zvi/BlockSize4096.zvi": "zvi",
    "dicom/seg_image_sm_dots_tiled_full.dcm": "pydicom",
    "spe/spestack_test.spe": "spe",
    "andor-sif/image.sif": "sif",
    "andor-sif/raman1.sif": "sif",
    "ome-tiff/FOV7_HV110_P0500510000.ome.tiff": "ome-xml",
    "ome-tiff/grey.ome.tiff": "ome-xml",
    "ome-tiff/ome.tiff": "ome-xml",
    "ome-tiff/rgb.ome.tiff": "ome-xml",
    "ome-tiff/plane.ome.tiff": "ome-xml",
    "ome-tiff-spec-samples/18x24y5z5t2c8b-text.ome.tiff": "ome-xml",
    "ome-tiff-spec-samples/6x4y1z1t1c8b-swatch-instrument.ome.tiff": "ome-xml",
    "ome-tiff-spec-samples/single-channel.ome.tif": "ome-xml",
    "ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-companion.ome": "ome-xml",
    "ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-split-Z1.ome.tiff": "ome-xml",
    "ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-split-Z2.ome.tiff": "ome-xml",
    "ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-split-Z3.ome.tiff": "ome-xml",
    "ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-split-Z4.ome.tiff": "ome-xml",
    "ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-split-Z5.ome.tiff": "ome-xml",
    "micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff3.2_monochrome_NDTiffStack.tif": "micromanager",
    "micromanager-ndtiff/ndtiffv2.0_test/Full resolution/ndtiffv2.0_test_NDTiffStack.tif": "micromanager",
    "ome-xml-reference/ROI.ome.xml": "ome-xml",
    "ome-xml-reference/commentannotation.ome.xml": "ome-xml",
    "ome-xml-reference/filter.ome.xml": "ome-xml",
    "ome-xml-reference/folders-larger-taxonomy.ome.xml": "ome-xml",
    "ome-xml-reference/folders-simple-taxonomy.ome.xml": "ome-xml",
    "ome-xml-reference/hcs.ome.xml": "ome-xml",
    "ome-xml-reference/instrument-units-alternate.ome.xml": "ome-xml",
    "ome-xml-reference/instrument-units-default.ome.xml": "ome-xml",
    "ome-xml-reference/instrument.ome.xml": "ome-xml",
    "ome-xml-reference/mapannotation.ome.xml": "ome-xml",
    "ome-xml-reference/metadata-only.ome.xml": "ome-xml",
    "ome-xml-reference/minimum-specification.ome.xml": "ome-xml",
    "ome-xml-reference/multi-channel-time-series.ome.xml": "ome-xml",
    "ome-xml-reference/multi-channel-z-series-time-series.ome.xml": "ome-xml",
    "ome-xml-reference/multi-channel-z-series.ome.xml": "ome-xml",
    "ome-xml-reference/multi-channel.ome.xml": "ome-xml",
    "ome-xml-reference/no-date.ome.xml": "ome-xml",
    "ome-xml-reference/one-screen-one-plate-four-wells.ome.xml": "ome-xml",
    "ome-xml-reference/single-image.ome.xml": "ome-xml",
    "ome-xml-reference/spim.ome.xml": "ome-xml",
    "ome-xml-reference/tagannotation.ome.xml": "ome-xml",
    "ome-xml-reference/time-series.ome.xml": "ome-xml",
    "ome-xml-reference/timestampannotation-posix-only.ome.xml": "ome-xml",
    "ome-xml-reference/timestampannotation.ome.xml": "ome-xml",
    "ome-xml-reference/transformations-downgrade.ome.xml": "ome-xml",
    "ome-xml-reference/transformations-upgrade.ome.xml": "ome-xml",
    "ome-xml-reference/xmlannotation-body-space.ome.xml": "ome-xml",
    "ome-xml-reference/two-screens-two-plates-four-wells.ome.xml": "ome-xml",
    "ome-xml-reference/xmlannotation-multi-value.ome.xml": "ome-xml",
    "ome-xml-reference/xmlannotation-svg.ome.xml": "ome-xml",
    "ome-xml-reference/z-series-time-series.ome.xml": "ome-xml",
    "ome-xml-reference/z-series.ome.xml": "ome-xml",
}
#: Native files whose Bio-Formats document is itself not valid OME: IDs the schema refuses, printed as they
#: are (a CZI's dichroic ``Beamsplitter.2076-903``, Micro-Manager's Instrument ``Microscope``); the native
#: document is the same and is stored the same way (``valid=False``, the same reason, which names this).
INVALID_AS_BIOFORMATS = {
    "czi/1_tileregion.czi": "DichroicIDKey",
    "czi/WellD6_S1.czi": "DichroicIDKey",
    "micromanager-mmstack/Cos7_A647_WF1/Cos7_A647_WF1_MMStack_Pos0.ome.tif": "InstrumentRef",
    "micromanager-mmstack/HeLaS_Control_53BP1_IF_FISH_A647_WF1/HeLaS_Control_53BP1_IF_FISH_A647_WF1_MMStack_Pos0.ome.tif":
        "InstrumentRef",
}
#: Corpus files Bio-Formats 7.3.1 cannot read (showinf exit 1, even alone) that a native engine reads in
#: ``auto``, saying in the notes that Bio-Formats cannot (tests/test_engines_ics.py has the evidence: the
#: header is whole, its .ids is not in the corpus, and Bio-Formats says "IDS file not found").
RESCUED = {
    "ics/testim_c.ics": "ics",
}


#: Corpus files that hold no image and that Bio-Formats does not recognise (showinf: "Unknown file format"):
#: the sidecar engine says so without a JVM (tests/test_engines_sidecar.py).
NOT_IMAGES = {
    "micromanager-ndtiff/ndtiff3.2_monochrome/NDTiff.index": "sidecar",
    "micromanager-ndtiff/ndtiff3.2_monochrome/display_settings.txt": "sidecar",
    "micromanager-ndtiff/ndtiffv2.0_test/Full resolution/NDTiff.index": "sidecar",
    "micromanager-ndtiff/ndtiffv2.0_test/display_settings.txt": "sidecar",
    "yokogawa-cv7000/MeasurementData_2x2_well.mlf": "sidecar",
    "yokogawa-cv7000/MeasurementData_SingleWell2Sites_MultiZ.mlf": "sidecar",
    "yokogawa-cv7000/MeasurementDetail.mrf": "sidecar",
    "yokogawa-cv7000/MeasurementDetail_2x2_well.mrf": "sidecar",
}


#: Corpus files the seed could not read in place (Bio-Formats groups the DICOMs of a folder and one of them,
#: the annotation, makes every read throw) that a native engine reads as Bio-Formats reads each alone: their
#: documents are compared with Bio-Formats' read alone in tests/test_engines_dicom.py; the annotation is no
#: image ("unsupported", as auto said after Bio-Formats failed).
NATIVE_ALONE = {
    "dicom/boxes_0.dcm": "pydicom",
    "dicom/boxes_1.dcm": "pydicom",
    "dicom/sm_image.dcm": "pydicom",
    "dicom/sm_image_grayscale.dcm": "pydicom",
    "dicom/sm_annotations.dcm": "pydicom",
}


@pytest.fixture(scope="module")
def routes(corpus: Path) -> dict[str, str]:
    out = {}
    for rel in corpus_files(corpus):
        path = str(corpus / rel)
        out[rel] = engines.choose(path, read_head(path), "auto").name
    return out


def test_auto_routes_exactly_the_proven_files_to_native_engines(routes: dict[str, str]) -> None:
    native = {rel: name for rel, name in routes.items()
              if name != "bioformats" and rel not in NOT_IMAGES and rel not in NATIVE_ALONE and rel not in RESCUED}
    assert native == NATIVE
    assert {rel: routes[rel] for rel in NOT_IMAGES} == NOT_IMAGES
    assert {rel: routes[rel] for rel in NATIVE_ALONE} == NATIVE_ALONE


@pytest.mark.parametrize("rel", sorted(NOT_IMAGES))
def test_files_that_are_no_image_are_unsupported_as_bioformats_says(rel: str, corpus: Path,
                                                                   reference: Path) -> None:
    row = next(row for row in reference_rows(reference) if row["path"] == rel)
    assert row["showinf_exit"] == "1" and "UnknownFormatException" in row["stderr_head"]
    result = extract_file(str(corpus / rel), "auto")
    assert result.status == "unsupported" and result.engine == NOT_IMAGES[rel]


def test_auto_needs_a_jvm_only_where_a_native_answer_would_be_less_than_bioformats(routes: dict[str, str]) -> None:
    # every corpus file has a native answer: a whole document, "unsupported" or a read of what Bio-Formats
    # cannot; none is left to the JVM today (the rule that would send a file there, a native answer less
    # than Bio-Formats' whole document, is checked in tests/test_parity.py)
    assert {rel for rel, name in routes.items() if name == "bioformats"} == set()
    assert len(routes) == len(NATIVE) + len(NOT_IMAGES) + len(NATIVE_ALONE) + len(RESCUED)


@pytest.mark.parametrize("rel", sorted(NATIVE))
def test_native_documents_equal_the_reference_whole(rel: str, corpus: Path, reference: Path) -> None:
    exits = {row["path"]: row["showinf_exit"] for row in reference_rows(reference)}
    assert exits[rel] == "0"
    result = extract_file(str(corpus / rel), "auto")
    assert result.status == "ok", result.error
    assert result.engine == NATIVE[rel]
    expected = (reference / f"{rel}.xml").read_text(encoding="utf-8")
    assert result.omexml is not None
    assert first_difference(result.omexml, expected) is None, str(first_difference(result.omexml, expected))
    assert normalise(result.omexml) == normalise(expected)
    if rel in INVALID_AS_BIOFORMATS:  # stored as Bio-Formats' own answer is: invalid, for the same reason
        theirs = extract_file(str(corpus / rel), "bioformats")
        assert theirs.status == "ok" and not theirs.valid
        assert (result.valid, result.validation_error) == (theirs.valid, theirs.validation_error)
        assert INVALID_AS_BIOFORMATS[rel] in (result.validation_error or "")
    else:
        assert result.valid, result.validation_error


def test_forcing_bioformats_still_works_for_a_native_kind(corpus: Path, reference: Path) -> None:
    rel = "tiff/psf.tif"
    result = extract_file(str(corpus / rel), "bioformats")
    assert result.status == "ok" and result.engine == "bioformats"
    assert key_fields(result.omexml or "") == key_fields((reference / f"{rel}.xml").read_text("utf-8"))


@pytest.mark.parametrize("rel", sorted(RESCUED))
def test_files_bioformats_cannot_read_are_read_natively_and_say_so(rel: str, corpus: Path,
                                                                    reference: Path) -> None:
    exits = {row["path"]: row["showinf_exit"] for row in reference_rows(reference)}
    assert exits[rel] == "1" and not (reference / f"{rel}.xml").exists()
    path = str(corpus / rel)
    assert extract_file(path, "bioformats").status == "failed"  # what the note below says, checked live
    assert engines.choose(path, read_head(path), "auto").name == RESCUED[rel]
    result = extract_file(path, "auto")
    assert result.status == "ok", result.error
    assert result.engine == RESCUED[rel]
    assert result.valid, result.validation_error
    assert result.notes and result.notes[0].startswith(f"read by {RESCUED[rel]} ")


def test_engines_declaring_suffixes_or_magic_claim_nothing_else(corpus: Path) -> None:
    # ``choose`` does not ask an engine about a file without the name ending or first bytes it declares; on
    # every corpus file, asking it anyway gives 0, so skipping it changes no route
    declared = [e for e in (engines.get(n) for n in engines.available())
                if getattr(e, "suffixes", None) is not None or getattr(e, "magic", None) is not None]
    assert {e.name for e in declared} >= {"czi", "nd2", "lif", "dv", "spe", "sif", "oib", "zvi", "svs", "cellomics",
                                           "ics", "sidecar"}
    skipped = 0
    for rel in corpus_files(corpus):
        path = str(corpus / rel)
        head = read_head(path)
        for eng in declared:
            suffixes, magic = getattr(eng, "suffixes", None), getattr(eng, "magic", None)
            if (suffixes is None or path.lower().endswith(suffixes)) and (magic is None or head.startswith(magic)):
                continue
            skipped += 1
            assert eng.claim(path, head) == 0, (eng.name, rel)
    assert skipped > 900


def test_in_extraction_processes_every_file_is_answered_as_in_process(corpus: Path, reference: Path) -> None:
    """The same corpus through the extraction pool, as a run reads it: each file in a process of its own
    sandbox (Landlock: only the file's folder readable, no network). An engine that looks outside the folder
    (a parent listing for companions) would answer otherwise there than in this process; every file must get
    the engine the in-process routes give it, and every native document must still be the reference."""
    from metaextract import extract_many

    rels = corpus_files(corpus)
    expected = {**NATIVE, **NOT_IMAGES, **NATIVE_ALONE, **RESCUED}
    results = {r.path: r for r in extract_many([str(corpus / rel) for rel in rels], workers=2, engine="auto")}
    got = {rel: (results[str(corpus / rel)].engine or "").split(" ", 1)[0] for rel in rels}
    assert got == expected, {rel: (got[rel], expected.get(rel)) for rel in rels if got[rel] != expected.get(rel)}
    for rel in NATIVE:
        result = results[str(corpus / rel)]
        reference_xml = (reference / f"{rel}.xml").read_text(encoding="utf-8")
        assert normalise(result.omexml or "") == normalise(reference_xml), rel
