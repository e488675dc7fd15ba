"""Experiments in the database: find one by name or id, create, list, show, delete; register its plates,
acquisitions and files (the rows :mod:`metaextract.experiment`'s folder walk finds)."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Row, Table, delete, func, select
from sqlalchemy.exc import IntegrityError

from metaextract.store.db import Store
from metaextract.store.jobs import hold_experiment
from metaextract.store.models import acquisitions, experiments, image_files, metadata_files, plates, utcnow


class NotFoundError(LookupError):
    """No experiment (or other object) of that id or name."""


def parse_ref(experiment: int | str) -> tuple[str, int | str]:
    """How a reference names an experiment: ``("id", 3)`` for the int ``3`` or the text ``"#3"``, else
    ``("name", text)``. A name is never read as an id (an experiment may be called ``"3"``)."""
    if isinstance(experiment, int) and not isinstance(experiment, bool):
        return "id", experiment
    ref = str(experiment).strip()
    if ref.startswith("#") and ref[1:].isdigit():
        return "id", int(ref[1:])
    return "name", ref


def resolve(conn: Connection, experiment: int | str) -> Row[Any]:
    """The experiment row for a reference: an ``int`` or ``"#3"`` is an id, any other text a name.

    Raises
    ------
    NotFoundError
        When there is none; for an all-digit name that matches nothing, the message says how to give an id.
    """
    kind, ref = parse_ref(experiment)
    column = experiments.c.id if kind == "id" else experiments.c.name
    row = conn.execute(select(experiments).where(column == ref)).one_or_none()
    if row is not None:
        return row
    if kind == "id":
        raise NotFoundError(f"no experiment with id {ref}")
    hint = f" (an id is written #{ref})" if str(ref).isdigit() else ""
    raise NotFoundError(f"no experiment named {ref!r}{hint}")


def find_experiment(store: Store, experiment: int | str) -> tuple[int, str]:
    """``(id, name)`` of the experiment a reference names (:func:`resolve`).

    Raises
    ------
    NotFoundError
        When there is none.
    """
    with store.connect() as conn:
        row = resolve(conn, experiment)
    return int(row.id), str(row.name)


def insert_experiment(store: Store, name: str, description: str | None) -> int:
    """Insert an experiment (its name checked by the caller); returns its id.

    Raises
    ------
    ValueError
        When the name is taken.
    """
    try:
        with store.begin() as conn:
            return int(conn.execute(experiments.insert().values(name=name, description=description,
                                                                created=utcnow())
                                    .returning(experiments.c.id)).scalar_one())
    except IntegrityError:
        raise ValueError(f"an experiment named {name!r} exists already") from None


def _counts(conn: Connection, table: Any, experiment_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(table)
                            .where(table.c.experiment_id == experiment_id)).scalar_one())


def list_experiments(store: Store) -> list[dict[str, Any]]:
    """Every experiment with its number of plates, image files and metadata files."""
    with store.connect() as conn:
        out = []
        for row in conn.execute(select(experiments).order_by(experiments.c.id)).all():
            out.append({"id": row.id, "name": row.name, "description": row.description,
                        "created": row.created.isoformat(timespec="seconds"),
                        "plates": _counts(conn, plates, row.id),
                        "image_files": _counts(conn, image_files, row.id),
                        "metadata_files": _counts(conn, metadata_files, row.id)})
        return out


def show_experiment(store: Store, experiment: int | str) -> dict[str, Any]:
    """An experiment with its plates, acquisitions and file counts."""
    with store.connect() as conn:
        exp = resolve(conn, experiment)
        out: dict[str, Any] = {"id": exp.id, "name": exp.name, "description": exp.description,
                               "created": exp.created.isoformat(timespec="seconds"), "plates": []}
        for p in conn.execute(select(plates).where(plates.c.experiment_id == exp.id).order_by(plates.c.id)):
            acqs = []
            for a in conn.execute(select(acquisitions).where(acquisitions.c.plate_id == p.id)
                                  .order_by(acquisitions.c.id)):
                n_img = conn.execute(select(func.count()).select_from(image_files)
                                     .where(image_files.c.acquisition_id == a.id)).scalar_one()
                n_meta = conn.execute(select(func.count()).select_from(metadata_files)
                                      .where(metadata_files.c.acquisition_id == a.id)).scalar_one()
                acqs.append({"id": a.id, "name": a.name, "root": a.root, "image_files": n_img,
                             "metadata_files": n_meta})
            out["plates"].append({"id": p.id, "name": p.name, "acquisitions": acqs})
        out["image_files"] = _counts(conn, image_files, exp.id)
        out["metadata_files"] = _counts(conn, metadata_files, exp.id)
        return out


def delete_experiment(store: Store, experiment: int | str) -> int:
    """Delete an experiment and everything registered or extracted for it; returns its id.

    Raises
    ------
    JobBusyError
        When one of its jobs is running.
    """
    with store.begin() as conn:
        exp = resolve(conn, experiment)
        hold_experiment(conn, exp.id, exp.name, "delete")  # refuses while a live submission or job holds it
        conn.execute(delete(experiments).where(experiments.c.id == exp.id))
        return int(exp.id)


def _get_or_create(conn: Connection, table: Any, where: dict[str, Any], values: dict[str, Any]) -> Row[Any]:
    cond = [table.c[k] == v for k, v in where.items()]
    row = conn.execute(select(table).where(*cond)).one_or_none()
    if row is None:
        conn.execute(table.insert().values(**where, **values))
        row = conn.execute(select(table).where(*cond)).one()
    return row


_INSERTS: dict[tuple[str, str, tuple[str, ...]], tuple[str, tuple[str, ...] | None]] = {}


def _insert_sql(conn: Connection, table: Table, columns: tuple[str, ...]) -> tuple[str, tuple[str, ...] | None]:
    """The dialect's ``INSERT … ON CONFLICT (acquisition_id, name) DO NOTHING`` for ``columns`` as driver SQL,
    and the order of its positional parameters (None when the driver takes them by name)."""
    key = (conn.dialect.name, table.name, columns)
    if key not in _INSERTS:
        from sqlalchemy import bindparam

        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            stmt: Any = postgresql.insert(table)
        else:  # (not both: the PostgreSQL dialect's import is 40 ms of every `add` on SQLite)
            from sqlalchemy.dialects import sqlite

            stmt = sqlite.insert(table)
        stmt = (stmt.values({c: bindparam(c) for c in columns})
                .on_conflict_do_nothing(index_elements=["acquisition_id", "name"]))
        compiled = stmt.compile(dialect=conn.dialect)
        order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        _INSERTS[key] = (str(compiled), order)
    return _INSERTS[key]


def insert_new(store: Store, what: str, rows: list[dict[str, Any]]) -> None:
    """Insert the rows no file of the acquisition has yet, through the driver's ``executemany`` (the
    columns are plain text and numbers: no conversion is skipped)."""
    if not rows:
        return
    table = file_table(what)
    with store.begin() as conn:
        sql, order = _insert_sql(conn, table, tuple(rows[0]))
        if order:
            pick = itemgetter(*order)
            conn.exec_driver_sql(sql, [pick(row) for row in rows] if len(order) > 1 else [(pick(row),) for row in rows])
        else:
            conn.exec_driver_sql(sql, rows)


def file_table(what: str) -> Table:
    """The table of registered ``"image"`` or ``"metadata"`` files."""
    return image_files if what == "image" else metadata_files


def acquisition_of(store: Store, experiment: int | str, plate: str, acquisition: str, root: str
                   ) -> tuple[int, int, str | None]:
    """``(experiment id, acquisition id, its root)`` of a plate's acquisition, both made when new (the root
    of a new acquisition is ``root``; an existing one keeps its own).

    Raises
    ------
    NotFoundError
        For an unknown experiment.
    """
    with store.begin() as conn:
        exp = resolve(conn, experiment)
        p = _get_or_create(conn, plates, {"experiment_id": exp.id, "name": plate}, {})
        a = _get_or_create(conn, acquisitions, {"plate_id": p.id, "name": acquisition}, {"root": root})
    return int(exp.id), int(a.id), a.root


def acquisition_counts(store: Store, acquisition_id: int) -> dict[str, int]:
    """How many image and metadata files an acquisition holds: ``{"image_files": n, "metadata_files": m}``."""
    with store.connect() as conn:
        return {t.name: int(conn.execute(select(func.count()).select_from(t)
                                         .where(t.c.acquisition_id == acquisition_id)).scalar_one())
                for t in (image_files, metadata_files)}
