"""SLURM through dask-jobqueue: the Dask executor's cluster when ``--cluster slurm``.

Only what SLURM adds is here (the worker jobs' resources, asking for them and hearing a refusal); the
tasks, bundling and faults are :mod:`.dask`'s, the bookkeeping :mod:`metaextract.jobs.runner`'s.
"""

from __future__ import annotations

import contextlib
from typing import Any

from metaextract.jobs.arguments import SubmitOptions
from metaextract.jobs.executors.base import SchedulerUnavailable
from metaextract.result import one_line


def slurm_cluster(opts: SubmitOptions) -> Any:
    """dask-jobqueue's SLURMCluster with our options as each SLURM job's cores, memory and walltime.

    ``--queue`` names the partition; otherwise it, the account and the network interface come from
    dask-jobqueue's configuration
    (e.g. ``DASK_JOBQUEUE__SLURM__QUEUE``, ``DASK_JOBQUEUE__SLURM__INTERFACE``). The job asks SLURM for
    ``--mem={memory}M`` as given (dask-jobqueue alone rounds it up to whole GiB, e.g. 1500 → 2G); SLURM's
    MiB are never less than the Dask workers' limit of ``memory`` MB.
    """
    from dask_jobqueue.slurm import SLURMCluster

    cores, memory = opts.cores, opts.memory
    extra: dict[str, Any] = {"queue": opts.queue} if opts.queue else {}
    return SLURMCluster(cores=cores, processes=cores, memory=f"{memory}MB", job_mem=f"{memory}M",
                        walltime=opts.duration, scheduler_options={"dashboard_address": "127.0.0.1:0"},
                        job_name="metaextract", **extra)


def _submit_slurm_jobs(cluster: Any, n: int) -> None:
    """Ask SLURM for ``n`` worker jobs now and wait for sbatch's answers.

    ``cluster.scale`` would only schedule the sbatch calls on the cluster's event loop, where a refusal
    is logged as a traceback and never reaches us (the submission would then wait for ever for workers).
    Here the same worker specs are added and the cluster's correction is awaited, so a failing sbatch
    raises :class:`SchedulerUnavailable` with sbatch's own error line, before any job is claimed.
    """
    for _ in range(n):
        cluster.worker_spec.update(cluster.new_worker_spec())
    try:
        cluster.sync(cluster._correct_state)
    except Exception as exc:  # noqa: BLE001 - whatever sbatch or dask-jobqueue raised is the reason
        text = str(exc)
        said = [ln.strip() for ln in text.partition("stderr:")[2].splitlines() if ln.strip()]
        raise SchedulerUnavailable("SLURM refused the Dask worker jobs: "
                                   + one_line(said[0] if said else f"{type(exc).__name__}: {text}", 300)) from None


def _close_refused(cluster: Any) -> None:
    """Close a cluster whose worker jobs SLURM refused: those never started, so they are marked failed
    (closing insists that every worker it created has ended; otherwise it stays "closing" and Dask's own
    exit hook waits on it)."""
    from distributed.core import Status

    for job in list(cluster.workers.values()):
        if job.status == Status.created:
            job.status = Status.failed
    cluster.worker_spec.clear()
    with contextlib.suppress(Exception):
        cluster.close()


def slurm_client(opts: SubmitOptions) -> tuple[Any, Any]:
    """A client of a new SLURMCluster whose ``opts.max_jobs`` worker jobs (default 1) SLURM accepted, and
    the cluster; :class:`SchedulerUnavailable` (the cluster closed) when SLURM refused them."""
    from metaextract.jobs.executors.dask_api import client

    cluster = slurm_cluster(opts)
    try:
        _submit_slurm_jobs(cluster, opts.max_jobs or 1)
    except SchedulerUnavailable:
        _close_refused(cluster)
        raise
    return client(cluster), cluster
