"""Read-only queries behind the web view (:mod:`metaextract.web`): experiments, plate maps, submissions, files.

Every function only reads. :func:`open_read_only` opens the database so that it cannot write either: SQLite
through a ``mode=ro`` URI with ``query_only``, PostgreSQL with ``default_transaction_read_only``; and it
refuses a database whose schema is not at this version's head instead of migrating it.

The well of a file comes from its fileset's planes (:mod:`metaextract.store.filesets`: each plane's well,
field, channel, Z and T, laid out at registration and replaced by the fileset's read) wherever a plane with a
well places it; a file no plane places (a lone file, a projection its layout has no place for) is placed
by :func:`file_wells`: the ``_B03_``/``r02c03`` token of its name, else its OME-XML's
``Plate/Well/WellSample`` (as :mod:`metaextract.store.results` reads it). A plate map is a few aggregated
queries per request (the planes' per-well counts are kept between requests while the planes stay the same).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, create_engine, event, exists, func, inspect, literal_column, select, true
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoResultFound
from sqlalchemy.pool import QueuePool

from metaextract.experiment import NotFoundError, list_experiments, resolve, show_experiment
from metaextract.store.db import Store, StoreError, at_head, check_url, default_url
from metaextract.store.filesets import fileset_documents, filesets, plane_counts, planes
from metaextract.store.models import acquisitions, image_files, job_runs, jobs, plates, submissions
from metaextract.store.reports import FAILED
from metaextract.store.results import FileResult

__all__ = ["FAILED", "NOT_FOUND", "PlateWell", "experiment_view", "experiments_overview", "file_view", "file_wells",
           "grid_shape", "open_read_only", "plate_map", "plate_page", "submission_progress", "warm", "well_files"]

#: Page cache of each read-only SQLite connection (KiB): a plate of 100,000 files' rows and indexes stay in it.
CACHE_KIB = 32768
#: What the functions raise for an experiment, plate, submission or file that does not exist.
NOT_FOUND: tuple[type[Exception], ...] = (NoResultFound, NotFoundError)
#: ``_B03_``-style well token (MetaXpress, CellVoyager, most exports); rows A-Z, AA-AF (1,536 wells), Q-Z in
#: capitals only (a lower-case ``_s12_`` is a site).
_WELL_TOKEN = re.compile(r"(?:^|[_\-. ])([A-Pa-p]|[Q-Z]|A[A-Fa-f])(\d{2})(?=[_\-. ])")
#: Opera/Operetta ``r02c03f04p01-ch2…``: row and column numbers, field, plane, channel.
_RC_TOKEN = re.compile(r"(?:^|[^a-z0-9])r(\d{1,2})c(\d{1,2})(?:f(\d{1,3}))?(?:p(\d{1,3}))?(?:-ch(\d{1,2}))?",
                       re.IGNORECASE)
#: A well label the grid can show: one or two row letters, a two- or three-digit column.
_LABEL = re.compile(r"^[A-Z]{1,2}\d{2,3}$")
_FIELD = re.compile(r"_s(\d{1,4})(?=[_.])")
#: ``_w2`` before ``_``, ``.``, the end, or the UUID MetaXpress may append (``_w16BAA9455-E3E7-…``: channel 1).
_CHANNEL = re.compile(r"_w(\d{1,2})(?=[_.]|$|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-)")


def open_read_only(url: str | None = None) -> Store:
    """Open the metaextract database for reading only (nothing is created, migrated or written).

    Raises
    ------
    StoreError
        For a URL :func:`check_url` refuses, a SQLite file that does not exist, or a schema that is not at
        this version's head (run any other metaextract command on it once to upgrade it).
    """
    url = check_url(url or default_url())
    u = make_url(url)
    if u.drivername.startswith("sqlite"):
        path = os.path.abspath(os.path.expanduser(u.database or ""))
        if not os.path.isfile(path):
            raise StoreError(f"--db {url}: no such database file")
        uri = f"file:{path}?mode=ro"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)

        # One pool shared by the server's threads (a connection is not tied to the thread that opened it),
        # so a request finds a connection whose page cache the previous ones warmed.
        engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True,
                               connect_args={"options": "-c default_transaction_read_only=on"})
    if not at_head(engine):
        engine.dispose()
        raise StoreError(f"--db {u.render_as_string(hide_password=True)}: not a metaextract database of this "
                         "version (run `metaextract experiment list` on it once: serve never migrates)")
    store = Store(engine)
    store.url = u.render_as_string(hide_password=True)
    return store


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _by_status(conn: Connection, *where: Any) -> dict[str, int]:
    return {str(s): int(n) for s, n in conn.execute(
        select(image_files.c.status, func.count()).where(*where).group_by(image_files.c.status)).all()}


def _totals(by_status: dict[str, int]) -> dict[str, int]:
    return {"total": sum(by_status.values()), "ok": by_status.get("ok", 0),
            "failed": sum(by_status.get(s, 0) for s in FAILED), "pending": by_status.get("pending", 0)}


def _submission_row(row: Any) -> dict[str, Any]:
    return {"id": row.id, "state": row.state, "started": _iso(row.started), "finished": _iso(row.finished),
            "host": row.host, "pid": row.pid, "note": row.note}


def experiments_overview(store: Store) -> list[dict[str, Any]]:
    """``experiment list --json`` (every experiment and its counts), each with its files by status
    (``files``: total, ok, failed, pending) and its newest submission (or None)."""
    out = list_experiments(store)
    with store.connect() as conn:
        for exp in out:
            exp["files"] = _totals(_by_status(conn, image_files.c.experiment_id == exp["id"]))
            last = conn.execute(select(submissions).where(submissions.c.experiment_id == exp["id"])
                                .order_by(submissions.c.id.desc()).limit(1)).one_or_none()
            exp["last_submission"] = _submission_row(last) if last is not None else None
    return out


def experiment_view(store: Store, experiment: int | str) -> dict[str, Any]:
    """``experiment show`` of one experiment, each plate with its files by status, and its submissions
    (newest first)."""
    out = show_experiment(store, experiment)
    with store.connect() as conn:
        for plate in out["plates"]:
            acq_ids = [a["id"] for a in plate["acquisitions"]]
            plate["files"] = _totals(_by_status(conn, image_files.c.acquisition_id.in_(acq_ids)))
        out["files"] = _totals(_by_status(conn, image_files.c.experiment_id == out["id"]))
        out["submissions"] = [_submission_row(r) for r in conn.execute(
            select(submissions).where(submissions.c.experiment_id == out["id"])
            .order_by(submissions.c.id.desc())).all()]
    return out


# -- plate maps ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlateWell:
    """Where a file's image lies on its plate: the well (``B03``), and field and channel when the name
    says them (None otherwise)."""

    well: str | None
    field: int | None = None
    channel: int | None = None


def _row_label(n: int) -> str:
    """1-based row number → A..Z, AA..AF."""
    return chr(64 + n) if n <= 26 else "A" + chr(64 + n - 26)


def place_from_name(name: str) -> PlateWell:
    """The well, field and channel a file's name states (MetaXpress ``_B03_s2_w1``, Opera ``r02c03f02-ch1``)."""
    base = os.path.basename(name)
    m = _RC_TOKEN.search(base)
    if m and 1 <= int(m[1]) <= 32 and 1 <= int(m[2]) <= 48:
        return PlateWell(f"{_row_label(int(m[1]))}{int(m[2]):02d}", int(m[3]) if m[3] else None,
                         int(m[5]) if m[5] else None)
    w = _WELL_TOKEN.search(base)
    if w is None:
        return PlateWell(None)
    f, c = _FIELD.search(base), _CHANNEL.search(base)
    return PlateWell(f"{w[1].upper()}{w[2]}", int(f[1]) if f else None, int(c[1]) if c else None)


def _well_from_xml(omexml: str) -> str | None:
    result = FileResult(id=0, plate="", acquisition="", name="", path="", status="ok", omexml=omexml)
    wells = {im["well"] for im in result.images if im.get("well")}
    return min(wells) if wells else None


def _plate_acquisitions(conn: Connection, plate_id: int) -> list[int]:
    return [int(i) for i in conn.execute(select(acquisitions.c.id).where(acquisitions.c.plate_id == plate_id)
                                         .order_by(acquisitions.c.id)).scalars()]


def _plate_files(acquisition_ids: list[int]) -> Any:
    """The image files of a plate (its acquisitions' ids as values: a plan that reads only those files,
    statistics or not)."""
    return image_files.c.acquisition_id.in_(acquisition_ids)


def _raw(conn: Connection, stmt: Any) -> list[tuple[Any, ...]]:
    """All rows of ``stmt`` as plain tuples straight from the driver's cursor (a plate map reads up to a
    hundred thousand rows per request: SQLAlchemy's row objects would cost more than the query)."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()


def file_wells(conn: Connection, acquisition_ids: list[int], ids: list[int] | None = None, where: Any = None
               ) -> dict[int, str | None]:
    """File id → well label of the image files of a plate's acquisitions (all of them, those ``where`` holds
    for, or ``ids``) by
    their names: where no plane places a file, THE source of the plate map.

    The name is read first (one narrow query); only files whose name holds no well and whose OME-XML
    mentions a plate have their OME-XML read, in pages.
    """
    clauses = [_plate_files(acquisition_ids)] if ids is None else [image_files.c.id.in_(ids)]
    if where is not None and ids is None:
        clauses.append(where)
    out: dict[int, str | None] = {}
    for fid, name in _raw(conn, select(image_files.c.id, image_files.c.name).where(*clauses)):
        out[int(fid)] = place_from_name(name).well
    unknown = [fid for fid, w in out.items() if w is None]
    for start in range(0, len(unknown), 500):
        chunk = unknown[start:start + 500]
        for fid, xml in _raw(conn, select(image_files.c.id, image_files.c.omexml).where(
                image_files.c.id.in_(chunk), image_files.c.status == "ok",
                image_files.c.omexml.like("%<Plate%"))):
            out[int(fid)] = _well_from_xml(xml)
    return out


class _PlateIndex:
    """File id → well (by name) of one plate's files that no plane places, kept between requests (a file's
    name never changes once registered).

    Checked on every use against the count and highest id of those files: files registered since are added
    (their ids are higher), anything else (files removed, results cleared to another state) rebuilds it.
    Files whose well came from no name and that were pending then are looked at again once extracted.
    ``wells`` is replaced, never changed in place, so a request that took it reads a consistent mapping
    while another request refreshes the index.
    """

    def __init__(self) -> None:
        self.wells: dict[int, str | None] = {}
        self.max_id = 0
        self.retry: set[int] = set()
        #: The status most files had at the previous request (None: not known yet).
        self.common: str | None = None

    def refresh(self, conn: Connection, acquisition_ids: list[int], where: Any) -> None:
        mine = and_(_plate_files(acquisition_ids), where)
        count, max_id = conn.execute(select(func.count(), func.max(image_files.c.id)).where(mine)).one()
        count, max_id = int(count), int(max_id or 0)
        if max_id < self.max_id or count < len(self.wells):
            self.wells, self.max_id, self.retry = {}, 0, set()
        if max_id > self.max_id:
            new = file_wells(conn, acquisition_ids, None, where) if not self.wells else {
                int(fid): place_from_name(name).well for fid, name in _raw(conn, select(
                    image_files.c.id, image_files.c.name).where(mine, image_files.c.id > self.max_id))}
            self.wells = {**self.wells, **new}
            self.retry |= {fid for fid, w in new.items() if w is None}
            self.max_id = max_id
        if len(self.wells) != count:  # ids below max_id that this index never saw: rebuild once
            self.wells = file_wells(conn, acquisition_ids, None, where)
            self.retry = {fid for fid, w in self.wells.items() if w is None}
        if self.retry:  # wells from no name, pending when seen: read their OME-XML once they are extracted
            done = {int(fid) for (fid,) in _raw(conn, select(image_files.c.id).where(
                mine, image_files.c.status != "pending"))} & self.retry
            wells = dict(self.wells)
            for start in range(0, len(done), 500):
                wells.update(file_wells(conn, acquisition_ids, sorted(done)[start:start + 500]))
            self.wells = wells
            self.retry -= done


def _status_by_file(conn: Connection, acquisition_ids: list[int], index: _PlateIndex, where: Any
                    ) -> tuple[str, dict[int, str]]:
    """A status ``common`` and the status of every file of the index not in it: the files not listed have
    status ``common``, whichever it is. It is the status most common at the index's previous request, so a
    finished plate of 100,000 files reads only its failures (one grouped count the first time)."""
    mine = and_(_plate_files(acquisition_ids), where)
    common = index.common
    if common is None:
        counts = {str(st): int(n) for st, n in conn.execute(
            select(image_files.c.status, func.count()).where(mine).group_by(image_files.c.status))}
        common = max(counts, key=lambda st: counts[st]) if counts else "pending"
    rest = {int(fid): str(st) for fid, st in _raw(conn, select(image_files.c.id, image_files.c.status).where(
        mine, image_files.c.status != common))}
    if len(rest) * 2 > len(index.wells):  # another status is the most common now: ask it next time
        tally: dict[str, int] = {}
        for st in rest.values():
            tally[st] = tally.get(st, 0) + 1
        index.common = max(tally, key=lambda st: tally[st])
    else:
        index.common = common
    return common, rest


def _well_index(label: str) -> tuple[int, int]:
    """``B03`` → (1, 2); ``AB12`` → (27, 11) (0-based row and column)."""
    letters = label.rstrip("0123456789")
    row = ord(letters[-1]) - 65 + (26 if len(letters) == 2 else 0)
    return row, int(label[len(letters):]) - 1


def grid_shape(wells: list[str]) -> tuple[int, int]:
    """(rows, columns) of the smallest standard plate (96, 384, 1536) that holds every well."""
    rows = max((_well_index(w)[0] + 1 for w in wells), default=0)
    cols = max((_well_index(w)[1] + 1 for w in wells), default=0)
    for shape in ((8, 12), (16, 24), (32, 48)):
        if rows <= shape[0] and cols <= shape[1]:
            return shape
    return max(rows, 32), max(cols, 48)


def _well_state(counts: dict[str, int]) -> str:
    if not counts:
        return "empty"
    if any(counts.get(s) for s in FAILED):
        return "failed"
    return "pending" if counts.get("pending") else "ok"


def _plate(conn: Connection, experiment_id: int, plate_id: int) -> Any:
    return conn.execute(select(plates).where(plates.c.id == plate_id, plates.c.experiment_id == experiment_id)
                        ).one()


# -- the planes of a plate's filesets ------------------------------------------------------------------------
def _plate_filesets(conn: Connection, plate_id: int) -> list[dict[str, Any]]:
    """The filesets of the plate's acquisitions (id, kind, view, master, status, layout_from_names), by id."""
    return [{"id": int(r.id), "kind": r.kind, "view": r.view, "master": r.master, "status": r.status,
             "layout_from_names": bool(r.layout_from_names)}
            for r in conn.execute(select(filesets.c.id, filesets.c.kind, filesets.c.view, filesets.c.master,
                                         filesets.c.status, filesets.c.layout_from_names)
                                  .join(acquisitions, acquisitions.c.id == filesets.c.acquisition_id)
                                  .where(acquisitions.c.plate_id == plate_id).order_by(filesets.c.id))]


def _placed(fileset_ids: list[int]) -> Any:
    """The planes of these filesets that have a well (the others place nothing on the plate)."""
    return and_(planes.c.fileset_id.in_(fileset_ids), planes.c.well.is_not(None))


class _PlanesSummary:
    """What a plate's planes say, per well and for the plate: files, planes, and the distinct fields,
    channels, Z and T (counts). Planes change only when a plate is registered again or read (their ids
    then grow): kept between requests, checked on every use against the planes' count and highest id."""

    def __init__(self) -> None:
        self.key: tuple[tuple[int, ...], int, int] | None = None
        self.wells: dict[str, dict[str, int]] = {}
        self.axes: dict[str, int] = {"files": 0, "planes": 0, "fields": 0, "channels": 0, "z": 0, "t": 0}

    def refresh(self, conn: Connection, fileset_ids: list[int]) -> None:
        if not fileset_ids:
            self.key, self.wells = ((), 0, 0), {}
            self.axes = dict.fromkeys(self.axes, 0)
            return
        n, top = conn.execute(select(func.count(), func.max(planes.c.id))
                              .where(planes.c.fileset_id.in_(fileset_ids))).one()
        key = (tuple(fileset_ids), int(n), int(top or 0))
        if key == self.key:
            return
        axes = plane_counts()
        names = ("files", "planes", "fields", "channels", "z", "t")
        placed = _placed(fileset_ids)
        self.wells = {str(r[0]): dict(zip(names, map(int, r[1:]), strict=True)) for r in _raw(
            conn, select(planes.c.well, *axes).where(placed).group_by(planes.c.well))}
        self.axes = dict(zip(names, map(int, conn.execute(select(*axes).where(placed)).one()), strict=True))
        self.key = key


class _PlateCache:
    """One plate's caches: its planes' summary, the status most of its placed files had at the previous
    request, and the well index of its files that no plane places."""

    def __init__(self) -> None:
        #: Held while the caches are brought up to date (a request for another plate never waits for it).
        self.lock = threading.Lock()
        self.planes = _PlanesSummary()
        self.common: str | None = None
        self.rest = _PlateIndex()
        self.rest_key: tuple[tuple[int, ...], int, int] | None = None


_CACHES: dict[tuple[int, int, str], _PlateCache] = {}
_CACHE_LOCK = threading.Lock()


def _no_plane(fileset_ids: list[int]) -> Any:
    """Files of a plate no plane with a well places (a lone file, a file the layout has no place for)."""
    if not fileset_ids:
        return true()
    return ~exists().where(planes.c.image_file_id == image_files.c.id, _placed(fileset_ids))


@dataclass
class _PlateState:
    """A plate's caches brought up to date in one connection: its filesets and whether some of its files
    are placed by no plane (``rest``: their well index, else None)."""

    cache: _PlateCache
    acquisitions: list[int]
    filesets: list[dict[str, Any]]
    rest: _PlateIndex | None

    @property
    def fileset_ids(self) -> list[int]:
        return [f["id"] for f in self.filesets]


def _plate_state(store: Store, conn: Connection, exp: Any, plate_id: int) -> _PlateState:
    key = (id(store), plate_id, f"{exp.id}:{exp.created}")
    acq = _plate_acquisitions(conn, plate_id)
    sets = _plate_filesets(conn, plate_id)
    ids = [f["id"] for f in sets]
    files = int(conn.execute(select(func.count()).select_from(image_files).where(_plate_files(acq))).scalar_one())
    with _CACHE_LOCK:
        cache = _CACHES.setdefault(key, _PlateCache())
    with cache.lock:
        cache.planes.refresh(conn, ids)
        if cache.rest_key != cache.planes.key:  # other files placed: the rest is another set of files
            cache.rest, cache.rest_key = _PlateIndex(), cache.planes.key
        rest = None
        if files > cache.planes.axes["files"]:  # the placed files are some of the plate's: not all
            cache.rest.refresh(conn, acq, _no_plane(ids))
            rest = cache.rest
        return _PlateState(cache, acq, sets, rest)


def _placed_states(conn: Connection, state: _PlateState) -> dict[str, dict[str, int]]:
    """Per well, its placed files by status, in one aggregated query: the files with the status most of
    them had at the previous request are counted as the well's files less the others, so only the others
    are joined with their planes (a finished plate: its failures)."""
    cache = state.cache
    if not cache.planes.wells:
        return {}
    placed = _placed(state.fileset_ids)
    common = cache.common
    if common is None:  # the first request: the plate's most common status
        counts = _by_status(conn, _plate_files(state.acquisitions))
        common = max(counts, key=lambda st: counts[st]) if counts else "pending"
    out: dict[str, dict[str, int]] = {w: {} for w in cache.planes.wells}
    tally: dict[str, int] = {}
    q = (select(planes.c.well, image_files.c.status, func.count(func.distinct(image_files.c.id)))
         .join_from(image_files, planes, planes.c.image_file_id == image_files.c.id)
         .where(placed, _plate_files(state.acquisitions), image_files.c.status != common)
         .group_by(planes.c.well, image_files.c.status))
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # Tables just filled have no statistics until ANALYZE (autovacuum may be off; this read-only view
        # cannot run it): the planner then expects a few planes and probes image_files once per plane, 10x
        # slower than hashing the two tables, which is right at any size a plate map is asked for.
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
    try:
        for well, st, n in _raw(conn, q):
            out.setdefault(str(well), {})[str(st)] = int(n)
            tally[str(st)] = tally.get(str(st), 0) + int(n)
    finally:
        if postgres:
            conn.exec_driver_sql("SET LOCAL enable_nestloop = on")
    for well, counts in out.items():
        left = cache.planes.wells.get(well, {}).get("files", 0) - sum(counts.values())
        if left > 0:
            counts[common] = left
    if sum(tally.values()) * 2 > cache.planes.axes["files"]:  # another status is the most common now
        common = max(tally, key=lambda st: tally[st])
    cache.common = common
    return out


def _plate_map(conn: Connection, exp: Any, plate: Any, state: _PlateState) -> dict[str, Any]:
    per_well = _placed_states(conn, state)
    rest = state.rest
    common: str = "pending"
    others: dict[int, str] = {}
    if rest is not None:
        common, others = _status_by_file(conn, state.acquisitions, rest, _no_plane(state.fileset_ids))
    summary = state.cache.planes
    unplaced: dict[str, int] = {}
    for fid, well in (rest.wells.items() if rest is not None else ()):
        st = others.get(fid, common)
        counts = per_well.setdefault(well, {}) if well else unplaced
        counts[st] = counts.get(st, 0) + 1
    for well in [w for w in per_well if not _LABEL.match(w)]:  # a vendor's well no grid can show: unplaced
        for st, n in per_well.pop(well).items():
            unplaced[st] = unplaced.get(st, 0) + n
    rows, cols = grid_shape(list(per_well))
    none = {"planes": 0, "fields": 0, "channels": 0, "z": 0, "t": 0}
    wells = {w: {"state": _well_state(c), **_totals(c),
                 **{k: v for k, v in summary.wells.get(w, none).items() if k != "files"}}
             for w, c in sorted(per_well.items())}
    return {"experiment": {"id": exp.id, "name": exp.name}, "plate": {"id": plate.id, "name": plate.name},
            "rows": rows, "columns": cols, "row_labels": [_row_label(r + 1) for r in range(rows)],
            "column_labels": [f"{c + 1:02d}" for c in range(cols)], "wells": wells,
            "unplaced": _totals(unplaced), "filesets": state.filesets,
            "axes": {"wells": sum(1 for w in summary.wells if _LABEL.match(w)), **summary.axes}}


def plate_map(store: Store, experiment: int | str, plate_id: int) -> dict[str, Any]:
    """A plate's well grid: ``{"experiment", "plate", "rows", "columns", "row_labels", "column_labels",
    "wells": {label: {"state", "total", "ok", "failed", "pending", "planes", "fields", "channels", "z", "t"}},
    "unplaced": {...}, "filesets": [...], "axes": {...}}``.

    A file's well is where its fileset's planes put it (``planes`` and the distinct ``fields``, ``channels``,
    ``z`` and ``t`` of each well count those planes; ``axes`` counts them over the plate); a file no plane
    places (a lone file, a file its fileset's layout has no place for) is placed by its name, else its
    OME-XML's plate (:func:`file_wells`). ``state`` is ok (all files ok), failed (some failed), pending
    (some not extracted yet); wells without files are absent (empty); files with no known well are counted
    in ``unplaced``. One aggregated query of the placed files' statuses per request; the planes' per-well
    counts are kept between requests while the planes stay the same."""
    return plate_page(store, experiment, plate_id)[0]


def well_files(store: Store, experiment: int | str, plate_id: int, well: str) -> dict[str, Any]:
    """The files of one well and what its planes say.

    Per file: status, engine, one-line error, and its place: from its planes (``place`` "planes": the
    ``fields``, ``channels``, ``z`` and ``t`` it holds, 0-based as in OME, and its number of ``planes``),
    else from its name (``place`` "name": field and channel, 0-based) or its OME-XML's plate (``place``
    "ome-xml"), with per image its size Z, C, T and channel names from its own OME-XML (a fileset member's
    document is the whole fileset's: it says nothing of the file, and is not shown). For the well: the
    ``fields``, ``channels``, ``z`` and ``t`` of its planes and their number (``planes``)."""
    with store.connect() as conn:
        exp = resolve(conn, experiment)
        plate = _plate(conn, int(exp.id), plate_id)
        return _well_files(conn, plate, _plate_state(store, conn, exp, plate_id), exp, well)


def plate_page(store: Store, experiment: int | str, plate_id: int, well: str | None = None
               ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """:func:`plate_map` and, for ``well``, :func:`well_files`, in one connection."""
    with store.connect() as conn:
        exp = resolve(conn, experiment)
        plate = _plate(conn, int(exp.id), plate_id)
        state = _plate_state(store, conn, exp, plate_id)
        return (_plate_map(conn, exp, plate, state),
                None if well is None else _well_files(conn, plate, state, exp, well))


def warm(store: Store, stop: threading.Event | None = None, budget: float = 120.0) -> int:
    """Bring every plate's caches up to date as its first request would (newest experiments first), until
    ``stop`` is set or ``budget`` seconds have passed; returns how many plates. ``serve`` runs it in the
    background as it starts, so the first look at a plate costs what any later one does."""
    with store.connect() as conn:
        todo = conn.execute(select(plates.c.experiment_id, plates.c.id)
                            .order_by(plates.c.experiment_id.desc(), plates.c.id)).all()
    start, done = time.monotonic(), 0
    for experiment_id, plate_id in todo:
        if (stop is not None and stop.is_set()) or time.monotonic() - start > budget:
            break
        try:
            plate_map(store, f"#{experiment_id}", int(plate_id))
        except NOT_FOUND:  # removed since
            continue
        done += 1
    return done


def _spans(values: list[int]) -> list[int]:
    return sorted(set(values))


def _well_files(conn: Connection, plate: Any, state: _PlateState, exp: Any, well: str) -> dict[str, Any]:
    well = well.upper()
    placed: dict[int, list[tuple[int, int | None, int, int, int]]] = {}
    if state.fileset_ids:
        for fid, image, fld, c, z, t in _raw(conn, select(
                planes.c.image_file_id, planes.c.image, planes.c.field, planes.c.c, planes.c.z,
                planes.c.t).where(planes.c.fileset_id.in_(state.fileset_ids), planes.c.well == well)
                .order_by(planes.c.image_file_id, planes.c.plane, planes.c.id)):
            placed.setdefault(int(fid), []).append((int(image), fld, int(c), int(z), int(t)))
    named = sorted(fid for fid, w in state.rest.wells.items() if w == well) if state.rest is not None else []
    cols = [image_files.c.id, image_files.c.name, image_files.c.location, image_files.c.status,
            image_files.c.engine, image_files.c.engine_version, image_files.c.error]
    rows = {int(r.id): r for r in conn.execute(select(*cols).where(image_files.c.id.in_(list(placed))))} \
        if placed else {}
    unnamed = {int(r.id): r for r in conn.execute(select(*cols, image_files.c.omexml).where(
        image_files.c.id.in_(named)))} if named else {}
    files = []
    for fid, ps in placed.items():
        r = rows.get(fid)
        if r is None:
            continue
        fields, channels = _spans([p[1] for p in ps if p[1] is not None]), _spans([p[2] for p in ps])
        files.append({**_file_entry(r), "place": "planes", "planes": len(ps),
                      "field": fields[0] if len(fields) == 1 else None,
                      "channel": channels[0] if len(channels) == 1 else None,
                      "fields": fields, "channels": channels, "z": _spans([p[3] for p in ps]),
                      "t": _spans([p[4] for p in ps]), "images": []})
    for fid in named:
        r = unnamed[fid]
        place = place_from_name(r.name)
        images = FileResult(id=fid, plate=plate.name, acquisition="", name=r.name, path=r.location,
                            status=r.status, omexml=r.omexml).images
        field = None if place.field is None else place.field - 1
        channel = None if place.channel is None else place.channel - 1
        files.append({**_file_entry(r), "place": "name" if place.well == well else "ome-xml", "planes": 0,
                      "field": field, "channel": channel, "fields": [] if field is None else [field],
                      "channels": [] if channel is None else [channel], "z": [], "t": [],
                      "images": [{"image": im["image"], "name": im.get("name"), "size_z": im.get("size_z"),
                                  "size_c": im.get("size_c"), "size_t": im.get("size_t"),
                                  "channels": im.get("channels", [])} for im in images]})
    files.sort(key=lambda f: (f["place"] != "planes", min(f["fields"], default=-1), min(f["z"], default=-1),
                              min(f["channels"], default=-1), min(f["t"], default=-1), f["name"]))
    flat = [p for ps in placed.values() for p in ps]
    return {"experiment": {"id": exp.id, "name": exp.name}, "plate": {"id": plate.id, "name": plate.name},
            "well": well, "planes": len(flat), "fields": _spans([p[1] for p in flat if p[1] is not None]),
            "channels": _spans([p[2] for p in flat]), "z": _spans([p[3] for p in flat]),
            "t": _spans([p[4] for p in flat]), "files": files}


def _file_entry(r: Any) -> dict[str, Any]:
    return {"id": int(r.id), "name": r.name, "path": r.location, "status": r.status, "engine": r.engine,
            "engine_version": r.engine_version, "error": _one_line(r.error)}


def _one_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0][:300] if text and text.strip() else text


# -- submissions ----------------------------------------------------------------------------------------------
def submission_progress(store: Store, submission_id: int, *, failing: int = 50) -> dict[str, Any]:
    """A submission's progress as its monitor counts it (:class:`metaextract.jobs.monitor.Monitor`): jobs
    done / running / failed / queued, the files written since it started (ok, failed), files/s, ETA, and its
    newest ``failing`` failed files with one-line errors.

    As the monitor counts them: a job closed by a run of this submission has that run's state, a job whose
    row says running is running, and one begun by the submission but not running yet (or still pending while
    the submission runs) is queued. Files/s is over the time since the start (until ``finished`` once it ended).
    """
    with store.connect() as conn:
        sub = conn.execute(select(submissions).where(submissions.c.id == submission_id)).one()
        exp = resolve(conn, f"#{sub.experiment_id}")
        runs = {int(j): str(s) for j, s in conn.execute(
            select(job_runs.c.job_id, job_runs.c.state).where(job_runs.c.submission_id == submission_id)
            .order_by(job_runs.c.id)).all()}
        job_rows = conn.execute(select(jobs.c.id, jobs.c.number, jobs.c.state).where(
            jobs.c.experiment_id == sub.experiment_id, jobs.c.phase == "run")).all()
        new = and_(image_files.c.experiment_id == sub.experiment_id, image_files.c.extracted_at >= sub.started)
        done = _by_status(conn, new)
        pending = int(conn.execute(select(func.count()).select_from(image_files).where(
            image_files.c.experiment_id == sub.experiment_id, image_files.c.status == "pending")).scalar_one())
        bad = conn.execute(select(image_files.c.id, image_files.c.name, image_files.c.status, image_files.c.error)
                           .where(new, image_files.c.status.in_(FAILED))
                           .order_by(image_files.c.extracted_at.desc()).limit(failing)).all()
    states = {"done": 0, "running": 0, "failed": 0, "queued": 0, "cancelled": 0}
    for j in job_rows:
        run = runs.get(int(j.id))
        if run is not None and run != "running":
            state: str | None = run  # closed by a run of this submission
        elif j.state == "running":
            state = "running"
        elif run is not None or (j.state == "pending" and sub.state == "running"):
            state = "queued"  # handed to the submission's queue, not started yet
        else:
            state = None  # not part of this submission
        if state is not None:
            states[state if state in states else "failed"] += 1
    end = _aware(sub.finished) if sub.finished is not None else datetime.now(UTC)
    elapsed = max((end - _aware(sub.started)).total_seconds(), 0.0)
    files = _totals(done)
    finished = files["ok"] + files["failed"]
    rate = finished / elapsed if elapsed > 0 else 0.0
    eta = pending / rate if rate > 0 and sub.state == "running" else None
    return {"experiment": {"id": exp.id, "name": exp.name}, "submission": _submission_row(sub),
            "jobs": {"total": sum(states.values()), **states},
            "files": {"ok": files["ok"], "failed": files["failed"], "done": finished, "pending": pending},
            "rate": round(rate, 2), "eta": None if eta is None else round(eta, 1), "elapsed": round(elapsed, 1),
            "failing": [{"id": r.id, "name": r.name, "status": r.status, "error": _one_line(r.error)}
                        for r in bad]}


# -- files ---------------------------------------------------------------------------------------------------
def _has_column(conn: Connection, table: str, column: str) -> bool:
    return any(c["name"] == column for c in inspect(conn).get_columns(table))


def file_view(store: Store, file_id: int) -> dict[str, Any]:
    """One file as ``summary --format json`` gives it (status, engine, error, ``images`` with the key
    fields), with its experiment, its ``notes`` (None where the column does not exist yet) and its
    ``omexml``."""
    with store.connect() as conn:
        notes_col = _has_column(conn, "image_files", "notes")
        cols = [image_files.c.id, image_files.c.experiment_id, plates.c.name.label("plate"),
                acquisitions.c.name.label("acquisition"), image_files.c.name, image_files.c.location,
                image_files.c.status, image_files.c.engine, image_files.c.engine_version, image_files.c.error,
                image_files.c.valid, image_files.c.validation_error, image_files.c.seconds,
                image_files.c.extracted_at, image_files.c.omexml]
        row = conn.execute(select(*cols).join_from(image_files, acquisitions,
                                                   image_files.c.acquisition_id == acquisitions.c.id)
                           .join(plates, acquisitions.c.plate_id == plates.c.id)
                           .where(image_files.c.id == file_id)).one()
        notes = conn.execute(select(literal_column("notes")).select_from(image_files)
                             .where(image_files.c.id == file_id)).scalar() if notes_col else None
        exp = resolve(conn, f"#{row.experiment_id}")
        omexml = row.omexml if row.omexml is not None else fileset_documents(conn, [file_id]).get(file_id)
    result = FileResult(id=row.id, plate=row.plate, acquisition=row.acquisition, name=row.name, path=row.location,
                        status=row.status, engine=row.engine, engine_version=row.engine_version, error=row.error,
                        valid=row.valid, validation_error=row.validation_error, seconds=row.seconds,
                        extracted_at=row.extracted_at, omexml=omexml)
    return {**result.to_dict(), "experiment": {"id": exp.id, "name": exp.name}, "notes": notes,
            "omexml": omexml}
