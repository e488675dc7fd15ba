"""``metaextract EXP submit`` and ``resubmit``: the step's jobs on Dask (local cluster, scheduler, SLURM)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import click

_DURATION = re.compile(r"^\d+:[0-5]\d:[0-5]\d$")


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _DURATION.match(value):
        raise click.BadParameter(f"{value!r} is not HH:MM:SS")
    return value


def submission_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``submit`` and ``resubmit`` share."""
    opts = [
        click.option("--cores", type=click.IntRange(min=1), default=None,
                     help="Local: number of worker processes (default: all cores). "
                          "SLURM: cores of each SLURM job."),
        click.option("--memory", type=click.IntRange(min=1), default=None, metavar="MB",
                     help="Memory per worker (local) or per SLURM job, in MB."),
        click.option("--duration", default="06:00:00", show_default=True, callback=_duration,
                     metavar="HH:MM:SS", help="Walltime of each SLURM job."),
        click.option("--interval", type=click.FloatRange(min=0.01), default=10.0, show_default=True,
                     metavar="S", help="Seconds between progress reports."),
        click.option("--depth", type=click.IntRange(1, 2), default=1, show_default=True,
                     help="1: totals; 2: also one row per job."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Use an existing Dask scheduler (tcp://HOST:PORT); its workers must see the files."),
        click.option("--cluster", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
                     help="Start a local Dask cluster, or SLURM jobs through dask-jobqueue."),
        click.option("--max-jobs", type=click.IntRange(min=1), default=None,
                     help="At most this many SLURM jobs (SLURM) or worker processes (local)."),
        click.option("--engine", default="auto", show_default=True, help="auto, bioformats or an engine name."),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
                     help="Seconds one file may take before its extraction process is killed."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _go(ctx: click.Context, mode: str, **kw: Any) -> None:
    from ..executors.dask import SubmitOptions, submit
    from ..experiment import NotFoundError
    from ..store import open_store
    from ..store.jobs import JobBusyError

    if kw.get("scheduler") and ctx.get_parameter_source("cluster") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give either --scheduler or --cluster, not both")
    opts = SubmitOptions(mode=mode, **kw)
    store = open_store(ctx.obj.get("db"))
    try:
        code = submit(store, ctx.obj["experiment"], opts, echo=lambda s: click.echo(s))
    except (JobBusyError, NotFoundError) as exc:
        click.echo(f"metaextract: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


@click.command("submit")
@submission_options
@click.pass_context
def submit_cmd(ctx: click.Context, /, **kw: Any) -> None:
    """Run every job that is not done on Dask and monitor it (local cluster by default)."""
    _go(ctx, "submit", **kw)


@click.command("resubmit")
@click.option("--all", "all_jobs", is_flag=True, help="Rerun every job, as the seed did.")
@submission_options
@click.pass_context
def resubmit_cmd(ctx: click.Context, /, all_jobs: bool, **kw: Any) -> None:
    """Rerun the jobs that are not done or have failed files (every job with --all)."""
    _go(ctx, "resubmit-all" if all_jobs else "resubmit", **kw)
