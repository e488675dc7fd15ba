"""Filesets in the database: each acquisition's filesets, their members and every image member's planes.

The queries of three tables (defined in :mod:`.models`; created by migration ``0004``):

- ``filesets``: one per fileset :func:`metaextract.filesets.detect` found in an acquisition (kind, view,
  master path, whether the layout is from names only, the notes of detection and layout), and the
  columns the fileset's one read fills later (status, OME-XML, error, engine, when).
- ``fileset_members``: each registered file of a fileset once (image or metadata file), with its role
  (``master``, ``image`` or ``metadata``); a file belongs to at most one fileset.
- ``planes``: each plane an image member holds, with its place in the fileset's document (image, plate,
  well, field, z, c, t, its index in the file, stage position and time where the vendor files say).

A lone file has no row here: it is a fileset of one, implicitly (:data:`SINGLE`). Every write replaces an
acquisition's filesets whole, in batches (cost linear in the files, never one statement per file).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, delete, func, select

from metaextract.filesets.model import FilesetLayout, FilesetSpec, Place
from metaextract.result import Result, one_line
from metaextract.store.db import Store
from metaextract.store.models import (
    acquisitions,
    fileset_members,
    filesets,
    image_files,
    metadata_files,
    planes,
    plates,
)

__all__ = ["SINGLE", "FilesetFound", "FilesetJob", "StoredDocument", "fileset_documents", "fileset_jobs",
           "member_result", "store_fileset_read", "stored_member_document",
           "acquisition_paths", "file_filesets", "fileset_members", "fileset_places",
           "filesets", "list_filesets", "plane_counts", "plate_map", "planes", "record_read", "replace_filesets"]

#: How a file outside any fileset is shown: a fileset of one, with no row.
SINGLE = "single"
#: Rows per executemany.
BATCH = 5000
#: Most missing planes a plate map names (their count is always exact).
MISSING_KEPT = 50
#: File states as a plate map counts them.
_STATE_OF = {"ok": "ok", "pending": "pending", "failed": "failed", "timeout": "failed", "unsupported": "failed"}

@dataclass
class FilesetFound:
    """One fileset as registration stores it: its spec, its members' view, and its layout (None when the
    layout could not be had, ``notes`` then saying why)."""

    spec: FilesetSpec
    view: str
    layout: FilesetLayout | None
    notes: list[str] = field(default_factory=list)


def acquisition_paths(store: Store, acquisition_id: int) -> list[str]:
    """The absolute paths of every file registered in the acquisition, image and metadata files (what
    fileset detection groups), in one query each."""
    with store.connect() as conn:
        return [str(p) for table in (image_files, metadata_files)
                for p in conn.execute(select(table.c.location).where(table.c.acquisition_id == acquisition_id))
                .scalars()]


def _ids(conn: Connection, table: Any, acquisition_id: int) -> dict[str, int]:
    rows = conn.execute(select(table.c.location, table.c.id).where(table.c.acquisition_id == acquisition_id))
    return {str(loc): int(i) for loc, i in rows}


def _batched(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        conn.execute(table.insert(), rows[start:start + BATCH])


def _plane_row(fileset_id: int, file_id: int, p: Place) -> dict[str, Any]:
    x, y, z = p.position if p.position is not None else (None, None, None)
    return {"fileset_id": fileset_id, "image_file_id": file_id, "image": p.image, "plate": p.plate,
            "well": p.well, "field": p.field, "z": p.z, "c": p.c, "t": p.t, "plane": p.plane,
            "pos_x": x, "pos_y": y, "pos_z": z, "time": p.time}


def replace_filesets(store: Store, experiment_id: int, acquisition_id: int, found: Sequence[FilesetFound]) -> int:
    """Replace the acquisition's filesets by ``found`` (members and planes included) in one transaction;
    returns how many were stored. A member path that is not a registered file of the acquisition is left
    out (it was not registered: excluded, or gone)."""
    with store.begin() as conn:
        conn.execute(delete(filesets).where(filesets.c.acquisition_id == acquisition_id))
        if not found:  # most folders hold no fileset: do not read every file's id back for nothing
            return 0
        images, metas = _ids(conn, image_files, acquisition_id), _ids(conn, metadata_files, acquisition_id)
        members: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for f in found:
            lay = f.layout
            notes = [*f.notes, *(lay.notes if lay is not None else [])]
            fid = int(conn.execute(filesets.insert().values(
                experiment_id=experiment_id, acquisition_id=acquisition_id, kind=f.spec.kind, view=f.view,
                master=f.spec.master, layout_from_names=bool(lay and lay.layout_from_names), notes=notes,
                status="pending").returning(filesets.c.id)).scalar_one())
            roles = {f.spec.master: "master", **dict.fromkeys(f.spec.images, "image"),
                     **dict.fromkeys(f.spec.metadata, "metadata")}
            roles[f.spec.master] = "master"
            for path, role in roles.items():
                if path in images:
                    members.append({"fileset_id": fid, "image_file_id": images[path], "metadata_file_id": None,
                                    "role": role})
                elif path in metas:
                    members.append({"fileset_id": fid, "image_file_id": None, "metadata_file_id": metas[path],
                                    "role": role})
            for path, places in (lay.places.items() if lay is not None else ()):
                file_id = images.get(path)
                if file_id is not None:
                    rows.extend(_plane_row(fid, file_id, p) for p in places)
            if len(rows) >= BATCH:
                _batched(conn, planes, rows)
                rows = []
        _batched(conn, fileset_members, members)
        _batched(conn, planes, rows)
        if conn.dialect.name == "postgresql":
            # fresh statistics for what was just filled (autovacuum may be off, or not yet round): without
            # them the planner takes a plate's tables for a few rows and joins them by nested loops
            conn.exec_driver_sql(f"ANALYZE {image_files.name}, {filesets.name}, {fileset_members.name}, "
                                 f"{planes.name}")
    return len(found)


def record_read(store: Store, fileset_id: int, *, status: str, omexml: str | None = None,
                notes: Iterable[str] = (), error: str | None = None, engine: str | None = None,
                engine_version: str | None = None) -> None:
    """Store the outcome of a fileset's one read: its status, document and error, and its notes added to
    those of detection and layout (each once)."""
    with store.begin() as conn:
        _record(conn, fileset_id, status=status, omexml=omexml, notes=notes, error=error, engine=engine,
                engine_version=engine_version)


def _record(conn: Connection, fileset_id: int, *, status: str, omexml: str | None, notes: Iterable[str],
            error: str | None, engine: str | None, engine_version: str | None, stale: Iterable[str] = ()) -> None:
    from metaextract.store.jobs import storable_text
    from metaextract.store.models import utcnow

    old = conn.execute(select(filesets.c.notes).where(filesets.c.id == fileset_id)).scalar_one_or_none()
    gone = set(stale)
    merged = [n for n in dict.fromkeys([*(old or []), *notes]) if n not in gone]
    conn.execute(filesets.update().where(filesets.c.id == fileset_id).values(
        status=status, omexml=None if omexml is None else storable_text(omexml), notes=merged,
        error=None if error is None else storable_text(error), engine=(engine or None) and engine[:64],
        engine_version=(engine_version or None) and engine_version[:64], extracted_at=utcnow()))


@dataclass(frozen=True)
class FilesetJob:
    """A fileset's job as the runner feeds it: the fileset, its spec rebuilt from the store (kind, master,
    image and metadata members), its acquisition's folder, and the image members read with it (``(image
    file id, path)``; view ``"fileset"`` only — an ``"own"`` fileset's members have jobs of their own)."""

    fileset_id: int
    view: str
    spec: FilesetSpec
    root: str
    members: list[tuple[int, str]]


def fileset_jobs(store: Store, job_ids: Sequence[int]) -> dict[int, FilesetJob]:
    """The fileset jobs among ``job_ids`` (their batch names a fileset), keyed by job id; a few queries."""
    from metaextract.store.models import jobs

    if not job_ids:
        return {}
    with store.connect() as conn:
        owners = {int(b["fileset_id"]): int(j) for j, b in conn.execute(
            select(jobs.c.id, jobs.c.batch).where(jobs.c.id.in_(list(job_ids))))
            if isinstance(b, dict) and b.get("fileset_id") is not None}
        if not owners:
            return {}
        sets = conn.execute(select(filesets.c.id, filesets.c.kind, filesets.c.view, filesets.c.master,
                                   acquisitions.c.root)
                            .join(acquisitions, acquisitions.c.id == filesets.c.acquisition_id)
                            .where(filesets.c.id.in_(list(owners)))).all()
        images: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for fs, fid, loc in conn.execute(
                select(fileset_members.c.fileset_id, image_files.c.id, image_files.c.location)
                .join(image_files, image_files.c.id == fileset_members.c.image_file_id)
                .where(fileset_members.c.fileset_id.in_(list(owners))).order_by(image_files.c.location)):
            images[int(fs)].append((int(fid), str(loc)))
        metas: dict[int, list[str]] = defaultdict(list)
        for fs, loc in conn.execute(
                select(fileset_members.c.fileset_id, metadata_files.c.location)
                .join(metadata_files, metadata_files.c.id == fileset_members.c.metadata_file_id)
                .where(fileset_members.c.fileset_id.in_(list(owners))).order_by(metadata_files.c.location)):
            metas[int(fs)].append(str(loc))
    out: dict[int, FilesetJob] = {}
    for fs_id, kind, view, master, root in sets:
        spec = FilesetSpec(kind=str(kind), master=str(master), images=tuple(p for _, p in images[fs_id]),
                           metadata=tuple(metas[fs_id]))
        out[owners[fs_id]] = FilesetJob(int(fs_id), str(view), spec, str(root),
                                        images[fs_id] if view == "fileset" else [])
    return out


def member_result(job: FilesetJob, path: str, read: Result) -> Result:
    """The Result an image member of a view-``"fileset"`` fileset is stored with after the fileset's read
    ``read``: ok or failed as the fileset, no document of its own (its document is the fileset's, derived
    on demand), the fileset's engine, a note naming the fileset, and for a failure the fileset's one-line
    error (which names the master)."""
    ok = read.status == "ok"
    error = None if ok else f"{path}: read with its fileset #{job.fileset_id}: {one_line(read.error or read.status)}"
    return Result(path=path, status="ok" if ok else "failed", engine=read.engine,
                  engine_version=read.engine_version, error=error,
                  notes=[f"its document is fileset #{job.fileset_id}'s ({job.spec.kind}, {job.spec.master})"])


def store_fileset_read(conn: Connection, job: FilesetJob, read: Result) -> None:
    """Store a fileset's one read (caller's transaction): its outcome (:func:`record_read`'s columns) and,
    where the read gave places (a native read), each member's planes replaced by them (they add what only
    the image files say: stage positions, acquisition times)."""
    from metaextract.filesets import answered_by_read

    # a native read's places replace the layout's, and with them the layout's notes that the read answers
    stale = answered_by_read(job.spec.kind) if read.ok and read.places else ()
    _record(conn, job.fileset_id, status=read.status, omexml=read.omexml if read.ok else None, notes=read.notes,
            error=read.error, engine=read.engine, engine_version=read.engine_version, stale=stale)
    if not read.ok or not read.places:
        return
    ids = {str(loc): int(i) for loc, i in conn.execute(
        select(image_files.c.location, image_files.c.id)
        .join(fileset_members, fileset_members.c.image_file_id == image_files.c.id)
        .where(fileset_members.c.fileset_id == job.fileset_id))}
    rows = [_plane_row(job.fileset_id, ids[path], p) for path, places in read.places.items() if path in ids
            for p in places]
    conn.execute(delete(planes).where(planes.c.fileset_id == job.fileset_id,
                                      planes.c.image_file_id.in_([ids[p] for p in read.places if p in ids])))
    _batched(conn, planes, rows)


def _fileset_dict(row: Any) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "master": row.master}


def file_filesets(conn: Connection, file_ids: Sequence[int]) -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """For each of ``file_ids`` (image files) that is a fileset member: its fileset (id, kind, master) and
    its planes (image, plate, well, field, z, c, t, in plane order). Two queries, whatever the count."""
    if not file_ids:
        return {}
    q = (select(fileset_members.c.image_file_id, filesets.c.id, filesets.c.kind, filesets.c.master)
         .join(filesets, filesets.c.id == fileset_members.c.fileset_id)
         .where(fileset_members.c.image_file_id.in_(file_ids)))
    out: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {
        int(r.image_file_id): (_fileset_dict(r), []) for r in conn.execute(q)}
    q2 = (select(planes.c.image_file_id, planes.c.image, planes.c.plate, planes.c.well, planes.c.field,
                 planes.c.z, planes.c.c, planes.c.t.label("tp"))
          .where(planes.c.image_file_id.in_(file_ids)).order_by(planes.c.image_file_id, planes.c.plane, planes.c.id))
    for r in conn.execute(q2):
        entry = out.get(int(r.image_file_id))
        if entry is not None:
            entry[1].append({"image": r.image, "plate": r.plate, "well": r.well, "field": r.field,
                             "z": r.z, "c": r.c, "t": r.tp})
    return out


def fileset_documents(conn: Connection, file_ids: Sequence[int]) -> dict[int, str]:
    """For each of ``file_ids`` whose document is its fileset's (an image member of a view-``"fileset"``
    fileset read ok): that document, derived on demand — never stored per file — as one string object per
    fileset however many of its members are asked for. Two queries."""
    if not file_ids:
        return {}
    pairs = conn.execute(select(fileset_members.c.image_file_id, filesets.c.id)
                         .join(filesets, filesets.c.id == fileset_members.c.fileset_id)
                         .where(fileset_members.c.image_file_id.in_(list(file_ids)), filesets.c.view == "fileset",
                                filesets.c.status == "ok", filesets.c.omexml.is_not(None))).all()
    if not pairs:
        return {}
    docs = {int(i): str(d) for i, d in conn.execute(
        select(filesets.c.id, filesets.c.omexml).where(filesets.c.id.in_({int(fs) for _, fs in pairs})))}
    return {int(f): docs[int(fs)] for f, fs in pairs}


@dataclass(frozen=True)
class StoredDocument:
    """A member's document as its fileset's stored read gave it (see :func:`stored_member_document`)."""

    fileset_id: int
    kind: str
    master: str
    engine: str | None
    engine_version: str | None
    omexml: str


def stored_member_document(conn: Connection, path: str, size: int, mtime: float) -> StoredDocument | None:
    """The document of the image file at ``path`` (absolute) when it is registered, unchanged since (the same
    size and mtime), as an image member of a view-``"fileset"`` fileset whose read is stored ok — its
    fileset's document, as ``summary``, the API and ``export`` give it; the newest such fileset, else None.
    One query."""
    q = (select(filesets.c.id, filesets.c.kind, filesets.c.master, filesets.c.engine, filesets.c.engine_version,
                filesets.c.omexml, image_files.c.mtime)
         .join(fileset_members, fileset_members.c.fileset_id == filesets.c.id)
         .join(image_files, image_files.c.id == fileset_members.c.image_file_id)
         .where(image_files.c.location == path, image_files.c.size == size, filesets.c.view == "fileset",
                filesets.c.status == "ok", filesets.c.omexml.is_not(None))
         .order_by(filesets.c.id.desc()))
    for r in conn.execute(q):
        if abs(float(r.mtime) - mtime) < 1e-6:
            return StoredDocument(int(r.id), str(r.kind), str(r.master), r.engine, r.engine_version, str(r.omexml))
    return None


def fileset_places(conn: Connection, fileset_id: int) -> dict[str, list[Place]]:
    """Every image member's stored planes as :class:`~metaextract.filesets.model.Place` objects, keyed by
    the file's absolute path (in plane order); a member with no plane maps to ``[]``."""
    out: dict[str, list[Place]] = {
        str(loc): [] for loc in conn.execute(
            select(image_files.c.location).join(fileset_members, fileset_members.c.image_file_id == image_files.c.id)
            .where(fileset_members.c.fileset_id == fileset_id)).scalars()}
    q = (select(image_files.c.location, planes).join(image_files, image_files.c.id == planes.c.image_file_id)
         .where(planes.c.fileset_id == fileset_id).order_by(planes.c.image_file_id, planes.c.plane, planes.c.id))
    for r in conn.execute(q):
        position = None if (r.pos_x, r.pos_y, r.pos_z) == (None, None, None) else (r.pos_x, r.pos_y, r.pos_z)
        out.setdefault(str(r.location), []).append(Place(
            image=r.image, z=r.z, c=r.c, t=r._mapping["t"], plate=r.plate, well=r.well, field=r.field, plane=r.plane,
            position=position, time=r.time))
    return out


def list_filesets(conn: Connection, experiment_id: int) -> list[dict[str, Any]]:
    """Every fileset of the experiment: id, kind, master, view, plate and acquisition, status, notes, and
    its counts (image and metadata members, planes)."""
    members = (select(fileset_members.c.fileset_id,
                      func.count(fileset_members.c.image_file_id).label("images"),
                      func.count(fileset_members.c.metadata_file_id).label("metadata"))
               .group_by(fileset_members.c.fileset_id).subquery())
    n_planes = (select(planes.c.fileset_id, func.count().label("planes"))
                .group_by(planes.c.fileset_id).subquery())
    q = (select(filesets, plates.c.name.label("plate_name"), acquisitions.c.name.label("acquisition"),
                members.c.images, members.c.metadata, n_planes.c.planes)
         .join(acquisitions, acquisitions.c.id == filesets.c.acquisition_id)
         .join(plates, plates.c.id == acquisitions.c.plate_id)
         .outerjoin(members, members.c.fileset_id == filesets.c.id)
         .outerjoin(n_planes, n_planes.c.fileset_id == filesets.c.id)
         .where(filesets.c.experiment_id == experiment_id).order_by(filesets.c.id))
    return [{"id": r.id, "kind": r.kind, "master": r.master, "view": r.view, "plate": r.plate_name,
             "acquisition": r.acquisition, "layout_from_names": r.layout_from_names, "status": r.status,
             "notes": list(r.notes or []),
             "counts": {"images": int(r.images or 0), "metadata": int(r.metadata or 0),
                        "planes": int(r.planes or 0)}}
            for r in conn.execute(q)]


def plate_map(conn: Connection, experiment_id: int, plate: str | None = None) -> list[dict[str, Any]]:
    """The plate map of every fileset of the experiment (of plate ``plate`` only when given: the registered
    plate's name or the plate's name in the layout): per fileset its axes (wells, fields, channels, Z, T),
    planes present and expected, per well the same counts and its files by state (ok, failed, pending),
    and what is missing: the (well, field, c, z, t) with no plane (the first :data:`MISSING_KEPT`, their
    count exact) and the fileset's notes (a read's notes say what the layout cannot, e.g. wavelengths not
    collected at some time points). Aggregates in the database; only wells with gaps are listed plane by
    plane."""
    out = []
    for fs in list_filesets(conn, experiment_id):
        names = {r[0] for r in conn.execute(select(planes.c.plate).where(planes.c.fileset_id == fs["id"])
                                            .distinct())}
        if plate is not None and plate != fs["plate"] and plate not in names:
            continue
        out.append(_fileset_map(conn, fs, sorted(n for n in names if n is not None)))
    return out


def _axes(conn: Connection, fileset_id: int) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = {}
    for axis in ("well", "field", "c", "z", "t"):
        col = planes.c[axis]
        values = conn.execute(select(col).where(planes.c.fileset_id == fileset_id).distinct()).scalars()
        axes[axis] = sorted(values, key=lambda v: (v is None, v))
    return axes


def plane_counts() -> tuple[Any, ...]:
    """What a plate map counts of a set of planes (per well when grouped so): its files, planes, fields,
    channels, Z and T, labelled ``files``, ``planes``, ``fields``, ``channels``, ``z`` and ``n_t`` (a row's
    ``t`` is taken), in that order; the CLI's map and the web view's use the same."""
    return (func.count(func.distinct(planes.c.image_file_id)).label("files"), func.count().label("planes"),
            func.count(func.distinct(planes.c.field)).label("fields"),
            func.count(func.distinct(planes.c.c)).label("channels"),
            func.count(func.distinct(planes.c.z)).label("z"), func.count(func.distinct(planes.c.t)).label("n_t"))


def _fileset_map(conn: Connection, fs: dict[str, Any], names: list[str]) -> dict[str, Any]:
    fid = fs["id"]
    axes = _axes(conn, fid)
    per_well = select(planes.c.well, *plane_counts()).where(planes.c.fileset_id == fid).group_by(planes.c.well)
    states = (select(planes.c.well, image_files.c.status, func.count(func.distinct(planes.c.image_file_id)))
              .join(image_files, image_files.c.id == planes.c.image_file_id)
              .where(planes.c.fileset_id == fid).group_by(planes.c.well, image_files.c.status))
    files: dict[Any, dict[str, int]] = defaultdict(lambda: {"ok": 0, "failed": 0, "pending": 0})
    for well, status, n in conn.execute(states):
        files[well][_STATE_OF.get(status, "failed")] += int(n)
    per_plane = len(axes["field"]) * len(axes["c"]) * len(axes["z"]) * len(axes["t"])
    wells: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    n_missing = 0
    for r in conn.execute(per_well):
        wells.append({"well": r.well, "planes": int(r.planes), "fields": int(r.fields), "channels": int(r.channels),
                      "z": int(r.z), "t": int(r.n_t), "files": dict(files[r.well])})
        if r.planes < per_plane:
            gaps = _gaps(conn, fid, r.well, axes)
            n_missing += len(gaps)
            missing.extend(gaps[:max(0, MISSING_KEPT - len(missing))])
    wells.sort(key=lambda w: (w["well"] is None, w["well"] or ""))
    unplaced = conn.execute(
        select(func.count()).select_from(fileset_members)
        .where(fileset_members.c.fileset_id == fid, fileset_members.c.image_file_id.is_not(None),
               ~fileset_members.c.image_file_id.in_(select(planes.c.image_file_id)
                                                    .where(planes.c.fileset_id == fid)))).scalar_one()
    return {"fileset": {k: fs[k] for k in ("id", "kind", "master", "view", "status", "layout_from_names")},
            "plate": fs["plate"], "acquisition": fs["acquisition"], "plate_names": names,
            "wells": [w["well"] for w in wells],
            "axes": {"fields": len(axes["field"]), "channels": len(axes["c"]), "z": len(axes["z"]),
                     "t": len(axes["t"])},
            "planes": fs["counts"]["planes"], "expected": len(wells) * per_plane,
            "files": {s: sum(w["files"][s] for w in wells) for s in ("ok", "failed", "pending")},
            "files_without_place": int(unplaced),
            "per_well": wells, "missing": {"count": n_missing, "planes": missing}, "notes": fs["notes"]}


def _gaps(conn: Connection, fileset_id: int, well: str | None, axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The (field, c, z, t) of ``well`` with no plane, in that order."""
    have = {tuple(row) for row in conn.execute(
        select(planes.c.field, planes.c.c, planes.c.z, planes.c.t)
        .where(planes.c.fileset_id == fileset_id, planes.c.well.is_(None) if well is None else planes.c.well == well))}
    return [{"well": well, "field": f, "c": c, "z": z, "t": t}
            for f in axes["field"] for c in axes["c"] for z in axes["z"] for t in axes["t"]
            if (f, c, z, t) not in have]
