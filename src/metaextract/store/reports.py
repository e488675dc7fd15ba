"""Read-only reports on an experiment's step: status (per job and totals), a job's info, its newest log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from metaextract.store.db import Store
from metaextract.store.holders import job_alive, running_jobs
from metaextract.store.models import experiments, filesets, image_files, job_runs, jobs, metadata_files

#: Statuses that count as failed in the summaries.
FAILED = ("failed", "timeout", "unsupported")


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def status(store: Store, experiment_id: int) -> dict[str, Any]:
    """Per run job its state and file counts, and the experiment's totals.

    Returns
    -------
    dict
        ``{"experiment": {"id", "name"}, "files": {"total", "ok", "failed", "pending", "by_status",
        "unassigned", "metadata_files"}, "jobs": [{"id", "state", "files", "files_ok", "files_failed",
        "files_pending", "attempts", "host", "pid", "stale", "fileset"}]}``; a job's ``id`` is its number.
        ``fileset`` is ``{"id", "kind", "master", "status"}`` for a job that reads only a fileset's document
        (a CellVoyager plate, whose TIFFs are read in per-file jobs: it holds no file), else None.
    """
    with store.connect() as conn:
        exp = conn.execute(select(experiments.c.id, experiments.c.name)
                           .where(experiments.c.id == experiment_id)).one()
        n_meta = conn.execute(select(func.count()).select_from(metadata_files)
                              .where(metadata_files.c.experiment_id == experiment_id)).scalar_one()
        # one pass over the experiment's files: per job (None: in no job yet) and status
        per_job: dict[int | None, dict[str, int]] = {}
        for jid, st, n in conn.execute(
                select(image_files.c.job_id, image_files.c.status, func.count())
                .where(image_files.c.experiment_id == experiment_id)
                .group_by(image_files.c.job_id, image_files.c.status)).all():
            per_job.setdefault(None if jid is None else int(jid), {})[str(st)] = int(n)
        attempts: dict[int, int] = {
            int(jid): int(n) for jid, n in conn.execute(
                select(job_runs.c.job_id, func.count()).join(jobs)
                .where(jobs.c.experiment_id == experiment_id, jobs.c.phase == "run")
                .group_by(job_runs.c.job_id)).all()}
        live = {int(r.id): job_alive(r) for r in running_jobs(conn, jobs.c.experiment_id == experiment_id)}
        # not the batch column: its JSON lists every file id (20,000 ints to decode for 20,000 files)
        job_rows = conn.execute(select(jobs.c.id, jobs.c.number, jobs.c.state, jobs.c.host, jobs.c.pid)
                                .where(jobs.c.experiment_id == experiment_id, jobs.c.phase == "run")
                                .order_by(jobs.c.number)).all()
        documents = _document_jobs(conn, [int(j.id) for j in job_rows if not per_job.get(j.id)])
    by_status: dict[str, int] = {}
    for counts in per_job.values():
        for st, n in counts.items():
            by_status[st] = by_status.get(st, 0) + n
    by_status = dict(sorted(by_status.items()))
    unassigned = sum(per_job.get(None, {}).values())
    out_jobs = []
    for j in job_rows:
        counts = per_job.get(j.id, {})
        out_jobs.append({
            "id": j.number, "state": j.state, "files": sum(counts.values()),
            "files_ok": counts.get("ok", 0), "files_failed": sum(counts.get(s, 0) for s in FAILED),
            "files_pending": counts.get("pending", 0), "attempts": int(attempts.get(j.id, 0)),
            "host": j.host, "pid": j.pid,
            "stale": j.state == "running" and not live.get(int(j.id), False),
            "fileset": documents.get(int(j.id)),
        })
    return {
        "experiment": {"id": exp.id, "name": exp.name},
        "files": {"total": sum(by_status.values()), "ok": by_status.get("ok", 0),
                  "failed": sum(by_status.get(s, 0) for s in FAILED), "pending": by_status.get("pending", 0),
                  "by_status": by_status, "unassigned": int(unassigned), "metadata_files": int(n_meta)},
        "jobs": out_jobs,
    }


def _document_jobs(conn: Any, job_ids: list[int]) -> dict[int, dict[str, Any]]:
    """For the jobs among ``job_ids`` (jobs holding no file) that read a fileset's document, that fileset;
    only their batches are decoded (a per-file job's lists every file id)."""
    if not job_ids:
        return {}
    wanted = {}
    for jid, batch in conn.execute(select(jobs.c.id, jobs.c.batch).where(jobs.c.id.in_(job_ids))).all():
        if isinstance(batch, dict) and batch.get("fileset_id") is not None:
            wanted[int(batch["fileset_id"])] = int(jid)
    if not wanted:
        return {}
    rows = conn.execute(select(filesets.c.id, filesets.c.kind, filesets.c.master, filesets.c.status)
                        .where(filesets.c.id.in_(list(wanted)))).all()
    return {wanted[int(r.id)]: {"id": int(r.id), "kind": r.kind, "master": r.master, "status": r.status}
            for r in rows}


def info(store: Store, job_id: int) -> dict[str, Any]:
    """A job's description: batch, state, files (with status and error) and every run."""
    with store.connect() as conn:
        j = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
        files = conn.execute(select(image_files.c.id, image_files.c.name, image_files.c.location,
                                    image_files.c.status, image_files.c.error, image_files.c.seconds)
                             .where(image_files.c.job_id == job_id).order_by(image_files.c.id)).all()
        runs = conn.execute(select(job_runs).where(job_runs.c.job_id == job_id)
                            .order_by(job_runs.c.attempt)).all()
    batch = dict(j.batch or {})
    batch.pop("image_file_ids", None)
    return {
        "id": j.number, "phase": j.phase, "state": j.state, "host": j.host, "pid": j.pid,
        "updated": _iso(j.updated), "batch": batch,
        "files": [{"id": f.id, "name": f.name, "location": f.location, "status": f.status,
                   "error": f.error, "seconds": f.seconds} for f in files],
        "runs": [{"attempt": r.attempt, "state": r.state, "host": r.host, "pid": r.pid,
                  "started": _iso(r.started), "ended": _iso(r.ended), "exit_code": r.exit_code,
                  "submission_id": r.submission_id} for r in runs],
    }


def newest_log(store: Store, job_id: int) -> str | None:
    """The log of the job's newest run, or None when it never ran."""
    with store.connect() as conn:
        row = conn.execute(select(job_runs.c.log, job_runs.c.state).where(job_runs.c.job_id == job_id)
                           .order_by(job_runs.c.attempt.desc()).limit(1)).one_or_none()
    if row is None:
        return None
    return row.log or f"(no log yet: the run is {row.state})\n"
