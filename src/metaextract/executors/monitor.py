"""Progress of a submission, read from the database: a live rich table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import case, func, select

from ..store import Store
from ..store.models import image_files, job_runs, jobs


class Monitor:
    """Reports totals (``depth`` 1) and one row per job (``depth`` 2) for the submitted jobs."""

    def __init__(self, store: Store, experiment_id: int, job_ids: list[int], depth: int,
                 echo: Callable[[str], None]) -> None:
        self.store, self.experiment_id, self.job_ids = store, experiment_id, job_ids
        self.depth, self.echo = depth, echo
        self.start = time.monotonic()
        self.live: Any = None
        self.first_done: int | None = None
        if sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(auto_refresh=False)
            self.live.start()

    def snapshot(self) -> dict[str, Any]:
        with self.store.connect() as conn:
            per_job = conn.execute(
                select(jobs.c.id, jobs.c.number, jobs.c.state,
                       func.count(image_files.c.id).label("total"),
                       func.sum(case((image_files.c.status == "ok", 1), else_=0)).label("ok"),
                       func.sum(case((image_files.c.status.in_(("failed", "timeout", "unsupported")), 1),
                                     else_=0)).label("failed"))
                .select_from(jobs.outerjoin(image_files, image_files.c.job_id == jobs.c.id))
                .where(jobs.c.id.in_(self.job_ids)).group_by(jobs.c.id, jobs.c.number, jobs.c.state)
                .order_by(jobs.c.number)).all()
            hosts = dict(conn.execute(
                select(job_runs.c.job_id, job_runs.c.host).where(job_runs.c.job_id.in_(self.job_ids))
                .order_by(job_runs.c.id)).all()) if self.depth >= 2 else {}
        rows = [{"job": r.number, "state": r.state, "total": int(r.total or 0), "ok": int(r.ok or 0),
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
