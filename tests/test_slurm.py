"""`submit --cluster slurm` on a REAL single-node SLURM (slurmctld + slurmd) that this module starts itself.

See /work/shared/recipes/slurm-single-node.md. The daemons run with a private ``slurm.conf`` in a temporary
folder (own state/spool/log dirs, a unique cluster name, two free TCP ports), so neither a SLURM the developer
already runs nor a concurrent test run is disturbed. SLURM is installed with apt-get when it is missing and
we are root; when it cannot be had the module is skipped (failed with ``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from .test_submit import cli, make_experiment, status, stored_once

IN_CI = os.environ.get("CI") == "true"
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
TOOLS = ("slurmctld", "slurmd", "sbatch", "sinfo", "scancel", "squeue", "sacct")


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(why)
    pytest.skip(why)


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=SBIN_PATH)


def _ensure_slurm() -> None:
    """Install SLURM's Debian packages when a tool is missing and we are root (apt-get update only if needed)."""
    if all(_which(t) for t in TOOLS):
        return
    if os.geteuid() != 0 or not _which("apt-get"):
        _unavailable("SLURM (slurmctld/slurmd/sbatch) is not installed and cannot be installed (not root / no apt)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300",
               "slurmctld", "slurmd", "slurm-client"]
    log = ""
    try:
        out = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
        log = out.stdout[-2000:] + out.stderr[-2000:]
        if out.returncode != 0:
            upd = subprocess.run(["apt-get", "update", "-o", "DPkg::Lock::Timeout=300"], capture_output=True,
                                 text=True, timeout=900, env=env)
            out = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
            log = upd.stderr[-1000:] + out.stdout[-2000:] + out.stderr[-2000:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        log = repr(exc)
    missing = [t for t in TOOLS if not _which(t)]
    if missing:
        _unavailable(f"could not install SLURM ({', '.join(missing)} missing):\n{log}")


def _free_ports(n: int) -> list[int]:
    """n distinct free TCP ports (all sockets held open together, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("", 0))  # the daemons listen on every address
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_hardware() -> tuple[str, str]:
    """CPUs/Boards/Sockets/Cores/Threads and RealMemory as `slurmd -C` reports them."""
    out = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PATH": SBIN_PATH})
    fields = dict(w.split("=", 1) for w in out.stdout.split() if "=" in w)
    keys = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
    if not all(k in fields for k in (*keys, "RealMemory")):
        cpus = os.cpu_count() or 1
        return f"CPUs={cpus}", str(psutil.virtual_memory().total // 2**20)
    return " ".join(f"{k}={fields[k]}" for k in keys), fields["RealMemory"]


@dataclass
class Slurm:
    root: Path
    conf: Path
    cluster_name: str
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=self.env)

    def logs(self) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"):
            p = self.root / "log" / name
            if p.exists():
                parts.append(f"--- {name}\n" + p.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def jobcomp(self) -> list[dict[str, str]]:
        """The job completion records (JobCompLoc), one dict per finished/cancelled job."""
        p = self.root / "log" / "jobcomp.txt"
        if not p.exists():
            return []
        return [dict(w.split("=", 1) for w in line.split() if "=" in w)
                for line in p.read_text(errors="replace").splitlines() if line.strip()]


def _write_conf(root: Path, cluster_name: str) -> Path:
    for d in ("etc", "state", "spool", "log", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    ctld_port, d_port = _free_ports(2)
    hardware, memory = _node_hardware()
    conf = root / "etc" / "slurm.conf"
    conf.write_text(f"""\
ClusterName={cluster_name}
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/log/jobcomp.txt
MailProg=/bin/true
ReturnToService=2
MinJobAge=2
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost {hardware} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1024
""")
    return conf


def _ours(proc: psutil.Process, slurm: Slurm) -> bool:
    """A process of this run's SLURM only: the daemons and jobs carry our conf / cluster name in their
    environment; a slurmstepd (empty environment) holds its socket in our spool dir and our log files."""
    with contextlib.suppress(psutil.Error):
        env = proc.environ()
        if env.get("SLURM_CONF") == str(slurm.conf) or env.get("SLURM_CLUSTER_NAME") == slurm.cluster_name:
            return True
        if "slurm" in proc.name():
            root = f"{slurm.root}{os.sep}"
            paths = [f.path for f in proc.open_files()] + [str(c.laddr) for c in proc.net_connections("unix")]
            return any(p.startswith(root) for p in paths)
    return False


def _stop(slurm: Slurm, daemons: list[subprocess.Popen[bytes]]) -> None:
    """scancel every job of our controller, wait a little for them to end, then kill what is left."""
    with contextlib.suppress(Exception):
        slurm.run("scancel", "--full", "--user", str(os.geteuid()), timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = slurm.run("squeue", "-h", "-o", "%i", timeout=10)
            if out.returncode != 0 or not out.stdout.strip():
                break
            time.sleep(0.3)
    for p in daemons:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in daemons:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    # leftover slurmstepd / job processes of this run only (never another run's or the developer's SLURM)
    leftovers = [p for p in psutil.process_iter() if p.pid != os.getpid() and _ours(p, slurm)]
    for p in leftovers:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(leftovers, timeout=5)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    """A private single-node SLURM (partition ``debug``, node ``localhost``), idle and ready for jobs."""
    _ensure_slurm()
    if os.geteuid() != 0:
        _unavailable("a private slurmd needs root (SlurmdUser=root)")
    root = tmp_path_factory.mktemp("slurm")
    cluster_name = "mx" + uuid.uuid4().hex[:8]
    conf = _write_conf(root, cluster_name)
    env = {**os.environ, "PATH": SBIN_PATH, "SLURM_CONF": str(conf)}
    s = Slurm(root, conf, cluster_name, env)
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        for name, cmd in (("slurmctld", ["slurmctld", "-D", "-i"]),
                          ("slurmd", ["slurmd", "-D", "-N", "localhost"])):
            with open(root / "log" / f"{name}.out", "wb") as out:
                daemons.append(subprocess.Popen([_which(cmd[0]) or cmd[0], *cmd[1:]], env=env,
                                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 30
        state = ""
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in daemons):
                break
            out = s.run("sinfo", "-h", "-N", "-o", "%N %t", timeout=10)
            state = out.stdout.strip() + out.stderr.strip()
            if out.returncode == 0 and state.split()[-1:] == ["idle"]:
                break
            time.sleep(0.3)
        if state.split()[-1:] != ["idle"]:
            pytest.fail(f"the private SLURM did not come up (sinfo: {state!r})\n{s.logs()}")
        yield s
    finally:
        _stop(s, daemons)


def _sacct_names(slurm: Slurm) -> str:
    out = slurm.run("sacct", "-c", "-n", "-P", "-o", "JobID,JobName,State,NodeList", timeout=30)
    return out.stdout + out.stderr


@pytest.mark.slow
def test_submit_runs_jobs_on_slurm(slurm: Slurm, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'metaextract.db'}"
    name = make_experiment(db_url, tmp_path / "plate", 200, batch=50)
    env = {**slurm.env,
           "DASK_JOBQUEUE__SLURM__QUEUE": "debug",
           "DASK_JOBQUEUE__SLURM__INTERFACE": "lo",
           # the job script is written by the submitter; its temp dir and logs stay in this test's folder
           "DASK_JOBQUEUE__SLURM__LOG_DIRECTORY": str(tmp_path / "slurm-logs"),
           "DASK_JOBQUEUE__SLURM__LOCAL_DIRECTORY": str(tmp_path / "dask-worker-space"),
           "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "30s"}
    out = cli(db_url, name, "submit", "--cluster", "slurm", "--cores", "1", "--memory", "1500",
              "--duration", "00:10:00", "--max-jobs", "2", "--interval", "0.5", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr + "\n" + slurm.logs()
    assert "jobs 4/4 done" in out.stdout, out.stdout
    st = status(db_url, name)
    assert st["files"] == {**st["files"], "total": 200, "ok": 200, "failed": 0, "pending": 0}
    assert len(st["jobs"]) == 4 and all(j["state"] == "done" for j in st["jobs"]), st["jobs"]
    stored_once(db_url)

    # SLURM really ran the Dask workers: cluster.close() cancelled them, so they have completion records
    records: list[dict[str, str]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        records = [r for r in slurm.jobcomp() if r.get("Name") == "metaextract"]
        if records:
            break
        time.sleep(0.3)
    assert records, f"no metaextract job in {slurm.root / 'log' / 'jobcomp.txt'}\n{slurm.logs()}"
    assert 1 <= len(records) <= 2  # --max-jobs 2
    assert all(r.get("NodeList") == "localhost" and r.get("Partition") == "debug" for r in records), records
    # each SLURM job got our --cores 1, --memory 1500 (MB → 1500M) and --duration 00:10:00 (10 minutes)
    assert all(r.get("ProcCnt") == "1" and "cpu=1," in r.get("Tres", "") and "mem=1500M" in r.get("Tres", "")
               and r.get("TimeLimit") == "10" for r in records), records
    assert "metaextract" in _sacct_names(slurm)
    # the worker logs written by the SLURM jobs (sbatch -e/-o) show that the workers joined our scheduler
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "slurm-logs").glob("*"))
    assert "Registered to:" in logs and "127.0.0.1" in logs, logs[-3000:]


def test_slurm_job_script_has_our_options() -> None:
    """What `submit --cluster slurm --cores 1 --memory 1500 --duration 00:10:00` hands to sbatch."""
    import dask
    import dask_jobqueue  # noqa: F401

    from metaextract.jobs.arguments import SubmitOptions
    from metaextract.jobs.executors.slurm import slurm_cluster

    # dask-jobqueue must register its config defaults before this block: leaving a `dask.config.set`
    # block removes the keys it created, which would otherwise wipe them for the tests that follow
    with dask.config.set({"jobqueue.slurm.queue": "debug", "jobqueue.slurm.interface": "lo"}):
        cluster = slurm_cluster(SubmitOptions(cores=1, memory=1500, duration="00:10:00", cluster="slurm",
                                              max_jobs=2))
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    assert "#SBATCH -J metaextract" in script
    assert "#SBATCH -p debug" in script
    assert "#SBATCH --cpus-per-task=1" in script
    assert "#SBATCH --mem=1500M" in script  # as asked (not rounded up to 2G); SLURM's M (MiB) >= 1500 MB
    assert "--memory-limit 1.40GiB" in script  # each Dask worker keeps to 1500 MB
    assert "#SBATCH -t 00:10:00" in script
    assert "--interface lo" in script
