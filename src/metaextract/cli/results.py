"""``metaextract EXP summary`` and ``metaextract EXP export DIR``: extracted results out, streamed.

Registered under the ``step`` group by :mod:`metaextract.cli` through :data:`step_commands`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from metaextract.cli.step import cli_errors
from metaextract.export import FORMATS, ExportError, export, write_csv, write_json, write_table
from metaextract.store.results import STATUS_FILTERS, ExperimentResults, open_experiment

_STATUS = click.option("--status", type=click.Choice(list(STATUS_FILTERS)), default="all", show_default=True,
                       help="ok; failed (also timeout, unsupported); all (pending files too).")


def _open(ctx: click.Context) -> ExperimentResults:
    obj = ctx.find_root().obj
    db = obj.get("db") if isinstance(obj, dict) else None
    results = open_experiment(ctx.obj["experiment"], db=db)
    ctx.call_on_close(results.close)
    return results


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="table: aligned text; json: one object per file; csv: one row per image.")
@_STATUS
@click.pass_context
@cli_errors
def summary(ctx: click.Context, fmt: str, status: str) -> None:
    """One row per image of every file: sizes, pixel type, physical sizes, channels, plate and well,
    engine, status and error (streamed; fine for millions of files)."""
    results = _open(ctx)
    out = sys.stdout
    if fmt == "json":
        write_json(results.files(status), out)
    elif fmt == "csv":
        write_csv(results.rows(status), out)
    else:
        write_table(results.rows(status), out)
    out.flush()


@click.command(name="export")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="ome-xml", show_default=True,
              help="ome-xml: DIR/<plate>/<acquisition>/<relative name>.ome.xml per file; json, csv, parquet: "
                   "one DIR/summary.<format>.")
@_STATUS
@click.option("--force", is_flag=True, help="Overwrite existing files (symlinks are replaced, never followed).")
@click.option("--valid-only", is_flag=True,
              help="ome-xml: skip documents that did not validate against the OME schema.")
@click.option("--per-file", is_flag=True,
              help="ome-xml: one document per image file, also where a fileset's members share its document "
                   "(by default written once per fileset, named after its master file).")
@click.pass_context
@cli_errors
def export_cmd(ctx: click.Context, directory: Path, fmt: str, status: str, force: bool,
               valid_only: bool, per_file: bool) -> None:
    """Write the experiment's OME-XML (one companion file per image file, one per fileset whose members
    share its document) or a table under DIR.

    Refuses to overwrite anything without --force; never writes outside DIR.
    """
    results = _open(ctx)
    try:
        report = export(results, directory, fmt, status=status, force=force, valid_only=valid_only,
                        per_file=per_file)
    except (ExportError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(report))
    for line in report.skipped[:10]:
        click.echo(f"  skipped {line}", err=True)
    if report.skipped_count > 10:
        click.echo(f"  ... and {report.skipped_count - 10} more", err=True)
    _hint_pending(results, ctx.obj["experiment"])


def _hint_pending(results: ExperimentResults, exp: str) -> None:
    """On stderr, when files are not extracted yet: how many, and what to run (an export of 0 files
    otherwise looks like an empty experiment)."""
    pending = results.counts().get("pending", 0)
    if pending:
        click.echo(f"note: {pending} image file{'s are' if pending != 1 else ' is'} still pending (not extracted,"
                   f" so not exported): run `metaextract {exp} submit` (`init` first if it has no jobs), "
                   f"then export again", err=True)


#: Commands the top-level CLI adds under ``metaextract EXP``.
step_commands = [summary, export_cmd]
