"""No XML entity or DTD reaches a parser, no network, no read outside the file's folder (issue 17, item 1).

Hostile copies of real files (CZI, LIF, ND2, OIB from the corpus; OME-TIFF, MetaSeries TIFF and a
CellVoyager ``.mlf`` written here) declare a DTD whose entities name a canary file outside the folder and a
local TCP listener. Three layers are proven separately:

1. :func:`metaextract.extraction.sanity.refuse` finds the DTD in the file's bytes (UTF-8, UTF-16, OLE2 streams) before
   any engine, for ``show``, ``extract()``, ``run`` and ``submit``;
2. the JVM itself, given the CZI directly (``BioFormatsEngine.extract``, layer 1 bypassed), refuses the
   external entity; the control, the same JVM with the jar's Apache Xerces put back, leaks the canary;
3. an extraction process cannot read ``/etc/hostname`` nor a file in ``/dev/shm`` (a plug-in engine that
   opens what a file names).
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

import metaextract
from metaextract.extraction import sandbox as _sandbox
from metaextract.extraction import sanity
from metaextract.store import open_store
from metaextract.store.models import image_files

from . import hostile
from ._engines import install_plugin_engine
from ._files import tiny_tiff
from .test_hostile import EXE, Listener, OpenWatch, cli

TOKEN = "CANARY-" + uuid.uuid4().hex
REFUSED = "declares a DTD or entities"


# -- hostile copies --------------------------------------------------------------------------------------
def _czi(corpus: Path, dest: Path, doctype: str, user: str) -> None:
    """The corpus CZI with ``doctype`` before its metadata XML and ``user`` as its Document/UserName (which
    Bio-Formats stores as the Experimenter's UserName); the XML keeps its size (whitespace between tags goes)."""
    data = bytearray((corpus / "czi/Al2O3_SE_020_sp.czi").read_bytes())
    at = data.find(b"ZISRAWMETADATA")
    (size,) = struct.unpack_from("<i", data, at + 32)
    start = at + 32 + 256
    xml = re.sub(rb">\s+<", b"><", bytes(data[start:start + size]))
    xml = doctype.encode() + re.sub(rb"<UserName>[^<]*</UserName>", f"<UserName>{user}</UserName>".encode(), xml,
                                     count=1)
    assert len(xml) <= size
    data[start:start + size] = xml.ljust(size)
    dest.write_bytes(bytes(data))


def _lif(corpus: Path, dest: Path, doctype: str) -> None:
    """The corpus LIF with ``doctype`` (UTF-16 LE, as LIF's XML is) before its XML; the header sizes follow."""
    data = (corpus / "lif/testdata_2channel_xz.lif").read_bytes()
    _magic, _length, _mark, chars = struct.unpack_from("<iiBi", data, 0)
    xml = doctype.encode("utf-16-le") + data[13:13 + 2 * chars]
    head = struct.pack("<iiBi", 0x70, 1 + 4 + len(xml), 0x2A, len(xml) // 2)
    dest.write_bytes(head + xml + data[13 + 2 * chars:])


def _nd2(corpus: Path, dest: Path, doctype: str) -> None:
    """The corpus ND2 with ``doctype`` in place of the XML declaration of its application chunk (the room
    taken from its software name), every chunk where it was."""
    data = bytearray((corpus / "nd2/cluster.nd2").read_bytes())
    start = data.find(b'<?xml version="1.0" encoding="UTF-8"?><variant version="1.0"><no_name runtype="CLxListVariant">'
                      b"<m_SWNameString")
    end = data.find(b'value="NIS-Elements AR"', start) + len(b'value="NIS-Elements AR"')
    region = bytes(data[start:end])
    rest = region.removeprefix(b'<?xml version="1.0" encoding="UTF-8"?>').replace(b"NIS-Elements AR", b"")
    new = doctype.encode() + b" " * (len(region) - len(doctype) - len(rest)) + rest
    assert len(new) == len(region)
    data[start:end] = new
    dest.write_bytes(bytes(data))


def _oib(corpus: Path, dest: Path, text: str) -> None:
    """The corpus OIB with ``text`` (UTF-16 LE) written over the start of an OIF stream, through the stream's
    sectors (the bytes need not lie together in the file)."""
    from metaextract.engines.ole.storage import OleFile

    data = bytearray((corpus / "olympus-oib/test.oib").read_bytes())
    stream = "Storage00001/Stream00008"
    with OleFile(corpus / "olympus-oib/test.oib") as ole:
        pieces = ole.extents(stream)
    patch = b"\xff\xfe" + text.encode("utf-16-le")
    done = 0
    for offset, length in pieces:
        take = patch[done:done + length]
        data[offset:offset + len(take)] = take
        done += len(take)
        if done == len(patch):
            break
    dest.write_bytes(bytes(data))


def _mlf(dest: Path, doctype: str) -> None:
    dest.write_text(f'<?xml version="1.0" encoding="utf-8"?>{doctype}<bts:MeasurementData '
                    'xmlns:bts="http://www.yokogawa.co.jp/BTS/BTSSchema/1.0"><bts:MeasurementRecord>&x;'
                    "</bts:MeasurementRecord></bts:MeasurementData>")


def write_hostile(root: Path, corpus: Path, port: int) -> tuple[Path, dict[str, Path]]:
    """The hostile folder ``root/plate`` (and ``root/outside/canary.txt``); returns the canary and the files."""
    outside, plate = root / "outside", root / "plate"
    outside.mkdir(parents=True)
    plate.mkdir()
    canary = outside / "canary.txt"
    canary.write_text(f"{TOKEN}\n")
    file_entity = f'<!ENTITY x SYSTEM "{canary.as_uri()}">'
    http = f'<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p">%p;'
    files = {
        "czi": plate / "user.czi", "lif": plate / "confocal.lif", "nd2": plate / "loop.nd2",
        "ome-tiff": plate / "a.ome.tif", "metaseries": plate / "ms_w1.tif", "oib": plate / "stack.oib",
    }
    _czi(corpus, files["czi"], f"<!DOCTYPE ImageDocument [{file_entity}{http}]>", "&x;")
    _lif(corpus, files["lif"], f"<!DOCTYPE LMSDataContainerHeader [{file_entity}{http}]>")
    _nd2(corpus, files["nd2"], f'<!DOCTYPE v SYSTEM "http://127.0.0.1:{port}/d">')
    files["ome-tiff"].write_bytes(hostile.tiff_bytes(description=hostile.ome_xml(
        doctype=f"<!DOCTYPE OME [{file_entity}{http}]>",
        body='<StructuredAnnotations><CommentAnnotation ID="Annotation:0"><Value>&x;</Value>'
             "</CommentAnnotation></StructuredAnnotations>")))
    files["metaseries"].write_bytes(hostile.tiff_bytes(description=(
        f'<?xml version="1.0" encoding="utf-8"?><!DOCTYPE MetaData [{file_entity}]><MetaData><PlaneInfo>'
        '<prop id="image-name" type="string" value="w1"/></PlaneInfo><prop id="Description" type="string">&x;'
        "</prop></MetaData>").encode()))
    _oib(corpus, files["oib"], f"<!DOCTYPE oif [{file_entity}{http}]>")
    # a CellVoyager plate folder: TIFFs and the measurement file Bio-Formats would read beside them
    cv = plate / "cv"
    cv.mkdir()
    tiny_tiff(cv / "W1_F001_T0001_Z01_C1.tif")
    _mlf(cv / "MeasurementData.mlf", f"<!DOCTYPE bts:MeasurementData [{file_entity}{http}]>")
    files["mlf"] = cv / "MeasurementData.mlf"
    files["beside-mlf"] = cv / "W1_F001_T0001_Z01_C1.tif"
    return canary, files


@pytest.fixture
def listener() -> Listener:
    return Listener()


@pytest.fixture
def setup(tmp_path: Path, corpus: Path, listener: Listener) -> tuple[Path, dict[str, Path]]:
    return write_hostile(tmp_path, corpus, listener.port)


HOSTILE = ("czi", "lif", "nd2", "ome-tiff", "metaseries", "oib", "mlf")


def _clean(watch: OpenWatch, listener: Listener, *texts: str) -> None:
    assert watch.events() == b"", "something opened the canary's folder"
    assert listener.connections == [], listener.connections
    for text in texts:
        assert TOKEN not in text


# -- layer 1 -----------------------------------------------------------------------------------------------
def test_every_hostile_file_is_refused_before_any_engine(setup: tuple[Path, dict[str, Path]], corpus: Path) -> None:
    _canary, files = setup
    for kind in HOSTILE:
        path = files[kind]
        why = sanity.refuse(str(path), path.read_bytes()[:4096])
        assert why is not None and REFUSED in why, (kind, why)
    # the controls: the originals, and the TIFF beside the .mlf, are not refused
    for rel in ("czi/Al2O3_SE_020_sp.czi", "lif/testdata_2channel_xz.lif", "nd2/cluster.nd2",
                "olympus-oib/test.oib"):
        assert sanity.refuse(str(corpus / rel), (corpus / rel).read_bytes()[:4096]) is None, rel
    assert sanity.refuse(str(files["beside-mlf"]), files["beside-mlf"].read_bytes()[:4096]) is None


def test_show_refuses_them_in_one_line_each(setup: tuple[Path, dict[str, Path]], listener: Listener) -> None:
    canary, files = setup
    watch = OpenWatch(canary.parent)
    try:
        out = subprocess.run([EXE, "show", *(str(files[k]) for k in HOSTILE), str(files["beside-mlf"])],
                             capture_output=True, text=True, timeout=300)
        forced = subprocess.run([EXE, "show", "--engine", "bioformats", "--timeout", "60", str(files["czi"])],
                                capture_output=True, text=True, timeout=300)
        _clean(watch, listener, out.stdout, out.stderr, forced.stdout, forced.stderr)
    finally:
        watch.close()
    assert out.returncode == 1 and forced.returncode == 1, (out.stderr, forced.stderr)
    assert "Traceback" not in out.stderr + forced.stderr
    errors = out.stderr.splitlines()
    for kind in HOSTILE:
        assert any(line.startswith(f"metaextract: {files[kind]}: ") and REFUSED in line for line in errors), kind
    assert REFUSED in forced.stderr
    assert "<OME" in out.stdout  # the TIFF beside the .mlf is read (the .mlf hidden from Bio-Formats)


def test_extract_refuses_them_and_reads_in_a_fenced_process(setup: tuple[Path, dict[str, Path]],
                                                             listener: Listener) -> None:
    canary, files = setup
    watch = OpenWatch(canary.parent)
    try:
        results = [metaextract.extract(files[k]) for k in HOSTILE]
        results.append(metaextract.extract(files["czi"], engine="bioformats"))
        beside = metaextract.extract(files["beside-mlf"])
        # Bio-Formats given the TIFF beside the hostile .mlf: the .mlf is hidden from it
        beside_bf = metaextract.extract(files["beside-mlf"], engine="bioformats")
        _clean(watch, listener, *(f"{r.omexml} {r.error}" for r in [*results, beside, beside_bf]))
    finally:
        watch.close()
    for r in results:
        assert r.status == "failed" and REFUSED in (r.error or ""), r
    assert beside.status == "ok" and beside_bf.status == "ok", (beside, beside_bf)
    # extract() reads in a process of its own (nothing of the file is read in this one)
    from metaextract.extraction import pool

    assert pool._solo is not None and str(files["beside-mlf"].parent) in pool._solo[0][1]


def test_run_and_submit_store_refusals_and_nothing_of_the_canary(
        setup: tuple[Path, dict[str, Path]], listener: Listener, db_url: str) -> None:
    canary, files = setup
    plate = files["czi"].parent
    assert cli(db_url, "experiment", "create", "hostile").returncode == 0
    assert cli(db_url, "experiment", "add", "hostile", str(plate)).returncode == 0
    assert cli(db_url, "hostile", "init", "--batch-size", "1000").returncode == 0
    watch = OpenWatch(canary.parent)
    try:
        runs = [cli(db_url, "hostile", "submit", "--interval", "5"), cli(db_url, "hostile", "run", "--job", "1")]
        store = open_store(db_url)
        with store.connect() as conn:
            rows = {Path(r.location).name: r for r in conn.execute(
                select(image_files.c.location, image_files.c.status, image_files.c.error, image_files.c.omexml))}
        store.engine.dispose()
        _clean(watch, listener, *(o.stdout + o.stderr for o in runs),
               *(f"{r.omexml} {r.error}" for r in rows.values()))
    finally:
        watch.close()
    assert [o.returncode for o in runs] == [1, 1], [o.stderr for o in runs]
    for kind in HOSTILE:
        row = rows.get(files[kind].name)
        if row is None:
            assert kind == "mlf"  # registered as the plate's metadata file, not as an image: never extracted
            continue
        assert row.status == "failed" and REFUSED in row.error, (kind, row.status, row.error)
    assert rows[files["beside-mlf"].name].status == "ok"


# -- layer 2 -----------------------------------------------------------------------------------------------
_ENGINE_DIRECT = """
import json, sys
from metaextract.engines.bioformats import jvm as _java
_java.start_jvm(extra=sys.argv[2:])
import jpype
from metaextract.engines.bioformats import BioFormatsEngine
factory = str(jpype.JClass("javax.xml.parsers.DocumentBuilderFactory").newInstance().getClass().getName())
try:
    out = {"xml": BioFormatsEngine().extract(sys.argv[1])}
except Exception as exc:
    out = {"error": str(exc)}
print(json.dumps({"factory": factory, **out}))
"""


def _bioformats_directly(path: Path, *extra: str) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-c", _ENGINE_DIRECT, str(path), *extra], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "METAEXTRACT_JAVA_CDS": "0"})
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.splitlines()[-1]))


def test_the_jvm_itself_refuses_external_entities(setup: tuple[Path, dict[str, Path]], listener: Listener,
                                                  tmp_path: Path, corpus: Path) -> None:
    canary, files = setup
    http_czi = tmp_path / "plate" / "http.czi"
    _czi(corpus, http_czi, f'<!DOCTYPE ImageDocument [<!ENTITY % p SYSTEM "http://127.0.0.1:{listener.port}/p">%p;]>',
         "someone")
    watch = OpenWatch(canary.parent)
    try:
        got = [_bioformats_directly(files["czi"]), _bioformats_directly(http_czi)]
        _clean(watch, listener, *(json.dumps(g) for g in got))
    finally:
        watch.close()
    assert all(g["factory"].startswith("com.sun.org.apache.xerces.internal.") for g in got), got
    assert all("accessExternalDTD" in g.get("error", "") for g in got), got
    # the control: with the jar's Apache Xerces put back, the same JVM expands the entity
    file_czi = tmp_path / "plate" / "file.czi"
    _czi(corpus, file_czi, f'<!DOCTYPE ImageDocument [<!ENTITY x SYSTEM "{canary.as_uri()}">]>', "&x;")
    leaked = _bioformats_directly(
        file_czi, "-Djavax.xml.parsers.DocumentBuilderFactory=org.apache.xerces.jaxp.DocumentBuilderFactoryImpl")
    assert leaked["factory"] == "org.apache.xerces.jaxp.DocumentBuilderFactoryImpl"
    assert TOKEN in leaked.get("xml", ""), leaked


# -- layer 3 -----------------------------------------------------------------------------------------------
_LEAK = '''
class LeakEngine:
    name = "leak"

    def version(self):
        return "1"

    def claim(self, path, head):
        return 1_000_000 if path.endswith(".leak") else 0

    def extract(self, path):
        with open(path, "rb") as fh:
            target = fh.read()[1:].decode()
        with open(target, encoding="utf-8") as fh:
            text = fh.read().strip()
        return ('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
                f'<Image ID="Image:0" Name="{text}"><Pixels DimensionOrder="XYCZT" ID="Pixels:0" SizeC="1" '
                'SizeT="1" SizeX="1" SizeY="1" SizeZ="1" Type="uint8"><MetadataOnly/></Pixels></Image></OME>')


def factory():
    return LeakEngine()
'''


def test_an_extraction_process_cannot_read_etc_hostname_nor_dev_shm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin_engine(tmp_path / "site", "leak", _LEAK, monkeypatch)
    plate = tmp_path / "plate"
    plate.mkdir()
    shm = Path("/dev/shm") / f"metaextract-test-{uuid.uuid4().hex}"
    shm.write_text(TOKEN)
    try:
        targets = {"etc.leak": "/etc/hostname", "shm.leak": str(shm)}
        for name, target in targets.items():
            (plate / name).write_bytes(b"\x00" + target.encode())
        paths = [str(plate / n) for n in targets]
        fenced = {Path(r.path).name: r for r in metaextract.extract_many(paths, workers=1)}
        monkeypatch.setenv(_sandbox.ENV, "0")  # the control: the same reads without the sandbox succeed
        free = {Path(r.path).name: r for r in metaextract.extract_many(paths, workers=1)}
    finally:
        shm.unlink()
    for name in targets:
        assert fenced[name].status == "failed" and "Permission denied" in (fenced[name].error or ""), fenced[name]
        assert free[name].status == "ok", free[name]
    assert TOKEN in (free["shm.leak"].omexml or "") and TOKEN not in (fenced["shm.leak"].omexml or "")


# -- item 7 ------------------------------------------------------------------------------------------------
def test_show_summary_of_a_ten_megabyte_attribute(tmp_path: Path) -> None:
    path = tmp_path / "big.ome.tif"
    path.write_bytes(hostile.tiff_bytes(description=hostile.ome_xml(name="N" * (10 << 20))))
    out = subprocess.run([EXE, "show", "--summary", str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    [line] = out.stdout.splitlines()
    assert line.startswith(f"{path}\t#0\t") and "X=4 Y=4" in line


_CRASH = """
from metaextract.engines.bioformats import jvm as _java
_java.start_jvm()
import jpype
field = jpype.JClass("sun.misc.Unsafe").class_.getDeclaredField("theUnsafe")
field.setAccessible(True)
field.get(None).putAddress(0, 0)
"""


def test_a_jvm_crash_report_goes_to_the_cache_not_the_working_folder(tmp_path: Path) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    out = subprocess.run([sys.executable, "-c", _CRASH], cwd=work, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "METAEXTRACT_CACHE": str(cache), "METAEXTRACT_JAVA_CDS": "0"})
    assert out.returncode != 0  # it did crash
    assert list(work.iterdir()) == []
    assert [p.name.startswith("hs_err_pid") for p in (cache / "crash").iterdir()] == [True], out.stderr[-500:]
