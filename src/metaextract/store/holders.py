"""Who holds an experiment's jobs, and whether it still lives: decided by the database, never by timing.

Invariants
----------
- Every decision about who may work on an experiment's jobs (``init``, ``cleanup``, ``experiment
  delete``, a submission starting, a submission claiming jobs) is taken in a transaction that first takes
  the experiment's lock (:func:`lock_experiment`: ``SELECT … FOR UPDATE``/``FOR SHARE`` of the experiment
  row on PostgreSQL; the write transaction itself, ``BEGIN IMMEDIATE``, on SQLite). Two such decisions
  are therefore serialised by the database, whatever their timing.
- A running submission writes a heartbeat into its row every :func:`beat_every` seconds, from a thread
  (:class:`Heartbeat`), so it keeps beating through a JVM start or a wait on Dask; a ``run`` of one job
  beats its job's row the same way. Any host tells a dead holder by the heartbeat's age: older than
  :func:`stale_after` seconds (``METAEXTRACT_HEARTBEAT_STALE``, default 60) is dead, whatever the host.
  On the holder's own host a pid that is gone is dead at once. A job held by a submission lives exactly as
  long as that submission does.
- Heartbeats are written with the writer's clock and aged with the reader's: the hosts' clocks must agree
  to well within the threshold (NTP does).
- ``init`` and ``cleanup`` bump the experiment's generation; a submission records it when it starts, and
  its claims are refused once it changed (:class:`SubmissionLost`), as are its claims and writes once its
  row is no longer ``running`` (taken over with ``--force``, or found dead by another process).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, and_, select, update

from metaextract.store.db import Store
from metaextract.store.models import experiments, job_runs, jobs, submissions, utcnow

STALE_ENV = "METAEXTRACT_HEARTBEAT_STALE"
DEFAULT_STALE = 60.0  # seconds without a heartbeat after which a holder is dead
MAX_BEAT = 5.0  # seconds between heartbeats at most


class JobBusyError(RuntimeError):
    """A job (or the experiment) is held by another process; the message says which and where."""


class SubmissionLost(RuntimeError):
    """This submission may no longer work: its jobs were replaced, or another process took it over."""


def this_host() -> str:
    return socket.gethostname()


def stale_after() -> float:
    """Seconds without a heartbeat after which a holder is taken for dead (``METAEXTRACT_HEARTBEAT_STALE``)."""
    try:
        value = float(os.environ.get(STALE_ENV, DEFAULT_STALE))
    except ValueError:
        return DEFAULT_STALE
    return value if value > 0 else DEFAULT_STALE


def beat_every() -> float:
    """Seconds between heartbeats: a quarter of the threshold, so three beats may be late before death."""
    return min(MAX_BEAT, stale_after() / 4)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)  # SQLite gives back naive UTC


def age(ts: datetime | None) -> float | None:
    """Seconds since ``ts`` (None when unknown)."""
    return None if ts is None else (utcnow() - _aware(ts)).total_seconds()


def pid_gone(host: str | None, pid: int | None) -> bool:
    """Whether ``pid`` is known to be gone: only this host can say."""
    if host != this_host() or pid is None or pid == os.getpid():
        return False
    import psutil

    return not psutil.pid_exists(pid)


def alive(host: str | None, pid: int | None, beat: datetime | None) -> bool:
    """Whether a holder lives: a fresh heartbeat (``beat``), and on this host a pid that exists."""
    if host is None or pid is None or beat is None or pid_gone(host, pid):
        return False
    seconds = age(beat)
    return seconds is not None and seconds < stale_after()


def dead_at(beat: datetime | None) -> str:
    """When a holder whose last heartbeat was ``beat`` is taken for dead, for messages."""
    if beat is None:
        return "now"
    return (_aware(beat) + timedelta(seconds=stale_after())).isoformat(timespec="seconds")


def describe(host: str | None, pid: int | None, beat: datetime | None) -> str:
    seconds = age(beat)
    last = "no heartbeat" if seconds is None else f"last heartbeat {max(0.0, seconds):.0f} s ago"
    return f"host {host or '?'}, pid {pid or '?'}, {last}"


# -- the experiment lock and generation ------------------------------------------------------------------
def lock_experiment(conn: Connection, experiment_id: int, *, shared: bool = False) -> int:
    """Take the experiment's lock for this transaction and return its generation.

    PostgreSQL: the experiment row ``FOR UPDATE`` (``FOR SHARE`` when ``shared``: claims of one
    submission need not exclude each other, only ``init``/``cleanup``). SQLite: the transaction is
    already the database's one writer (``BEGIN IMMEDIATE``).
    """
    q = select(experiments.c.generation).where(experiments.c.id == experiment_id)
    gen = conn.execute(q.with_for_update(read=shared)).scalar_one_or_none()
    if gen is None:
        raise SubmissionLost(f"experiment {experiment_id} no longer exists")
    return int(gen)


def bump_generation(conn: Connection, experiment_id: int) -> None:
    conn.execute(update(experiments).where(experiments.c.id == experiment_id)
                 .values(generation=experiments.c.generation + 1))


# -- submissions -----------------------------------------------------------------------------------------
def submission_beat(row: Any) -> datetime | None:
    """A submission's last sign of life: its heartbeat, else (rows from before heartbeats) its start."""
    beat: datetime | None = row.heartbeat if row.heartbeat is not None else row.started
    return beat


def running_submissions(conn: Connection, experiment_id: int) -> list[Row[Any]]:
    return list(conn.execute(select(submissions).where(submissions.c.experiment_id == experiment_id,
                                                       submissions.c.state == "running")).all())


def end_submission(conn: Connection, submission_id: int, state: str, note: str | None = None) -> bool:
    """Close a running submission (``done``, ``failed``, ``cancelled``); False if it was no longer running
    (another process closed it: its state and note stay)."""
    res = conn.execute(update(submissions).where(submissions.c.id == submission_id,
                                                 submissions.c.state == "running")
                       .values(state=state, finished=utcnow(), note=note))
    return bool(res.rowcount)


def check_current(conn: Connection, submission_id: int, *, lock: bool = True) -> None:
    """Refuse (:class:`SubmissionLost`) unless the submission is running and its experiment's generation is
    the one it started with. ``lock`` takes the experiment's lock shared first (for claims)."""
    row = conn.execute(select(submissions.c.state, submissions.c.generation, submissions.c.note,
                              submissions.c.experiment_id).where(submissions.c.id == submission_id)
                       ).one_or_none()
    if row is None:
        raise SubmissionLost("it no longer exists (the experiment was deleted?)")
    gen = lock_experiment(conn, row.experiment_id, shared=True) if lock else None
    if row.state != "running":
        raise SubmissionLost(f"it was ended by another process ({row.state}"
                             + (f": {row.note}" if row.note else "") + "); stopping")
    if gen is not None and row.generation is not None and gen != row.generation:
        raise SubmissionLost("the experiment's jobs were replaced (init or cleanup ran) after it started; "
                             "stopping")


def take_over_submissions(conn: Connection, experiment_id: int, *, force: bool, hint: str,
                          notify: Callable[[str], None] | None, by: str) -> None:
    """End every running submission of the experiment that is dead (or any, with ``force``), saying so;
    refuse (:class:`JobBusyError`) on a live one otherwise, saying when it will count as dead and how to
    override. Caller holds the experiment lock."""
    for row in running_submissions(conn, experiment_id):
        beat = submission_beat(row)
        live = alive(row.host, row.pid, beat)
        who = f"submission {row.id} ({describe(row.host, row.pid, beat)})"
        if live and not force:
            raise JobBusyError(f"{who} is still running; it counts as dead if it stays silent until "
                               f"{dead_at(beat)} ({stale_after():.0f} s without a heartbeat); if you know it "
                               f"is dead: `{hint} --force`")
        why = f"taken over with --force by {by}" if live else f"found dead by {by}"
        end_submission(conn, row.id, "failed", why)
        if notify is not None:
            notify(f"{who}: {why}" + (" (it looked alive: --force overrides it)" if live else ""))


# -- jobs ------------------------------------------------------------------------------------------------
def running_jobs(conn: Connection, *where: Any) -> list[Row[Any]]:
    """Running jobs matching ``where``, each with its holder's submission (``sub_id``, ``sub_state``,
    ``sub_beat``, ``sub_started``; None for a ``run`` of one job)."""
    open_run = job_runs.alias("open_run")
    q = (select(jobs.c.id, jobs.c.phase, jobs.c.number, jobs.c.host, jobs.c.pid, jobs.c.updated,
                jobs.c.heartbeat, submissions.c.id.label("sub_id"), submissions.c.state.label("sub_state"),
                submissions.c.heartbeat.label("sub_beat"), submissions.c.started.label("sub_started"))
         .select_from(jobs.outerjoin(open_run, and_(open_run.c.job_id == jobs.c.id, open_run.c.state == "running",
                                                    open_run.c.submission_id.is_not(None)))
                      .outerjoin(submissions, submissions.c.id == open_run.c.submission_id))
         .where(jobs.c.state == "running", *where).order_by(jobs.c.id))
    seen: dict[int, Row[Any]] = {}  # typed for the callers (a query's rows are typed by their columns)
    for row in conn.execute(q).all():
        seen.setdefault(int(row.id), cast("Row[Any]", row))
    return list(seen.values())


def job_beat(row: Any) -> datetime | None:
    """A running job's holder's last sign of life (a row of :func:`running_jobs`): its submission's while
    that submission runs (None once it ended), else the job's own heartbeat, else its last change."""
    if row.sub_id is not None:
        if row.sub_state != "running":
            return None
        beat: datetime | None = row.sub_beat if row.sub_beat is not None else row.sub_started
        return beat
    own: datetime | None = row.heartbeat if row.heartbeat is not None else row.updated
    return own


def job_alive(row: Any) -> bool:
    return alive(row.host, row.pid, job_beat(row))


# -- the heartbeat ---------------------------------------------------------------------------------------
class Heartbeat:
    """Writes ``heartbeat = now`` into one running row of ``table`` every :func:`beat_every` seconds, from a
    daemon thread, until :meth:`stop`. :attr:`lost` is set when the row no longer says ``running`` (another
    process ended it): the holder must stop. A database error skips a beat; it never stops the holder."""

    def __init__(self, store: Store, table: Table | Any, row_id: int, *extra: Any) -> None:
        self.store, self.table, self.row_id, self.extra = store, table, row_id, extra
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"metaextract-heartbeat-{table.name}")

    def beat(self) -> None:
        with self.store.begin() as conn:
            res = conn.execute(update(self.table).where(self.table.c.id == self.row_id,
                                                        self.table.c.state == "running", *self.extra)
                               .values(heartbeat=utcnow()))
        if not res.rowcount:
            self.lost.set()

    def _run(self) -> None:
        while not self._stop.wait(beat_every()):
            with contextlib.suppress(Exception):  # a lost connection: the next beat tries again
                self.beat()

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def job_heartbeat(store: Store, job_id: int) -> Heartbeat:
    """The heartbeat of a run job held by this process (``run --job N``): it stops beating, and says the job
    is lost, once another host or process holds the row."""
    return Heartbeat(store, jobs, job_id, jobs.c.host == this_host(), jobs.c.pid == os.getpid())


def submission_heartbeat(store: Store, submission_id: int) -> Heartbeat:
    """The heartbeat of a running submission."""
    return Heartbeat(store, submissions, submission_id)


def check_submission(store: Store, submission_id: int) -> None:
    """:func:`check_current` in a connection of its own (without locking the row)."""
    with store.connect() as conn:
        check_current(conn, submission_id, lock=False)
