"""Progress of a submission, read from the database: a live rich table on a terminal, plain lines otherwise.

It counts this submission's work only: a file counts once its result was written since the submission
started (``since``), a job once a run of this submission closed it as done, so ``resubmit --all`` starts
at 0 and its rate and ETA are its own. The submitters report once at once and once at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, case, func, select

from metaextract.store import Store
from metaextract.store.models import image_files, job_runs, jobs


class Monitor:
    """Reports totals (``depth`` 1) and one row per job (``depth`` 2) for the submitted jobs."""

    def __init__(self, store: Store, experiment_id: int, job_ids: list[int], depth: int,
                 echo: Callable[[str], None], *, submission_id: int | None = None, since: Any = None) -> None:
        self.store, self.experiment_id, self.job_ids = store, experiment_id, job_ids
        self.depth, self.echo = depth, echo
        self.submission_id, self.since = submission_id, since
        self.start = time.monotonic()
        self.live: Any = None
        if sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(auto_refresh=False)
            self.live.start()

    def _new(self, cond: Any) -> Any:
        """``cond`` for a file whose result was written by this submission (since it started)."""
        return cond if self.since is None else and_(cond, image_files.c.extracted_at >= self.since)

    def snapshot(self) -> dict[str, Any]:
        with self.store.connect() as conn:
            per_job = conn.execute(
                select(jobs.c.id, jobs.c.number, jobs.c.state,
                       func.count(image_files.c.id).label("total"),
                       func.sum(case((self._new(image_files.c.status == "ok"), 1), else_=0)).label("ok"),
                       func.sum(case((self._new(image_files.c.status.in_(("failed", "timeout", "unsupported"))),
                                      1), else_=0)).label("failed"))
                .select_from(jobs.outerjoin(image_files, image_files.c.job_id == jobs.c.id))
                .where(jobs.c.id.in_(self.job_ids)).group_by(jobs.c.id, jobs.c.number, jobs.c.state)
                .order_by(jobs.c.number)).all()
            hosts = dict(conn.execute(
                select(job_runs.c.job_id, job_runs.c.host).where(job_runs.c.job_id.in_(self.job_ids))
                .order_by(job_runs.c.id)).all()) if self.depth >= 2 else {}
            closed = None if self.submission_id is None else set(conn.execute(
                select(job_runs.c.job_id).where(job_runs.c.submission_id == self.submission_id,
                                                job_runs.c.state != "running")).scalars())
        rows = [{"job": r.number, "state": r.state if closed is None or r.id in closed or r.state == "running"
                 else "queued", "total": int(r.total or 0), "ok": int(r.ok or 0),
                 "failed": int(r.failed or 0), "host": hosts.get(r.id)} for r in per_job]
        files = sum(r["total"] for r in rows)
        ok = sum(r["ok"] for r in rows)
        failed = sum(r["failed"] for r in rows)
        elapsed = time.monotonic() - self.start
        done = ok + failed
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (files - done) / rate if rate > 0 else None
        states = [r["state"] for r in rows]
        return {"jobs": len(rows), "done": states.count("done"), "running": states.count("running"),
                "failed": states.count("failed"), "cancelled": states.count("cancelled"),
                "files": files, "ok": ok, "files_failed": failed, "rate": rate, "eta": eta,
                "elapsed": elapsed, "rows": rows}

    @staticmethod
    def line(s: dict[str, Any]) -> str:
        eta = "-" if s["eta"] is None else f"{s['eta']:.0f} s"
        return (f"[{s['elapsed']:7.1f} s] jobs {s['done']}/{s['jobs']} done, {s['running']} running, "
                f"{s['failed']} failed | files {s['ok']} ok, {s['files_failed']} failed of {s['files']} | "
                f"{s['rate']:.1f} files/s | ETA {eta}")

    def report(self) -> None:
        s = self.snapshot()
        if self.live is not None:
            self.live.update(self._table(s), refresh=True)
            return
        self.echo(self.line(s))
        if self.depth >= 2:
            for r in s["rows"]:
                self.echo(f"  job {r['job']:>5} {r['state']:<9} {r['ok']:>6} ok {r['failed']:>6} failed "
                          f"of {r['total']:>6}  {r['host'] or ''}")

    def _table(self, s: dict[str, Any]) -> Any:
        from rich.console import Group
        from rich.table import Table

        head = Table.grid()
        head.add_row(self.line(s))
        if self.depth < 2:
            return head
        table = Table("job", "state", "ok", "failed", "files", "host")
        for r in s["rows"]:
            table.add_row(str(r["job"]), r["state"], str(r["ok"]), str(r["failed"]), str(r["total"]),
                          r["host"] or "")
        return Group(head, table)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
