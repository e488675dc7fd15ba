"""What an executor is: files in, Results out.

The job runner (:mod:`metaextract.jobs.runner`) owns every piece of bookkeeping — claims, counts, logs,
writes, closing runs, interruptions. An executor only reads files somewhere (extraction processes here,
Dask workers, SLURM jobs through dask-jobqueue) and says, per file, what came out and where it was read.
Adding one is a module with a class of this shape; it imports nothing of the runner or the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from metaextract.filesets.model import FilesetSpec
from metaextract.result import Result

#: ``(image_file_id, absolute path, registered root)``: one file to read, as the store lists it; or
#: ``(key, master, root, spec)``: a fileset's one read (:mod:`metaextract.extraction.fileset`), whose Read
#: comes back under ``key`` (minus the fileset's id) with the master's path. An executor hands
#: :func:`work` of each item to its extraction pool, so files and filesets travel the same way.
FileItem = tuple[int, str, str] | tuple[int, str, str, FilesetSpec]


def work(item: FileItem) -> tuple[str, str] | tuple[str, str, FilesetSpec]:
    """What an extraction pool is given for ``item``: ``(path, root)``, or ``(master, root, spec)``."""
    return (item[1], item[2]) if len(item) == 3 else (item[1], item[2], item[3])


@dataclass(frozen=True)
class Read:
    """A file's Result, read on ``host``; ``where`` says where for the job's log (host, worker, process)."""

    file_id: int
    result: Result
    host: str
    where: str


@dataclass(frozen=True)
class Remark:
    """A line for the log of the job of ``file_id`` that is no file's result (e.g. a task split after it
    killed its workers, a last read alone)."""

    file_id: int
    text: str


@dataclass(frozen=True)
class Batch:
    """The files of one job, fed together: an executor may send several whole batches as one task."""

    job_id: int
    files: list[FileItem]


#: What :meth:`Executor.results` yields: a Read or a Remark, or ``None`` (a tick: nothing yet, at most a
#: second or so apart, so the runner can write, report and check while every file is slow).
Event = Read | Remark | None


class SchedulerUnavailable(RuntimeError):
    """The executor cannot start: a Dask scheduler that cannot be reached, worker jobs a batch system
    refused. Nothing was read; the jobs claimed go back to pending."""


class Executor(Protocol):
    """Reads the files it is fed and yields one :class:`Read` for each of them (its verdict, never an
    exception for a bad file), in any order, with :class:`Remark` lines and ticks between.

    Used as a context manager: entering reaches the place the files are read (and may raise
    :class:`SchedulerUnavailable`), leaving releases it.
    """

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def results(self, batches: Iterator[Batch]) -> Iterator[Event]:
        """Read the files of ``batches`` (consumed as the executor has room for more) and yield every
        outcome."""
        ...
