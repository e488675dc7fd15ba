"""``metaextract EXP plate [PLATE]``: the plate map of each fileset, from what registration stored.

Registered under the ``step`` group through its ``lazy`` table (:mod:`metaextract.cli.step`).
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import click

from metaextract.cli.step import cli_errors, root_obj

#: The columns of ``--format csv``: one row per well of every fileset.
CSV_COLUMNS = ("plate", "acquisition", "fileset", "kind", "master", "well", "fields", "channels", "z", "t",
               "planes", "ok", "failed", "pending")


def _table(maps: list[dict[str, Any]]) -> None:
    for m in maps:
        fs, axes = m["fileset"], m["axes"]
        names = f" (plate {', '.join(m['plate_names'])})" if m["plate_names"] else ""
        click.echo(f"fileset {fs['id']} {fs['kind']}: {fs['master']}{names}")
        click.echo(f"  {len(m['wells'])} wells x {axes['fields']} fields x {axes['channels']} channels x "
                   f"{axes['z']} Z x {axes['t']} T: {m['planes']} of {m['expected']} planes; files "
                   + ", ".join(f"{n} {s}" for s, n in m["files"].items()))
        click.echo(f"  {'well':<8}{'fields':>7}{'chan':>6}{'Z':>4}{'T':>4}{'planes':>8}{'ok':>7}{'failed':>7}"
                   f"{'pending':>8}")
        for w in m["per_well"]:
            f = w["files"]
            click.echo(f"  {w['well'] or '-':<8}{w['fields']:>7}{w['channels']:>6}{w['z']:>4}{w['t']:>4}"
                       f"{w['planes']:>8}{f['ok']:>7}{f['failed']:>7}{f['pending']:>8}")
        missing = m["missing"]
        if missing["count"]:
            shown = "; ".join(f"{p['well']} field {p['field']} c {p['c']} z {p['z']} t {p['t']}"
                              for p in missing["planes"][:10])
            more = f" … and {missing['count'] - 10} more" if missing["count"] > 10 else ""
            click.echo(f"  missing: {missing['count']} planes: {shown}{more}")
        if m["files_without_place"]:
            click.echo(f"  {m['files_without_place']} files with no place in the layout")
        for note in m["notes"]:
            click.echo(f"  note: {note}")


def _csv(maps: list[dict[str, Any]]) -> None:
    out = csv.writer(sys.stdout)
    out.writerow(CSV_COLUMNS)
    for m in maps:
        fs = m["fileset"]
        for w in m["per_well"]:
            out.writerow([m["plate"], m["acquisition"], fs["id"], fs["kind"], fs["master"], w["well"], w["fields"],
                          w["channels"], w["z"], w["t"], w["planes"], *(w["files"][s] for s in
                                                                        ("ok", "failed", "pending"))])


@click.command(name="plate")
@click.argument("plate", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="table: per fileset its wells; json: the whole map; csv: one row per well.")
@click.pass_context
@cli_errors
def plate_cmd(ctx: click.Context, plate: str | None, fmt: str) -> None:
    """The plate map of every fileset (of PLATE only): wells x fields x channels x Z x T with counts, each
    well's files by state (ok, failed, pending), and what is missing."""
    from metaextract.store.results import open_experiment

    with open_experiment(ctx.obj["experiment"], db=root_obj(ctx).get("db")) as results:
        maps = results.plate_map(plate)
    if plate is not None and not maps:
        raise click.ClickException(f"no fileset of plate {plate!r} in experiment {results.name!r}")
    if fmt == "json":
        json.dump(maps, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    elif fmt == "csv":
        _csv(maps)
    else:
        _table(maps)
    sys.stdout.flush()
