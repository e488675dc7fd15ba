"""``metaextract EXP submit`` and ``resubmit``: the step's jobs here (no Dask) or on Dask (a local cluster,
a scheduler, SLURM)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from metaextract.cli.step import cli_errors, submission_options


def dask_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``submit`` and ``resubmit`` add to the step's submission options."""
    opts = [
        click.option("--interval", type=click.FloatRange(min=0.01), default=10.0, show_default=True,
                     metavar="S", help="Seconds between progress reports."),
        click.option("--depth", type=click.IntRange(1, 2), default=1, show_default=True,
                     help="1: totals; 2: also one row per job."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Use an existing Dask scheduler (tcp://HOST:PORT); its workers must see the files."),
        click.option("--cluster", type=click.Choice(["local", "dask", "slurm"]), default="local",
                     show_default=True,
                     help="local: extraction processes of this command, one per core, no Dask; dask: a Dask "
                          "LocalCluster (one worker process per core, with a dashboard); slurm: SLURM jobs "
                          "through dask-jobqueue (--cores/--memory/--duration/--queue per SLURM job)."),
        click.option("--max-jobs", type=click.IntRange(min=1), default=None,
                     help="At most this many SLURM jobs (slurm) or processes (local, dask; default: one per "
                          "core)."),
        click.option("--engine", default="auto", show_default=True, help="auto, bioformats or an engine name."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return submission_options(fn)


@cli_errors
def _go(ctx: click.Context, mode: str, **kw: Any) -> None:
    from metaextract.experiment import NotFoundError
    from metaextract.jobs.submission import SubmissionFailed, SubmitOptions, submit
    from metaextract.store import open_store
    from metaextract.store.jobs import JobBusyError

    if kw.get("scheduler") and ctx.get_parameter_source("cluster") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give either --scheduler or --cluster, not both")
    explicit = {k for k in ("cores", "memory")
                if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    opts = SubmitOptions(mode=mode, explicit=sorted(explicit), **kw)  # validates the seed's resources
    with open_store(ctx.obj.get("db")) as store:
        try:
            code = submit(store, ctx.obj["experiment"], opts, echo=lambda s: click.echo(s))
        except (JobBusyError, NotFoundError, SubmissionFailed) as exc:
            click.echo(f"metaextract: {exc}", err=True)
            code = 1
    sys.exit(code)


@click.command("submit")
@dask_options
@click.pass_context
def submit_cmd(ctx: click.Context, /, **kw: Any) -> None:
    """Run every job that is not done and monitor it (here, in one process per core, by default)."""
    _go(ctx, "submit", **kw)


@click.command("resubmit")
@click.option("--all", "all_jobs", is_flag=True, help="Rerun every job, as the seed did.")
@click.option("--force", is_flag=True,
              help="Take over a running submission (and its jobs) that looks alive: only when you know its "
                   "process is dead; says what it overrides.")
@dask_options
@click.pass_context
def resubmit_cmd(ctx: click.Context, /, all_jobs: bool, **kw: Any) -> None:
    """Rerun the jobs that are not done or have failed files (every job with --all)."""
    _go(ctx, "resubmit-all" if all_jobs else "resubmit", **kw)
