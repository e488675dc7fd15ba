"""What the step's jobs are cut and run with: the seed's argument classes (light: the command line reads their
defaults before it imports anything heavy)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from metaextract.extraction.limits import DEFAULT_TIMEOUT

NO_COLLECT = "the metaextract step has no collect phase: every run job stores its own results"
#: The largest batch size: it is a bound SQL integer (a 64-bit one overflows SQLite's driver; PostgreSQL
#: would take a wider one as numeric and cut one job per file); 2**31 - 1 files is more than any experiment.
MAX_BATCH_SIZE = 2**31 - 1
_DURATION = re.compile(r"^(\d+-)?\d{1,3}:[0-5]\d:[0-5]\d$")


@dataclass(frozen=True)
class MetaextractBatchArguments:
    """How ``init`` cuts an experiment into run jobs.

    Parameters
    ----------
    batch_size : int
        Image files per run job (default 100); a batch never spans two acquisitions.

    Raises
    ------
    ValueError
        When ``batch_size`` is not an integer from 1 to :data:`MAX_BATCH_SIZE`.
    """

    batch_size: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be a positive integer of at most {MAX_BATCH_SIZE}, "
                             f"not {self.batch_size!r}")


@dataclass(frozen=True)
class MetaextractSubmissionArguments:
    """Resources each submitted job asks for.

    Parameters
    ----------
    cores : int
        CPU cores per job, hence extraction processes (default 1).
    memory : int
        Memory per job in MB (default 4096; each extraction process holds a JVM of ~0.5-1 GB).
    duration : str
        Wall time per job, ``[D-]HH:MM:SS`` (default ``"06:00:00"``).
    queue : str, optional
        Queue or partition for cluster schedulers.
    timeout : float
        Seconds one file may take before its process is killed (default 120).

    Raises
    ------
    ValueError
        For fewer than one core, a memory that is not positive, a malformed duration or timeout.
    """

    cores: int = 1
    memory: int = 4096
    duration: str = "06:00:00"
    queue: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if isinstance(self.cores, bool) or not isinstance(self.cores, int) or self.cores < 1:
            raise ValueError(f"cores must be a positive integer, not {self.cores!r}")
        if isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory <= 0:
            raise ValueError(f"memory must be a positive number of MB, not {self.memory!r}")
        if not isinstance(self.duration, str) or not _DURATION.match(self.duration):
            raise ValueError(f"duration must look like HH:MM:SS or D-HH:MM:SS, not {self.duration!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, not {self.timeout!r}")

    @property
    def duration_seconds(self) -> int:
        days, _, hms = self.duration.rpartition("-")
        h, m, s = (int(x) for x in hms.split(":"))
        return (int(days) if days else 0) * 86400 + h * 3600 + m * 60 + s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SubmitOptions(MetaextractSubmissionArguments):
    """What ``submit``/``resubmit`` were asked for (stored with the submission): the seed's resources
    (:class:`MetaextractSubmissionArguments`, validated by it) and where and how the jobs run.

    ``cores``, ``memory``, ``duration`` and ``queue`` are per SLURM job (``memory`` is also the memory of a
    Dask worker, or the JVM heap of a local extraction process, when given: see ``explicit``).
    """

    interval: float = 10.0  # seconds between progress reports
    depth: int = 1  # 1: totals; 2: also one row per job
    scheduler: str | None = None  # an existing Dask scheduler's address
    cluster: str = "local"  # local (extraction processes here, no Dask) | dask (a Dask LocalCluster) | slurm
    max_jobs: int | None = None  # SLURM jobs (slurm) or processes (local, dask); default one per core
    engine: str = "auto"
    mode: str = "submit"  # submit | resubmit | resubmit-all
    force: bool = False  # take over a running submission that looks alive (resubmit --force)
    explicit: list[str] = field(default_factory=list)  # options the user gave (not defaults)
    extra: dict[str, Any] = field(default_factory=dict)
