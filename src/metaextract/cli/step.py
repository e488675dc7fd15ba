"""``metaextract [step] EXP init|run|info|log|cleanup|status``: the seed's step commands.

A thin layer over :class:`metaextract.jobs.step.MetadataExtractor`. Other command modules extend the group::

    from .step import command as step_group, cli_errors, open_extractor, submission_options
    step_group.add_command(submit)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from metaextract.cli.errors import cli_errors
from metaextract.cli.lazy import LazyGroup
from metaextract.jobs.arguments import NO_COLLECT, MetaextractBatchArguments, MetaextractSubmissionArguments

if TYPE_CHECKING:
    from metaextract.jobs.step import MetadataExtractor
    from metaextract.result import Result

__all__ = ["cli_errors", "command", "open_extractor", "submission_options", "verbosity"]

F = TypeVar("F", bound=Callable[..., Any])
_SUB = MetaextractSubmissionArguments()


def root_obj(ctx: click.Context) -> dict[str, Any]:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, dict) else {}


def verbosity(ctx: click.Context) -> int:
    return int(root_obj(ctx).get("verbose") or 0)


def open_extractor(ctx: click.Context, **kwargs: Any) -> MetadataExtractor:
    """The MetadataExtractor of the group's EXP on the ``--db`` database; closed with the context."""
    from metaextract.jobs.step import MetadataExtractor

    ext = MetadataExtractor(ctx.obj["experiment"], db=root_obj(ctx).get("db"), **kwargs)
    ctx.call_on_close(ext.close)
    return ext


def submission_options(fn: F) -> F:
    """``--cores --memory --duration --queue --timeout`` with MetaextractSubmissionArguments' defaults."""
    for opt in reversed([
        click.option("--cores", type=int, default=_SUB.cores, show_default=True, help="CPU cores per job."),
        click.option("--memory", type=int, default=_SUB.memory, show_default=True,
                     help="Memory per job, MB (submit: per SLURM job; given explicitly, also each Dask "
                          "worker's limit, or, with --cluster local, each extraction process's Java heap)."),
        click.option("--duration", default=_SUB.duration, show_default=True, help="Wall time, [D-]HH:MM:SS."),
        click.option("--queue", default=_SUB.queue, help="Queue or partition (cluster schedulers)."),
        click.option("--timeout", type=float, default=_SUB.timeout, show_default=True,
                     help="Seconds per file before its process is killed."),
    ]):
        fn = opt(fn)
    return fn


_force_option = click.option(
    "--force", is_flag=True,
    help="Take over a submission or job that looks alive (its heartbeat is recent): only when you know its "
         "process is dead.")


def _tell(message: str) -> None:
    click.echo(f"metaextract: {message}", err=True)


def _phase_option(default: str) -> Callable[[F], F]:
    return click.option("--phase", type=click.Choice(["init", "run", "collect"]), default=default,
                        show_default=True, help="The job's phase (this step has no collect phase).")


def _job_number(job: int | None, phase: str) -> int:
    if phase == "collect":
        raise click.UsageError(NO_COLLECT)
    if job is None:
        if phase == "init":
            return 1
        raise click.UsageError("--job N is required for the run phase")
    return job


class _StepGroup(LazyGroup):
    """``step EXP COMMAND``: with a lone word, says that it was taken as EXP and which commands may follow
    (click's own "Missing command." leaves a mistyped command looking like an experiment). ``submit``,
    ``resubmit``, ``summary`` and ``export`` are imported when used."""

    lazy = {
        "submit": ("metaextract.cli.submit", "submit_cmd",
                   "Run every job that is not done and monitor it (here, in one process per core, by default)."),
        "resubmit": ("metaextract.cli.submit", "resubmit_cmd",
                     "Rerun the jobs that are not done or have failed files (every job with --all)."),
        "summary": ("metaextract.cli.results", "summary",
                    "One row per image of every file: sizes, pixel type, physical sizes, channels, plate and well, "
                    "engine, status and error (streamed; fine for millions of files)."),
        "plate": ("metaextract.cli.plate", "plate_cmd",
                  "The plate map of every fileset (of PLATE only): wells x fields x channels x Z x T with counts, "
                  "each well's files by state (ok, failed, pending), and what is missing."),
        "export": ("metaextract.cli.results", "export_cmd",
                   "Write the experiment's OME-XML (one companion file per image file, one per fileset whose "
                   "members share its document) or a table under DIR."),
    }

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        words = [a for a in args if not a.startswith("-")]
        if len(words) == 1 and len(words) == len(args) and not ctx.resilient_parsing:
            raise click.UsageError(f"{words[0]!r} was taken as the experiment EXP, and no command follows it: "
                                   f"metaextract EXP {'|'.join(self.list_commands(ctx))}")
        return super().parse_args(ctx, args)


@click.group(name="step", cls=_StepGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("experiment", metavar="EXP")
@click.pass_context
def command(ctx: click.Context, experiment: str) -> None:
    """The metaextract step of experiment EXP (its name, or #ID): init, run, info, log, cleanup, status.

    `metaextract EXP COMMAND` is the same as `metaextract step EXP COMMAND`.
    """
    ctx.ensure_object(dict)
    ctx.obj["experiment"] = experiment


@command.command()
@click.option("--batch-size", type=int, default=MetaextractBatchArguments.batch_size, show_default=True,
              help="Image files per run job (a batch never spans two acquisitions).")
@_force_option
@click.pass_context
@cli_errors
def init(ctx: click.Context, batch_size: int, force: bool) -> None:
    """Delete previous output, cut the image files into batches and store one run job per batch."""
    args = MetaextractBatchArguments(batch_size=batch_size)
    ext = open_extractor(ctx)
    n = ext.init(args, force=force, notify=_tell)
    click.echo(f"{ext.experiment_name}: {n} run job{'s' if n != 1 else ''}")


@command.command()
@click.option("--job", type=int, required=True, metavar="N", help="The run job's number.")
@click.option("--assume-clean-state", is_flag=True, help="Do not clear the job's earlier results first.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Extraction processes (default: CPUs).")
@click.option("--timeout", type=float, default=_SUB.timeout, show_default=True,
              help="Seconds per file before its process is killed.")
@click.option("--engine", default="auto", show_default=True, help="auto, bioformats or another engine.")
@click.pass_context
@cli_errors
def run(ctx: click.Context, job: int, assume_clean_state: bool, workers: int | None, timeout: float,
        engine: str) -> None:
    """Run job N here with the worker pool; exit 0 when every file is ok, 1 when any failed."""
    verbose = verbosity(ctx)

    def show(r: Result) -> None:
        if verbose:
            click.echo(f"{r.status}\t{r.seconds:.2f}s\t{r.path}" + (f"\t{r.error}" if r.error else ""))

    ext = open_extractor(ctx, workers=workers, timeout=timeout, engine=engine)
    summary = ext.run_job(job, assume_clean_state=assume_clean_state, on_result=show)
    click.echo(str(summary))
    if summary.exit_code:
        click.echo(f"see: metaextract {ext.experiment_name} log --job {job}", err=True)
    sys.exit(summary.exit_code)


@command.command()
@click.option("--job", type=int, default=None, metavar="N", help="The job's number (init: 1).")
@_phase_option("run")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@cli_errors
def info(ctx: click.Context, job: int | None, phase: str, as_json: bool) -> None:
    """Describe a job: its batch, state, files and runs."""
    number = _job_number(job, phase)
    data = open_extractor(ctx).info(number, phase)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{phase} job {data['id']}: {data['state']}"
               + (f" (host {data['host']}, pid {data['pid']})" if data["host"] else ""))
    for k, v in data["batch"].items():
        click.echo(f"  {k}: {v}")
    for f in data["files"]:
        click.echo(f"  {f['status']:<11} {f['name']}" + (f"  {f['error']}" if f["error"] else ""))
    for r in data["runs"]:
        click.echo(f"  run {r['attempt']}: {r['state']} on {r['host']} {r['started']} - {r['ended'] or '...'}"
                   f" exit {r['exit_code'] if r['exit_code'] is not None else '-'}")


@command.command()
@click.option("--job", type=int, default=None, metavar="N", help="The job's number (init: 1).")
@_phase_option("run")
@click.pass_context
@cli_errors
def log(ctx: click.Context, job: int | None, phase: str) -> None:
    """Print the newest run's log of a job, per-file errors included."""
    number = _job_number(job, phase)
    click.echo(open_extractor(ctx).log(number, phase), nl=False)


@command.command()
@_force_option
@click.pass_context
@cli_errors
def cleanup(ctx: click.Context, force: bool) -> None:
    """Clear all extracted results of the experiment (one transaction); jobs go back to pending."""
    ext = open_extractor(ctx)
    n = ext.delete_previous_job_output(force=force, notify=_tell)
    click.echo(f"{ext.experiment_name}: cleared the results of {n} file{'s' if n != 1 else ''}")


@command.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@cli_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Per job state and file counts, and totals."""
    # what MetadataExtractor.status() reports, without importing the job machinery: status is typed often
    from metaextract.store import open_store
    from metaextract.store.experiments import find_experiment
    from metaextract.store.reports import status as report

    with open_store(root_obj(ctx).get("db")) as store:
        data = report(store, find_experiment(store, ctx.obj["experiment"])[0])
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    exp, files = data["experiment"], data["files"]
    click.echo(f"experiment {exp['id']} {exp['name']!r}")
    click.echo(f"{'job':>5}  {'state':<10} {'files':>6} {'ok':>6} {'failed':>6} {'pending':>7}")
    for j in data["jobs"]:
        state = j["state"] + ("?" if j["stale"] else "")
        fs = j.get("fileset")
        click.echo(f"{j['id']:>5}  {state:<10} {j['files']:>6} {j['files_ok']:>6} {j['files_failed']:>6} "
                   f"{j['files_pending']:>7}" + (f"  {fs['kind']} plate document from "
                                                 f"{os.path.basename(fs['master'])}: {fs['status']} (its images "
                                                 "are in their own jobs)" if fs else ""))
    click.echo(f"{'total':>5}  {'':<10} {files['total']:>6} {files['ok']:>6} {files['failed']:>6} "
               f"{files['pending']:>7}")
    if files["unassigned"]:
        click.echo(f"{files['unassigned']} image files are in no job yet: run init")
