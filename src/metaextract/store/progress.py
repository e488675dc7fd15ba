"""What a running submission reports: per job its state and how many of its files this submission
finished, and which jobs to submit at all.

A file counts once its result was written since the submission started (``since``), a job as closed once
a run of this submission ended, so ``resubmit --all`` starts at 0 (see :mod:`metaextract.jobs.monitor`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, exists, func, or_, select

from metaextract.store.db import Store
from metaextract.store.models import image_files, job_runs, jobs
from metaextract.store.reports import FAILED


def select_jobs(conn: Connection, experiment_id: int, mode: str) -> list[tuple[int, int]]:
    """``(id, number)`` of the run jobs a submission takes, in order: ``submit`` those not done,
    ``resubmit`` also the done ones with a file that is not ok, ``resubmit-all`` every one."""
    q = select(jobs.c.id, jobs.c.number).where(jobs.c.experiment_id == experiment_id, jobs.c.phase == "run")
    if mode == "submit":
        q = q.where(jobs.c.state != "done")
    elif mode == "resubmit":
        bad = exists().where(and_(image_files.c.job_id == jobs.c.id, image_files.c.status != "ok"))
        q = q.where(or_(jobs.c.state != "done", bad))
    return [(int(r.id), int(r.number)) for r in conn.execute(q.order_by(jobs.c.number)).all()]


def files_of_jobs(store: Store, job_ids: list[int]) -> int:
    """How many image files the jobs hold together."""
    total = 0
    with store.connect() as conn:
        for start in range(0, len(job_ids), 1000):
            total += int(conn.execute(select(func.count()).select_from(image_files)
                                      .where(image_files.c.job_id.in_(job_ids[start:start + 1000]))).scalar_one())
    return total


def job_progress(store: Store, job_ids: list[int], *, since: datetime | None, submission_id: int | None,
                 hosts: bool) -> list[dict[str, Any]]:
    """Per job, in number order: ``{"job": number, "state", "total", "ok", "failed", "host"}``; ``ok`` and
    ``failed`` count the files written since ``since``; a job this submission has not closed yet that is
    not running is ``"queued"``; ``host`` is its newest run's (with ``hosts``, else None)."""

    def new(cond: ColumnElement[bool]) -> ColumnElement[bool]:
        return cond if since is None else and_(cond, image_files.c.extracted_at >= since)

    with store.connect() as conn:
        per_job = conn.execute(
            select(jobs.c.id, jobs.c.number, jobs.c.state, func.count(image_files.c.id).label("total"),
                   func.sum(case((new(image_files.c.status == "ok"), 1), else_=0)).label("ok"),
                   func.sum(case((new(image_files.c.status.in_(FAILED)), 1), else_=0)).label("failed"))
            .select_from(jobs.outerjoin(image_files, image_files.c.job_id == jobs.c.id))
            .where(jobs.c.id.in_(job_ids)).group_by(jobs.c.id, jobs.c.number, jobs.c.state)
            .order_by(jobs.c.number)).all()
        where: dict[Any, Any] = dict(conn.execute(
            select(job_runs.c.job_id, job_runs.c.host).where(job_runs.c.job_id.in_(job_ids))
            .order_by(job_runs.c.id)).all()) if hosts else {}
        closed = None if submission_id is None else set(conn.execute(
            select(job_runs.c.job_id).where(job_runs.c.submission_id == submission_id,
                                            job_runs.c.state != "running")).scalars())
    return [{"job": r.number, "state": r.state if closed is None or r.id in closed or r.state == "running"
             else "queued", "total": int(r.total or 0), "ok": int(r.ok or 0), "failed": int(r.failed or 0),
             "host": where.get(r.id)} for r in per_job]
