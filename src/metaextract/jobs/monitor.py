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

from metaextract.store import Store
from metaextract.store.progress import job_progress


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

    def snapshot(self) -> dict[str, Any]:
        rows = job_progress(self.store, self.job_ids, since=self.since, submission_id=self.submission_id,
                            hosts=self.depth >= 2)
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
