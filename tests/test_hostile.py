"""The hostile corpus (tests/hostile.py) through `run` and `submit`: every file recorded, nothing hangs,
nothing outside the registered folder is read, no entity expanded, no network opened."""

from __future__ import annotations

import ctypes
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from metaextract.store import open_store
from metaextract.store.models import image_files, metadata_files

from . import hostile

EXE = str(Path(sys.executable).parent / "metaextract")
TIMEOUT = 10  # seconds per file


class Listener:
    """A TCP port that counts every connection made to it (external entities name it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.connections: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(1)
            try:
                self.connections.append(conn.recv(200))
            except OSError:
                self.connections.append(b"")
            conn.close()


class OpenWatch:
    """inotify on the outside folder: any open or read of it, or of a file in it, is an event."""

    IN_ACCESS, IN_OPEN = 0x1, 0x20

    def __init__(self, folder: Path) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0
        assert self.libc.inotify_add_watch(self.fd, os.fsencode(folder), self.IN_ACCESS | self.IN_OPEN) >= 0

    def events(self) -> bytes:
        try:
            return os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        os.close(self.fd)


def cli(db_url: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``metaextract --db URL ARGS`` in a subprocess that, even as root, cannot read a chmod-000 file."""
    cmd = [EXE, "--db", db_url, *args]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, errors="replace")


@pytest.fixture
def hostile_set(tmp_path: Path, corpus: Path) -> Iterator[tuple[Path, list[hostile.Case], Listener]]:
    listener = Listener()
    root = tmp_path / "plate"
    cases = hostile.build(root, corpus, http_port=listener.port)
    yield root, cases, listener
    listener.sock.close()
    hostile.restore_permissions(tmp_path)


def test_the_corpus_is_big_and_varied(hostile_set: tuple[Path, list[hostile.Case], Listener]) -> None:
    _root, cases, _ = hostile_set
    assert len(cases) >= 60
    names = {c.name for c in cases}
    for needed in ("zero-byte", "czi-as-tif", "xxe-local-file", "xxe-http", "billion-laughs", "deep-nesting",
                   "2^31-planes", "2^40-pixels-tiff", "ifd-self-loop", "non-utf8-name", "unreadable",
                   "vanished", "symlink-loop", "symlink-outside", "directory-named-like-image"):
        assert needed in names
    assert len({c.rel for c in cases}) == len(cases)


def _register(db_url: str, root: Path) -> str:
    for args in (("experiment", "create", "hostile"), ("experiment", "add", "hostile", str(root))):
        out = cli(db_url, *args)
        assert out.returncode == 0, out.stdout + out.stderr
    out = cli(db_url, "hostile", "init", "--batch-size", "1000")
    assert out.returncode == 0, out.stdout + out.stderr
    return "hostile"


def _stored(db_url: str) -> tuple[dict[bytes, tuple[str, str | None, str | None]], set[bytes]]:
    store = open_store(db_url)
    try:
        with store.connect() as conn:
            rows = conn.execute(select(image_files.c.name, image_files.c.status, image_files.c.error,
                                       image_files.c.omexml)).all()
            meta = conn.execute(select(metadata_files.c.name)).scalars().all()
    finally:
        store.close()
    # a name that is not UTF-8 is stored with \xNN escapes (metaextract.experiment.storable_name)
    def enc(s: str) -> bytes:
        return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes.fromhex(m.group(1).decode()), os.fsencode(s))

    return {enc(r.name): (r.status, r.error, r.omexml) for r in rows}, {enc(m) for m in meta}


def _check_outcomes(db_url: str, root: Path, cases: list[hostile.Case], listener: Listener,
                    watch: OpenWatch) -> None:
    stored, meta = _stored(db_url)
    wrong = []
    for case in cases:
        row = stored.get(case.rel)
        if not case.registered:
            if row is not None:
                wrong.append(f"{case.name}: registered although it must not be ({row[0]})")
            continue
        if row is None:
            if not ("metadata" in case.statuses and case.rel in meta):
                wrong.append(f"{case.name}: not registered")
            continue
        status, error, omexml = row
        if status not in case.statuses:
            wrong.append(f"{case.name}: {status} ({error}), expected {sorted(case.statuses)}")
            continue
        if status != "ok":
            base = re.match(rb"[\x20-\x7e]*", case.rel.rsplit(b"/", 1)[-1]).group().decode()  # type: ignore[union-attr]
            if not error or "\n" in error or base not in error:
                wrong.append(f"{case.name}: error {error!r} is not one line naming the file")
            elif not all(e.lower() in error.lower() for e in case.error):
                wrong.append(f"{case.name}: error {error!r} lacks {case.error}")
        for text in (error, omexml):
            if text and hostile.TOKEN in text:
                wrong.append(f"{case.name}: the canary's token was stored: something outside was read")
    assert not wrong, "\n".join(wrong)
    assert not [s for s, _, _ in stored.values() if s == "pending"]
    assert listener.connections == [], f"the network was opened: {listener.connections[:2]}"
    assert watch.events() == b"", "a file outside the registered folder was opened"


def test_run_records_every_hostile_file(db_url: str, hostile_set: tuple[Path, list[hostile.Case], Listener]
                                         ) -> None:
    root, cases, listener = hostile_set
    watch = OpenWatch(root.parent / hostile.OUTSIDE)
    try:
        name = _register(db_url, root)
        hostile.damage(root, cases)
        n = sum(c.registered for c in cases)
        t0 = time.monotonic()
        out = cli(db_url, name, "run", "--job", "1", "--workers", "2", "--timeout", str(TIMEOUT))
        took = time.monotonic() - t0
        assert out.returncode == 1, out.stdout + out.stderr  # some files failed, and the run said so
        assert re.search(r"job 1: failed; \d+ of \d+ files ok", out.stdout), out.stdout + out.stderr
        assert "Traceback" not in out.stderr
        assert took < n * TIMEOUT / 2 + 120  # no file held the run past its timeout
        _check_outcomes(db_url, root, cases, listener, watch)
    finally:
        watch.close()


def test_submit_records_every_hostile_file(sqlite_url: str,
                                           hostile_set: tuple[Path, list[hostile.Case], Listener]) -> None:
    root, cases, listener = hostile_set
    watch = OpenWatch(root.parent / hostile.OUTSIDE)
    try:
        name = _register(sqlite_url, root)
        out = cli(sqlite_url, name, "init", "--batch-size", "25")
        assert out.returncode == 0, out.stderr
        hostile.damage(root, cases)
        out = cli(sqlite_url, name, "submit", "--cores", "2", "--interval", "5", "--timeout", str(TIMEOUT))
        assert out.returncode == 1, out.stdout + out.stderr
        assert "Traceback" not in out.stderr, out.stderr
        _check_outcomes(sqlite_url, root, cases, listener, watch)
    finally:
        watch.close()


def test_a_folder_link_retargeted_outside_is_refused(tmp_path: Path) -> None:
    """The folder part of a path is resolved at most every DIR_TTL seconds; after that a folder symlink
    re-pointed outside the registered folder is caught, as a file symlink is at once."""
    from metaextract.extraction import fence

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    for folder in (root / "real", outside):
        (folder / "a.tif").write_bytes(b"II*\x00")
    (root / "sub").symlink_to(root / "real")
    path = str(root / "sub" / "a.tif")
    assert fence.outside_root(path, str(root)) is None
    (root / "sub").unlink()
    (root / "sub").symlink_to(outside)
    time.sleep(fence.DIR_TTL * 1.5)
    assert "outside the registered folder" in (fence.outside_root(path, str(root)) or "")
    (root / "real" / "b.tif").symlink_to(outside / "a.tif")  # a file link is resolved every time
    assert "outside the registered folder" in (fence.outside_root(str(root / "real" / "b.tif"), str(root)) or "")
