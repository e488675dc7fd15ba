"""``metaextract experiment create|add|list|show|delete``: experiments and their registered files."""

from __future__ import annotations

import json
import sys

import click

from metaextract.cli.step import cli_errors, root_obj, verbosity
from metaextract.experiment import (
    Registration,
    add_folder,
    create_experiment,
    delete_experiment,
    ensure_experiment,
    list_experiments,
    show_experiment,
)
from metaextract.store import Store, open_store


def _store(ctx: click.Context) -> Store:
    store = open_store(root_obj(ctx).get("db"))
    ctx.call_on_close(store.close)
    return store


@click.group(name="experiment", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Create experiments and register their folders (EXP is a name, or #ID for an id)."""


@command.command()
@click.argument("name")
@click.option("--description", default=None, help="Free text.")
@click.pass_context
@cli_errors
def create(ctx: click.Context, name: str, description: str | None) -> None:
    """Create experiment NAME; prints its id as the last line."""
    exp_id = create_experiment(_store(ctx), name, description)
    click.echo(f"created experiment {name!r}")
    click.echo(str(exp_id))


@command.command()
@click.argument("experiment", metavar="EXP")
@click.argument("folder", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--plate", default=None, help="Plate name (default: DIR's name).")
@click.option("--acquisition", default=None, help="Acquisition name, unique per plate (default: default).")
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files or folders matching (repeatable).")
@click.option("--create", is_flag=True, help="Create experiment EXP first when there is none of that name.")
@click.pass_context
@cli_errors
def add(ctx: click.Context, experiment: str, folder: str, plate: str | None, acquisition: str | None,
        include: tuple[str, ...], exclude: tuple[str, ...], create: bool) -> None:
    """Register DIR recursively: image files, and metadata files (sidecars) that are not extracted.

    Re-adding a folder adds only new files; symlinks leaving DIR are not followed. Folders or files that
    cannot be read (permissions, paths longer than the system allows) are counted and named on stderr (the
    first 5; -v: all), and the exit code stays 0. With --create a new plate is one command: EXP is created
    when no experiment has that name (an existing one is used as it is).
    """
    store = _store(ctx)
    if create:
        exp_id, created = ensure_experiment(store, experiment)
        if created:
            click.echo(f"created experiment {experiment!r} ({exp_id})")
    reg = add_folder(store, experiment, folder, plate=plate, acquisition=acquisition,
                     include=include, exclude=exclude)
    click.echo(f"plate {reg.plate!r}, acquisition {reg.acquisition!r}: {reg.image_files} image files and "
               f"{reg.metadata_files} metadata files added, {reg.already_registered} already registered, "
               f"{reg.excluded} excluded, {reg.symlinks_skipped} symlinks leaving the folder skipped, "
               f"in {reg.filesets} fileset{'s' if reg.filesets != 1 else ''} ({reg.seconds:.1f} s)")
    if reg.skipped:
        _warn_skipped(reg, verbosity(ctx))


#: Skipped paths listed without -v.
SKIPPED_SHOWN = 5


def _warn_skipped(reg: Registration, verbose: int) -> None:
    """On stderr: how many paths could not be read (one line), then the first few with their reasons (all
    that were kept with -v). The exit code stays 0: what could be read was registered, and the warning
    says what was not; a caller that needs everything checks stderr or ``Registration.skipped``."""
    click.echo(f"warning: {reg.skipped} path{'s' if reg.skipped != 1 else ''} could not be read and "
               f"{'were' if reg.skipped != 1 else 'was'} not registered (a folder's files with it)", err=True)
    shown = reg.skipped_paths if verbose else reg.skipped_paths[:SKIPPED_SHOWN]
    for path, reason in shown:
        click.echo(f"  {reason}: {path}", err=True)
    if len(shown) < reg.skipped:
        click.echo(f"  ... and {reg.skipped - len(shown)} more" + ("" if verbose else " (-v lists them)"),
                   err=True)


@command.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@cli_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """List experiments."""
    rows = list_experiments(_store(ctx))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'id':>4}  {'name':<30} {'plates':>6} {'images':>8} {'metadata':>8}  created")
    for r in rows:
        click.echo(f"{r['id']:>4}  {r['name']:<30} {r['plates']:>6} {r['image_files']:>8} "
                   f"{r['metadata_files']:>8}  {r['created']}")


@command.command()
@click.argument("experiment", metavar="EXP")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@cli_errors
def show(ctx: click.Context, experiment: str, as_json: bool) -> None:
    """Show an experiment's plates and acquisitions."""
    data = show_experiment(_store(ctx), experiment)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"experiment {data['id']} {data['name']!r} (created {data['created']})")
    if data["description"]:
        click.echo(f"  {data['description']}")
    for p in data["plates"]:
        click.echo(f"  plate {p['name']!r}")
        for a in p["acquisitions"]:
            click.echo(f"    acquisition {a['name']!r}: {a['image_files']} image files, "
                       f"{a['metadata_files']} metadata files from {a['root']}")
    click.echo(f"  {data['image_files']} image files, {data['metadata_files']} metadata files")


@command.command()
@click.argument("experiment", metavar="EXP")
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.pass_context
@cli_errors
def delete(ctx: click.Context, experiment: str, yes: bool) -> None:
    """Delete an experiment and everything stored for it (EXP: a name, or #ID).

    Says what it deletes, then asks; without a terminal to ask on, only --yes deletes (exit 1 otherwise).
    """
    store = _store(ctx)
    data = show_experiment(store, experiment)
    what = (f"experiment {data['name']!r} (id {data['id']}): {data['image_files']} image files, "
            f"{data['metadata_files']} metadata files, {len(data['plates'])} plates, with their results and jobs")
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException(f"not deleting {what}: no terminal to confirm on; add --yes")
        if not click.confirm(f"delete {what}?", default=False):
            raise click.ClickException("not deleted")
    delete_experiment(store, f"#{data['id']}")  # by id: the row just described
    click.echo(f"deleted {what}")
