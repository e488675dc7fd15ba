"""``metaextract show FILE...``: each file's OME-XML, as showinf -omexml-only prints it."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import click

from metaextract.ome import image_summaries
from metaextract.result import Result, one_line


def _fmt_size(v: object) -> str:
    if isinstance(v, list):
        return f"{v[0]:g} {v[1]}" if isinstance(v[0], int | float) else f"{v[0]} {v[1]}"
    return "-" if v is None else str(v)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@click.option("--engine", default="auto", show_default=True, help="auto, bioformats or another engine name.")
@click.option("--summary", is_flag=True, help="One line per image instead of the OME-XML.")
@click.option("--timeout", type=float, default=None,
              help="Per-file timeout in seconds; with it, files are read in a separate process.")
def show(files: tuple[str, ...], engine: str, summary: bool, timeout: float | None) -> None:
    """Print the OME-XML of each FILE (default), or one summary line per image.

    A file that cannot be read gets a one-line error on stderr naming the file and the reason;
    the other files are still printed; the exit code is then 1. Notes (e.g. that a rescue engine read a
    file Bio-Formats cannot) are on stderr too, one line each.
    """
    from metaextract import extract, extract_many

    results: Iterator[Result]
    try:
        if timeout is None:
            results = (extract(f, engine=engine) for f in files)
        else:
            results = extract_many(files, engine=engine, workers=1, timeout=timeout)
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
