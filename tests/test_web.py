"""``metaextract serve``: the read-only web view, served by a real uvicorn process and driven by a real headless
Chromium (Debian's ``chromium`` + ``chromium-driver``; Selenium is pointed at them and never downloads).

The pages are checked against what the CLI reports and what the corpus holds; the database is checked to be
untouched by a storm of requests; hostile names and descriptions must show as text.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from .conftest import IN_CI, cli, cli_json, corpus_hcs_root, new_experiment

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MX_PLATE = "metaxpress-tiff/plateviewer_MD-MULTISITE-TIF"
#: Hostile text: a script element, an attribute break-out with an onerror handler.
EVIL = '<script>alert("name")</script>"><img src=x onerror=alert("img")>'
EVIL_NAME = '"><img src=x onerror=alert(1)><script>alert(2)<script>.tif'  # no "/" in a file name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start ``metaextract --db URL serve`` in its own process; yields a function URL -> base address."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(db_url: str) -> str:
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "metaextract", "--db", db_url, "serve", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "serve exited"
            try:
                urllib.request.urlopen(base + "/api/experiments", timeout=5).read()
                return base
            except OSError:
                time.sleep(0.2)
        raise AssertionError("serve did not answer within 60 s")

    yield start
    for p in procs:
        p.terminate()
        p.communicate(timeout=30)  # waits, and closes its stderr pipe


def _missing(why: str) -> None:
    """In CI a missing browser or dataset is a failure, never a skip; elsewhere a skip."""
    if IN_CI:
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium through Debian's chromedriver (Selenium Manager is never asked to fetch one)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        _missing("chromium and chromium-driver are not installed (make install installs them)")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--disable-gpu"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _json(url: str) -> Any:
    status, _, body = _get(url)
    assert status == 200, (url, status, body[:300])
    return json.loads(body)


def _storm(base: str, exp_id: int) -> int:
    """Every page and endpoint of the experiment, several times over; returns the number of requests."""
    exp = _json(f"{base}/api/experiments/{exp_id}")
    urls = ["/", "/api/experiments", f"/experiments/{exp_id}", f"/api/experiments/{exp_id}",
            f"/api/experiments/{exp_id}/status", f"/api/experiments/{exp_id}/summary", "/experiments/999999",
            "/files/999999", "/submissions/999999"]
    for p in exp["plates"]:
        urls += [f"/experiments/{exp_id}/plates/{p['id']}", f"/api/experiments/{exp_id}/plates/{p['id']}"]
    for s in exp["submissions"]:
        urls += [f"/submissions/{s['id']}", f"/api/submissions/{s['id']}"]
    for f in _json(f"{base}/api/experiments/{exp_id}/summary")[:20]:
        urls += [f"/files/{f['id']}", f"/api/files/{f['id']}", f"/files/{f['id']}/omexml"]
    n = 0
    for _ in range(5):
        for u in urls:
            status, _, _ = _get(base + u)
            assert status in (200, 404), (u, status)
            n += 1
    return n


def _digest(db_file: Path) -> dict[str, str]:
    """The database file and its write-ahead log (the ``-shm`` index is shared memory where every reader,
    read-only ones included, marks what it reads: it holds no data and is left out). An empty log is no log:
    SQLite makes one, empty, when a reader opens a WAL database whose log the last writer removed on closing;
    any write adds frames to it."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (db_file, db_file.with_name(db_file.name + "-wal")) if p.exists() and p.stat().st_size}


def _registered_mx(db_url: str) -> int:
    exp = new_experiment(db_url, "hcs", corpus_hcs_root() / MX_PLATE, "--plate", "MD-MULTISITE")
    cli(db_url, "hcs", "init")
    cli(db_url, "hcs", "submit")
    return exp


# -- the plate map of a corpus-hcs plate, in the browser ---------------------------------------------------------
def test_plate_map_of_a_corpus_plate_click_a_well_see_its_files(sqlite_url: str, serve: Any, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    folder = corpus_hcs_root() / MX_PLATE
    if not folder.is_dir():
        _missing(f"{folder} is missing")
    _registered_mx(sqlite_url)
    base = serve(sqlite_url)
    browser.get(base + "/")
    assert browser.find_element(By.CSS_SELECTOR, "#experiments a.exp-link").text == "hcs"
    browser.find_element(By.CSS_SELECTOR, "#experiments a.exp-link").click()
    browser.find_element(By.CSS_SELECTOR, "#plates a.plate-link").click()
    names = sorted(os.listdir(folder))
    wells = sorted({n.split("_")[1] for n in names})  # IM-Assays-EXP2_A01_s1_w1.TIF
    for w in wells:  # every well with files is green (all ok), the rest of the 96-well grid is empty
        assert "ok" in browser.find_element(By.ID, f"well-{w}").get_attribute("class").split()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#platemap td.well")) == 96
    assert len(browser.find_elements(By.CSS_SELECTOR, "#platemap td.well.empty")) == 96 - len(wells)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.find_element(By.CSS_SELECTOR, f"#well-{wells[0]} a").click()
    shown = sorted(a.text for a in browser.find_elements(By.CSS_SELECTOR, "#well-files a.file-link"))
    assert shown == [n for n in names if f"_{wells[0]}_" in n]
    statuses = {td.text for td in browser.find_elements(By.CSS_SELECTOR, "#well-files td.status")}
    assert statuses == {"ok"}
    # a MetaXpress plate without its .HTD is a fileset laid out from its names: its files are placed by planes
    places = {r.get_attribute("data-place") for r in browser.find_elements(By.CSS_SELECTOR, "#well-files tbody tr")}
    assert places == {"planes"}
    browser.find_element(By.CSS_SELECTOR, "#well-files a.file-link").click()  # the file's page
    assert browser.find_element(By.ID, "file-status").text == "ok"
    keys = {r.find_element(By.TAG_NAME, "th").text for r in browser.find_elements(By.CSS_SELECTOR, "#keys tr")}
    assert keys, "no key fields shown"
    assert browser.find_element(By.ID, "download").get_attribute("href").endswith("/omexml")
    assert browser.find_element(By.ID, "omexml").text.lstrip().startswith("<?xml") or \
        "<OME" in browser.find_element(By.ID, "omexml").text


def test_json_endpoints_give_what_the_cli_json_gives(db_url: str, serve: Any) -> None:
    folder = corpus_hcs_root() / MX_PLATE
    if not folder.is_dir():
        _missing(f"{folder} is missing")
    exp = _registered_mx(db_url)
    base = serve(db_url)
    status = _json(f"{base}/api/experiments/{exp}/status")
    assert status == cli_json(db_url, "hcs", "status", "--json")
    listed = {e["id"]: e for e in _json(f"{base}/api/experiments")}
    for e in cli_json(db_url, "experiment", "list", "--json"):
        assert {k: listed[e["id"]][k] for k in e} == e
    summary = _json(f"{base}/api/experiments/{exp}/summary")
    assert summary == cli_json(db_url, "hcs", "summary", "--format", "json")
    plate = _json(f"{base}/api/experiments/{exp}")["plates"][0]
    pmap = _json(f"{base}/api/experiments/{exp}/plates/{plate['id']}")
    assert sum(w["total"] for w in pmap["wells"].values()) == status["files"]["total"]
    assert {w["state"] for w in pmap["wells"].values()} == {"ok"}
    well = sorted(pmap["wells"])[0]
    files = _json(f"{base}/api/experiments/{exp}/plates/{plate['id']}/wells/{well}")["files"]
    assert {f["name"] for f in files} == {f["name"] for f in summary if f"_{well}_" in f["name"]}
    layout = cli_json(db_url, "hcs", "plate", "--format", "json")
    assert len(layout) == 1 and pmap["filesets"][0]["id"] == layout[0]["fileset"]["id"]
    for w in layout[0]["per_well"]:  # the wells, their planes and axes are the CLI's plate map
        mine = pmap["wells"][w["well"]]
        assert {k: mine[k] for k in ("planes", "fields", "channels", "z", "t")} == \
            {k: w[k] for k in ("planes", "fields", "channels", "z", "t")}
        assert {k: mine[k] for k in ("ok", "failed", "pending")} == w["files"]
    assert {k: pmap["axes"][k] for k in layout[0]["axes"]} == layout[0]["axes"]
    assert pmap["axes"]["planes"] == layout[0]["planes"] and pmap["axes"]["wells"] == len(layout[0]["wells"])


# -- a plate registered as a fileset: wells, fields, channels, Z and T from its planes ----------------------------
HTD_PLATE = "metaxpress-htd/faim-ipa_9987_Plate_3433"


def _htd_files(folder: Path) -> dict[str, tuple[int, int, int] | None]:
    """Each TIFF of the ``ZStep_N`` ImageXpress plate (``…/ZStep_2/9987_B02_s1_w2.TIF``) → (field, channel, z)
    as its folder and name say, 0-based; None for the ``ZStep_0`` projections, which the plate's planes leave out."""
    out: dict[str, tuple[int, int, int] | None] = {}
    for f in sorted(folder.rglob("*.TIF")):
        step = int(f.parent.name.removeprefix("ZStep_"))
        _, _, site, wave = f.stem.split("_")
        out[str(f.relative_to(folder))] = None if step == 0 else (int(site[1:]) - 1, int(wave[1:]) - 1, step - 1)
    return out


def test_an_htd_plate_shows_its_wells_fields_channels_z_and_t_from_its_planes(sqlite_url: str, serve: Any,
                                                                              browser: Any) -> None:
    from selenium.webdriver.common.by import By

    folder = corpus_hcs_root() / HTD_PLATE
    if not folder.is_dir():
        _missing(f"{folder} is missing")
    expected = _htd_files(folder)
    exp = new_experiment(sqlite_url, "htd", folder, "--plate", "P3433")
    cli(sqlite_url, "htd", "init")
    cli(sqlite_url, "htd", "submit")
    layout = cli_json(sqlite_url, "htd", "plate", "--format", "json")[0]
    assert layout["fileset"]["kind"] == "metaxpress-htd"
    base = serve(sqlite_url)
    browser.get(f"{base}/experiments/{exp}")
    browser.find_element(By.CSS_SELECTOR, "#plates a.plate-link").click()
    axes = layout["axes"]
    assert browser.find_element(By.ID, "axes").text == (
        f"{len(layout['wells'])} wells × {axes['fields']} fields × {axes['channels']} channels × {axes['z']} Z × "
        f"{axes['t']} T")
    assert (len(layout["wells"]), axes["z"]) == (2, 3)  # B02 and B03, three Z steps (ZStep_1..3)
    assert "metaxpress-htd" in browser.find_element(By.ID, "filesets").text
    for w in layout["per_well"]:
        cell = browser.find_element(By.ID, f"well-{w['well']}")
        assert "ok" in cell.get_attribute("class").split()
        per_well = [n for n in expected if f"_{w['well']}_" in n]
        assert cell.text == str(len(per_well))  # every file of the well: placed ones and projections
        assert (f"{w['fields']} fields × {w['channels']} channels × {w['z']} Z × {w['t']} T, "
                f"{w['planes']} planes") in cell.get_attribute("title")
    browser.find_element(By.CSS_SELECTOR, "#well-B02 a").click()
    placed = {n: v for n, v in expected.items() if v is not None and "_B02_" in n}
    assert browser.find_element(By.ID, "well-planes").text == str(len(placed))
    fields, channels, zs = ({v[i] for v in placed.values()} for i in range(3))
    assert browser.find_element(By.ID, "well-fields").text == f"{min(fields)}\u2013{max(fields)}"
    assert browser.find_element(By.ID, "well-channels").text == f"{min(channels)}\u2013{max(channels)}"
    assert browser.find_element(By.ID, "well-z").text == f"{min(zs)}\u2013{max(zs)}"
    assert browser.find_element(By.ID, "well-t").text == "0"
    rows = {r.find_element(By.CSS_SELECTOR, "a.file-link").text: r
            for r in browser.find_elements(By.CSS_SELECTOR, "#well-files tbody tr")}
    assert set(rows) == {n for n in expected if "_B02_" in n}
    for name, row in rows.items():
        shown = tuple(row.find_element(By.CSS_SELECTOR, f"td.{c}").text for c in ("field", "channel", "z", "t"))
        if expected[name] is None:  # a projection: no plane; its well, field and channel from its name
            assert row.get_attribute("data-place") == "name" and shown[2:] == ("", "")
        else:
            assert row.get_attribute("data-place") == "planes"
            assert shown == (*(str(v) for v in expected[name] or ()), "0"), name
        assert row.find_element(By.CSS_SELECTOR, "td.status").text == "ok"
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, 1100)  # the plate map and the well's first files in one picture
    browser.execute_script("window.scrollTo(0, 0);")
    browser.save_screenshot(str(SHOTS / "plate-map.png"))


def test_the_planes_not_the_names_place_the_files(db_url: str, tmp_path: Path) -> None:
    """A file's well is its planes', whatever its name says; a file without a plane falls back to its name;
    the plate map kept by the server follows the planes when they change."""
    from metaextract.filesets import FilesetLayout, FilesetSpec
    from metaextract.store import open_store
    from metaextract.store.filesets import FilesetFound, fileset_places, list_filesets, replace_filesets
    from metaextract.store.views import experiment_view, open_read_only, plate_map, well_files
    from metaextract.synth import write_metaxpress_plate

    written = {p.name.split("_w")[0] + "_w" + p.name.split("_w")[1][0]: p  # P_A01_s1_w1 → its path
               for p in write_metaxpress_plate(tmp_path / "a", plate="P", wells=["A01", "B02"], sites=2, channels=2)}
    (tmp_path / "a" / "scan of C03.tif").write_bytes(b"II*\x00" + b"\x00" * 4)  # a lone file: its name's well
    exp = new_experiment(db_url, "pl", tmp_path / "a", "--plate", "P")
    ro = open_read_only(db_url)
    try:
        view = experiment_view(ro, "pl")
        pid, acq = int(view["plates"][0]["id"]), int(view["plates"][0]["acquisitions"][0]["id"])
        before = plate_map(ro, "pl", pid)
        assert {w: (v["total"], v["planes"]) for w, v in before["wells"].items()} == \
            {"A01": (4, 4), "B02": (4, 4), "C03": (1, 0)}
        assert well_files(ro, "pl", pid, "C03")["files"][0]["place"] == "name"
        with open_store(db_url) as rw:
            with rw.connect() as conn:
                (fs,) = list_filesets(conn, exp)
                places = fileset_places(conn, fs["id"])
            moved, dropped = str(written["P_A01_s1_w1"]), str(written["P_B02_s2_w2"])
            odd = str(written["P_B02_s1_w1"])
            places[moved] = [replace(p, well="H12", field=5) for p in places[moved]]
            places[dropped] = []
            places[odd] = [replace(p, well='"><b>x</b>') for p in places[odd]]  # no grid has it: unplaced
            spec = FilesetSpec(kind=fs["kind"], master=fs["master"], images=tuple(sorted(places)))
            replace_filesets(rw, exp, acq, [FilesetFound(spec, fs["view"], FilesetLayout(spec, places))])
        after = plate_map(ro, "pl", pid)  # the same server-side cache: it sees the new planes
        assert {w: (v["total"], v["planes"]) for w, v in after["wells"].items()} == \
            {"A01": (3, 3), "B02": (3, 2), "C03": (1, 0), "H12": (1, 1)}
        assert (after["wells"]["H12"]["fields"], after["axes"]["files"], after["axes"]["planes"]) == (1, 7, 7)
        assert (after["unplaced"]["total"], after["axes"]["wells"]) == (1, 3)
        (h12,) = well_files(ro, "pl", pid, "H12")["files"]
        assert (h12["name"], h12["place"], h12["fields"], h12["channels"]) == (written["P_A01_s1_w1"].name, "planes",
                                                                                [5], [0])
        b02 = {f["name"]: f["place"] for f in well_files(ro, "pl", pid, "B02")["files"]}
        assert b02 == {written[k].name: "name" if k == "P_B02_s2_w2" else "planes" for k in written
                       if "_B02_" in k and k != "P_B02_s1_w1"}
    finally:
        ro.close()


# -- read-only ----------------------------------------------------------------------------------------------------
def test_a_request_storm_leaves_the_sqlite_file_unchanged(sqlite_url: str, serve: Any, tmp_path: Path) -> None:
    from metaextract.synth import write_metaxpress_plate

    write_metaxpress_plate(tmp_path / "plate", wells=3, sites=2, channels=2)
    (tmp_path / "plate" / "broken_B01_s1_w1.tif").write_bytes(b"II*\x00" + b"\x00" * 4)
    exp = new_experiment(sqlite_url, "ro", tmp_path / "plate")
    cli(sqlite_url, "ro", "init")
    cli(sqlite_url, "ro", "submit", expect=1)  # the broken file fails
    db_file = Path(sqlite_url.removeprefix("sqlite:///"))
    before = _digest(db_file)
    base = serve(sqlite_url)
    assert _storm(base, exp) > 50
    assert _digest(db_file) == before
    _only_on_loopback(int(base.rsplit(":", 1)[1]))


def _only_on_loopback(port: int) -> None:
    """Nothing listens on the port at this host's other addresses (serve binds 127.0.0.1 by default)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))  # a UDP "connect" sends nothing: it picks the outgoing address
            address = probe.getsockname()[0]
        except OSError:
            return  # no route out: nothing but the loopback to listen on
    if not address.startswith("127."):
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(5)
            s.connect((address, port))


def test_a_request_storm_leaves_postgresql_rows_unchanged_and_writes_are_refused(pg_url: str, serve: Any,
                                                                                 tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from metaextract.store import open_store
    from metaextract.store.models import metadata
    from metaextract.store.views import open_read_only
    from metaextract.synth import write_metaxpress_plate

    write_metaxpress_plate(tmp_path / "plate", wells=2, sites=1, channels=2)
    exp = new_experiment(pg_url, "ro", tmp_path / "plate")
    cli(pg_url, "ro", "init")
    cli(pg_url, "ro", "submit")

    def counts() -> dict[str, int]:
        with open_store(pg_url) as s, s.connect() as conn:
            return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for t in metadata.sorted_tables}

    before = counts()
    base = serve(pg_url)
    assert _storm(base, exp) > 50
    assert counts() == before
    ro = open_read_only(pg_url)
    try:
        with pytest.raises(Exception, match="read-only"), ro.begin() as conn:
            conn.exec_driver_sql("DELETE FROM image_files")
    finally:
        ro.close()
    assert counts() == before


def test_open_read_only_refuses_to_write_to_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    from metaextract.store import StoreError
    from metaextract.store.views import open_read_only

    with pytest.raises(StoreError, match="no such database"):
        open_read_only(sqlite_url)  # serve never creates a database
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()
    new_experiment(sqlite_url, "x", tmp_path)
    ro = open_read_only(sqlite_url)
    try:
        with pytest.raises(Exception, match="readonly|read-only|query_only"), ro.begin() as conn:
            conn.exec_driver_sql("DELETE FROM experiments")
    finally:
        ro.close()
    assert [e["name"] for e in cli_json(sqlite_url, "experiment", "list", "--json")] == ["x"]


# -- hostile text -------------------------------------------------------------------------------------------------
def test_hostile_names_and_descriptions_show_as_text(sqlite_url: str, serve: Any, browser: Any,
                                                    tmp_path: Path) -> None:
    import numpy as np
    import tifffile
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    folder = tmp_path / "evil"
    folder.mkdir()
    tifffile.imwrite(folder / EVIL_NAME, np.zeros((8, 8), np.uint8), description=EVIL)
    out = cli(sqlite_url, "experiment", "create", "evil", "--description", EVIL).stdout  # type: ignore[attr-defined]
    exp = int(out.strip().splitlines()[-1])
    cli(sqlite_url, "experiment", "add", "evil", str(folder), "--plate", "P" + EVIL[:40].replace("/", ""))
    cli(sqlite_url, "evil", "init")
    cli(sqlite_url, "evil", "submit", expect=None)
    base = serve(sqlite_url)
    summary = _json(f"{base}/api/experiments/{exp}/summary")
    assert [f["name"] for f in summary] == [EVIL_NAME]
    fid = summary[0]["id"]
    omexml = _json(f"{base}/api/files/{fid}")["omexml"] or ""

    def no_injection() -> None:
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.accept()
        assert browser.find_elements(By.TAG_NAME, "img") == []
        srcs = [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script")]
        assert all(s and s.startswith(base + "/static/") for s in srcs), srcs

    pages = ["/", f"/experiments/{exp}", f"/files/{fid}"]
    exp_view = _json(f"{base}/api/experiments/{exp}")
    pages.append(f"/experiments/{exp}/plates/{exp_view['plates'][0]['id']}")
    pages += [f"/submissions/{s['id']}" for s in exp_view["submissions"]]
    for page in pages:
        browser.get(base + page)
        time.sleep(0.3)
        no_injection()
    browser.get(f"{base}/experiments/{exp}")
    assert browser.find_element(By.CSS_SELECTOR, "p.desc").text == EVIL
    assert browser.find_element(By.CSS_SELECTOR, "#plates a.plate-link").text == exp_view["plates"][0]["name"]
    browser.get(f"{base}/files/{fid}")
    assert browser.find_element(By.ID, "file-name").text == EVIL_NAME
    if omexml:
        assert "<OME" in browser.find_element(By.ID, "omexml").text  # the document as text, not as markup
    no_injection()
    status, headers, body = _get(f"{base}/files/{fid}/omexml")
    if omexml:
        h = {k.lower(): v for k, v in headers.items()}
        assert (status, h["content-type"], h["x-content-type-options"]) == (200, "application/xml", "nosniff")
        assert h["content-disposition"].startswith("attachment;") and "<" not in h["content-disposition"]
        assert body.decode() == omexml


# -- a submission watched live ------------------------------------------------------------------------------------
def test_a_submission_page_follows_a_submit_in_another_process(sqlite_url: str, serve: Any, browser: Any,
                                                               tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from metaextract.synth import write_metaxpress_plate

    files = write_metaxpress_plate(tmp_path / "big", wells=250, sites=4, channels=2, size=(8, 8))
    (tmp_path / "big" / "broken_A01_s9_w1.tif").write_bytes(b"II*\x00" + b"\x00" * 4)
    exp = new_experiment(sqlite_url, "big", tmp_path / "big")
    cli(sqlite_url, "big", "init", "--batch-size", "50")
    base = serve(sqlite_url)
    sub = subprocess.Popen([sys.executable, "-m", "metaextract", "--db", sqlite_url, "big", "submit",
                            "--max-jobs", "1", "--interval", "1", "--engine", "bioformats"],  # native: 2,000 in < 1 s
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, subs = time.monotonic() + 120, []
        while not subs and time.monotonic() < deadline:
            subs = _json(f"{base}/api/experiments/{exp}")["submissions"]
            time.sleep(0.1)
        assert subs, "the submission never appeared"
        browser.get(f"{base}/submissions/{subs[0]['id']}")
        browser.execute_script("window.__notReloaded = true;")
        first = int(browser.find_element(By.ID, "files-ok").text)
        assert first < len(files)
        WebDriverWait(browser, 120, poll_frequency=0.2).until(
            lambda d: int(d.find_element(By.ID, "files-ok").text) > first)
        WebDriverWait(browser, 120, poll_frequency=0.2).until(
            lambda d: int(d.find_element(By.ID, "jobs-done").text) >= 2)
        assert browser.execute_script("return window.__notReloaded === true;")
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "submission.png"))
        sub.communicate(timeout=600)  # waits, and closes its stderr pipe
        WebDriverWait(browser, 30, poll_frequency=0.2).until(
            lambda d: d.find_element(By.ID, "state").text != "running")
        assert int(browser.find_element(By.ID, "files-ok").text) == len(files)
        assert int(browser.find_element(By.ID, "files-failed").text) == 1
        failing = browser.find_elements(By.CSS_SELECTOR, "#failing tbody tr")
        assert [r.find_element(By.TAG_NAME, "a").text for r in failing] == ["broken_A01_s9_w1.tif"]
        assert "broken_A01_s9_w1.tif" in failing[0].find_element(By.CSS_SELECTOR, "td.error").text
        assert browser.execute_script("return window.__notReloaded === true;")
    finally:
        if sub.poll() is None:
            sub.terminate()
            sub.wait(timeout=60)


# -- plate geometry -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("wells", "shape"), [(["A01", "H12"], (8, 12)), (["I01"], (16, 24)),
                                              (["A13"], (16, 24)), (["P24"], (16, 24)), (["Q01"], (32, 48)),
                                              (["AF48"], (32, 48)), ([], (8, 12))])
def test_the_grid_is_the_smallest_standard_plate_holding_every_well(wells: list[str], shape: tuple[int, int]
                                                                    ) -> None:
    from metaextract.store.views import grid_shape

    assert grid_shape(wells) == shape


def test_wells_fields_and_channels_from_opera_and_metaxpress_names() -> None:
    from metaextract.store.views import place_from_name

    opera = sorted((corpus_hcs_root() / "opera-phenix/pe2loaddata_Version1/images").glob("r*c*f*.tiff"))
    if not opera:
        _missing("the Opera Phenix plate of corpus-hcs is missing")
    for p in opera:  # r01c01f01p01-ch1sk1fk1fl1.tiff: row 1 column 1 is A01
        r, c = int(p.name[1:3]), int(p.name[4:6])
        place = place_from_name(p.name)
        assert place.well == f"{'ABCDEFGHIJKLMNOP'[r - 1]}{c:02d}"
        assert place.field == int(p.name[7:9]) and place.channel == int(p.name.split("-ch")[1].split("sk")[0])
    place = place_from_name("sub/IM-Assays-EXP2_B11_s4_w3.TIF")
    assert (place.well, place.field, place.channel) == ("B11", 4, 3)
    place = place_from_name("P_A01_s1_w16BAA9455-E3E7-4682-8209-4CAC629F6FBE.tif")  # MetaXpress's UUID suffix
    assert (place.well, place.field, place.channel) == ("A01", 1, 1)
    assert place_from_name("PLATE_AF48_s12_w2.tif").well == "AF48"  # the last row of a 1,536-well plate
    assert place_from_name("PLATE_Z07_s12_w2.tif").well == "Z07"
    assert place_from_name("notes.tif").well is None


def test_the_plate_map_follows_extraction_and_new_registrations(db_url: str, tmp_path: Path) -> None:
    """The plate index kept between requests sees results written and files registered since."""
    from metaextract.store.views import open_read_only, plate_map, well_files
    from metaextract.synth import write_metaxpress_plate

    first = write_metaxpress_plate(tmp_path / "a", plate="P", wells=["A01", "B02"], sites=1, channels=2)
    (tmp_path / "a" / "P_B02_s9_w1.tif").write_bytes(b"II*\x00" + b"\x00" * 4)
    (tmp_path / "a" / "loose.tif").write_bytes(b"II*\x00" + b"\x00" * 4)  # no well in its name
    new_experiment(db_url, "pm", tmp_path / "a", "--plate", "P")
    ro = open_read_only(db_url)
    try:
        pid = int(_plate_id(ro))
        before = plate_map(ro, "pm", pid)
        assert {w: v["state"] for w, v in before["wells"].items()} == {"A01": "pending", "B02": "pending"}
        assert before["unplaced"]["total"] == 1 and (before["rows"], before["columns"]) == (8, 12)
        cli(db_url, "pm", "init")
        cli(db_url, "pm", "submit", expect=1)
        after = plate_map(ro, "pm", pid)
        assert {w: v["state"] for w, v in after["wells"].items()} == {"A01": "ok", "B02": "failed"}
        # B02: s1_w1, s1_w2 and the broken s9_w1 (fields 0 and 8, channels 0 and 1: one plane each)
        assert after["wells"]["B02"] == {"state": "failed", "total": 3, "ok": 2, "failed": 1, "pending": 0,
                                         "planes": 3, "fields": 2, "channels": 2, "z": 1, "t": 1}
        write_metaxpress_plate(tmp_path / "b", plate="P", wells=["P24"], sites=1, channels=1)
        cli(db_url, "experiment", "add", "pm", str(tmp_path / "b"), "--plate", "P", "--acquisition", "b")
        grown = plate_map(ro, "pm", pid)
        assert grown["wells"]["P24"]["state"] == "pending" and (grown["rows"], grown["columns"]) == (16, 24)
        files = well_files(ro, "pm", pid, "A01")["files"]
        assert sorted(f["name"] for f in files) == sorted(p.name for p in first if "_A01_" in p.name)
        assert [(f["place"], f["field"], f["channel"], f["z"], f["t"], f["status"]) for f in files] == \
            [("planes", 0, 0, [0], [0], "ok"), ("planes", 0, 1, [0], [0], "ok")]
        b02 = well_files(ro, "pm", pid, "B02")["files"]  # by field, then channel: s1_w1, s1_w2, the broken s9_w1
        assert [f["name"] for f in b02 if f["place"] == "planes"] == \
            sorted(p.name for p in first if "_B02_" in p.name) + ["P_B02_s9_w1.tif"]
    finally:
        ro.close()


def _plate_id(store: Any) -> int:
    from metaextract.store.views import experiment_view

    return int(experiment_view(store, "pm")["plates"][0]["id"])


def test_a_file_without_a_well_in_its_name_takes_the_well_of_its_ome_xml_plate() -> None:
    from metaextract.store.views import _well_from_xml

    ns = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
    xml = (f'<OME xmlns="{ns}"><Plate ID="Plate:0" Name="P"><Well ID="Well:0:0" Row="2" Column="10">'
           '<WellSample ID="WellSample:0:0:0" Index="0"><ImageRef ID="Image:0"/></WellSample></Well></Plate>'
           '<Image ID="Image:0" Name="x"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="4" '
           'SizeY="4" SizeZ="1" SizeC="1" SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
           '<TiffData/></Pixels></Image></OME>')
    assert _well_from_xml(xml) == "C11"  # 0-based row 2 and column 10
    assert _well_from_xml(xml.replace('<Plate ID="Plate:0"', '<Other').replace("</Plate>", "</Other>")) is None


def test_serve_refuses_a_missing_database_in_one_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    out = subprocess.run([sys.executable, "-m", "metaextract", "--db", f"sqlite:///{missing}", "serve"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "no such database file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("values", "text"), [([], ""), ([0], "0"), ([2, 0, 1], "0\u20132"), ([3, 3], "3"),
                                              ([0, 1, 2, 5, 7, 8], "0\u20132, 5, 7\u20138")])
def test_fields_z_and_t_show_as_runs(values: list[int], text: str) -> None:
    from metaextract.web.app import spans

    assert spans(values) == text


def test_warming_fills_every_plate_map_as_a_first_request_would(db_url: str, tmp_path: Path) -> None:
    from metaextract.store.views import _CACHES, experiment_view, open_read_only, plate_map, warm
    from metaextract.synth import write_metaxpress_plate

    write_metaxpress_plate(tmp_path / "a", plate="P", wells=["A01", "B02"], sites=1, channels=2)
    write_metaxpress_plate(tmp_path / "b", plate="Q", wells=["C03"], sites=2, channels=1)
    new_experiment(db_url, "w", tmp_path / "a", "--plate", "P")
    cli(db_url, "experiment", "add", "w", str(tmp_path / "b"), "--plate", "Q")
    warmed, cold = open_read_only(db_url), open_read_only(db_url)
    try:
        assert warm(warmed) == 2
        assert sum(1 for key in _CACHES if key[0] == id(warmed)) == 2
        for p in experiment_view(cold, "w")["plates"]:
            assert plate_map(warmed, "w", p["id"]) == plate_map(cold, "w", p["id"])
        assert warm(warmed, budget=0.0) == 0  # out of time before the first plate
    finally:
        warmed.close()
        cold.close()
