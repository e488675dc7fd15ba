"""``metaextract show FILE...``: each file's OME-XML, as showinf -omexml-only prints it."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator, Sequence

import click

from metaextract.ome import image_summaries
from metaextract.result import Result, one_line


def _fmt_size(v: object) -> str:
    if isinstance(v, list):
        return f"{v[0]:g} {v[1]}" if isinstance(v[0], int | float) else f"{v[0]} {v[1]}"
    return "-" if v is None else str(v)


def from_stored_filesets(files: Sequence[str], db: str | None) -> dict[str, Result]:
    """The files (as given) whose document is a stored fileset read's: an image member of an ``.HTD`` plate or
    a Harmony index, registered unchanged in the database ``db`` (``--db``, else the default one, if it exists
    at this version's schema: nothing is created or upgraded), whose fileset was read ok. Bio-Formats gives
    such a file the whole fileset's document, re-reading the plate each time; the stored one is the same
    document ``summary``, the API and ``export`` give. Any trouble with the database: an empty answer, and
    the files are read as usual."""
    from metaextract import filesets

    candidates = [f for f in files if filesets.may_share_document(f)]
    if not candidates:
        return {}
    from metaextract.store.db import open_existing
    from metaextract.store.filesets import stored_member_document

    found: dict[str, Result] = {}
    try:
        store = open_existing(db)
        if store is None:
            return {}
        with store, store.connect() as conn:
            for f in candidates:
                path = os.path.realpath(f)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                doc = stored_member_document(conn, path, st.st_size, st.st_mtime)
                if doc is not None:
                    found[f] = Result(path=f, status="ok", omexml=doc.omexml, engine=doc.engine or "",
                                      engine_version=doc.engine_version or "", seconds=0.0, notes=[
                                          f"its document is fileset #{doc.fileset_id}'s ({doc.kind}, {doc.master}), "
                                          f"as read and stored in {store.url}; --engine bioformats reads it again"])
    except Exception as exc:  # noqa: BLE001 - a lookup that fails only means the files are read as usual
        click.echo(f"metaextract: stored fileset reads not used ({type(exc).__name__}: {one_line(str(exc))})",
                   err=True)
        return {}
    return found


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@click.option("--engine", default="auto", show_default=True, help="auto, bioformats or another engine name.")
@click.option("--summary", is_flag=True, help="One line per image instead of the OME-XML.")
@click.option("--timeout", type=float, default=None,
              help="Per-file timeout in seconds; with it, files are read in a separate process.")
@click.pass_context
def show(ctx: click.Context, files: tuple[str, ...], engine: str, summary: bool, timeout: float | None) -> None:
    """Print the OME-XML of each FILE (default), or one summary line per image.

    A file that cannot be read gets a one-line error on stderr naming the file and the reason;
    the other files are still printed; the exit code is then 1. Notes (e.g. that a rescue engine read a
    file Bio-Formats cannot) are on stderr too, one line each. With the default engine, a TIFF of an
    ImageXpress plate (with its .HTD) or a Harmony index that is registered, unchanged, in the database
    (--db, else the default one) and whose plate was read there is answered from that stored read (the
    whole plate's document, as Bio-Formats gives it for the file) instead of reading the plate again.
    """
    from metaextract import extract, extract_many

    db = (ctx.find_root().obj or {}).get("db")
    stored = from_stored_filesets(files, db) if engine == "auto" else {}
    results: Iterator[Result]
    try:
        if timeout is None:
            results = (stored.get(f) or extract(f, engine=engine) for f in files)
        else:
            rest = [f for f in files if f not in stored]
            results = itertools.chain((stored[f] for f in files if f in stored),
                                      extract_many(rest, engine=engine, workers=1, timeout=timeout) if rest else ())
        failed = 0
        for r in results:
            for line in r.note_lines():  # on stderr: stdout stays the OME-XML alone, as showinf prints it
                click.echo(f"metaextract: {line}", err=True)
            if r.status != "ok" or r.omexml is None:
                failed += 1
                click.echo(f"metaextract: {r.error or r.path + ': ' + r.status}", err=True)
                continue
            if summary:
                try:
                    rows = image_summaries(r.omexml)
                except Exception as exc:  # noqa: BLE001 - one file's summary must not cost the others
                    failed += 1
                    click.echo(f"metaextract: {r.path}: cannot summarise its OME-XML: "
                               f"{type(exc).__name__}: {one_line(str(exc))}", err=True)
                    continue
                for row in rows:
                    phys = " x ".join(_fmt_size(row[k]) for k in ("physical_size_x", "physical_size_y",
                                                                  "physical_size_z"))
                    chans = ",".join(c or "-" for c in row["channels"])
                    click.echo(
                        f"{r.path}\t#{row['image']}\t{row['name'] or '-'}\t"
                        f"X={row['size_x']} Y={row['size_y']} Z={row['size_z']} C={row['size_c']} "
                        f"T={row['size_t']}\t{row['type']}\tchannels={chans or '-'}\tphysical={phys}"
                    )
            else:
                sys.stdout.write(r.omexml.rstrip("\n") + "\n")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if failed:
        sys.exit(1)
