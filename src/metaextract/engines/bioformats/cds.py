"""A class-data sharing (AppCDS) archive of Bio-Formats' classes, so that a JVM starts in half the time.

Starting a JVM and loading Bio-Formats' classes costs about a second of CPU; most of it is parsing and
verifying the same ~2,800 classes every time. HotSpot can map them from an archive instead. The bundled
JRE has no default archive, so metaextract builds one per (JRE, jar, JPype) on this machine:

1. a JVM started the way :func:`metaextract.engines.bioformats.jvm.start_jvm` starts it, with
   ``-XX:DumpLoadedClassList``,
   reads a few small files it writes itself (TIFF, OME-TIFF), so the list holds the classes a read needs;
2. ``java -Xshare:dump`` turns that list into an archive, with the exact class path JPype uses;
3. the archive is renamed into place atomically (``~/.cache/metaextract/cds`` or ``$METAEXTRACT_CACHE``).

The first JVM start that finds no archive starts the build in the background (a detached, ``nice``
process; one at a time, by an exclusive lock file; after a failed build, not again for a day) and goes on
without it; later starts map it with
``-Xshare:auto``, which falls back to loading classes normally when the archive does not match. Nothing
changes but the time: the classes are the same bytes. ``METAEXTRACT_JAVA_CDS=0`` turns it off;
``metaextract`` never reads an archive it did not name by this key.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = "METAEXTRACT_JAVA_CDS"
STALE_LOCK_SECONDS = 600.0
BUILD_TIMEOUT = 600.0
RETRY_SECONDS = 86400.0  # after a failed build, JVM starts wait a day before they try again
_spawned = False


def enabled() -> bool:
    return os.environ.get(ENV, "1") not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    env = os.environ.get("METAEXTRACT_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("metaextract", appauthor=False))


def _classpath() -> list[str]:
    """The class path JPype gives the JVM: the Bio-Formats jar, then JPype's own support jar."""
    import jpype

    from metaextract.engines.bioformats.jvm import bioformats_jar

    support = Path(jpype.__file__).resolve().parent.parent / "org.jpype.jar"
    return [str(bioformats_jar()), *([str(support)] if support.is_file() else [])]


def archive_path() -> Path:
    """Where the archive for this JRE, jar and JPype lives (the name changes when any of them changes)."""
    from metaextract.engines.bioformats.jvm import java_home, libjvm

    parts = []
    for item in [str(libjvm()), *_classpath()]:
        try:
            st = os.stat(item)
            parts.append(f"{item}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{item}:missing")
    parts.append(str(java_home()))
    import hashlib

    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
    return cache_dir() / "cds" / f"bioformats-{key}.jsa"


def jvm_options() -> list[str]:
    """Options that map the archive when it exists; otherwise start building it (once) and return []."""
    if not enabled():
        return []
    try:
        archive = archive_path()
    except Exception:  # noqa: BLE001 - no archive is never an error, only slower
        return []
    if archive.is_file():
        return [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto", "-Xlog:cds=off", "-Xlog:cds+map=off"]
    if _recently_failed(archive):
        return []
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return []  # no writable cache: never spawn a builder that cannot write
    _spawn_build(archive)
    return []


def _failed_path(archive: Path) -> Path:
    return archive.with_suffix(".failed")


def _recently_failed(archive: Path) -> bool:
    """A build failed here less than RETRY_SECONDS ago: JVM starts do not try again until then."""
    try:
        return time.time() - _failed_path(archive).stat().st_mtime < RETRY_SECONDS
    except OSError:
        return False


def _lock_path(archive: Path) -> Path:
    return archive.with_suffix(".building")


def _take_lock(archive: Path) -> bool:
    lock = _lock_path(archive)
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink(missing_ok=True)
    except OSError:
        pass
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _spawn_build(archive: Path) -> None:
    """Start ``python -m metaextract.engines.bioformats.cds`` detached (once per process; the lock keeps it one
    per machine)."""
    global _spawned
    if _spawned or os.environ.get("METAEXTRACT_CDS_BUILDING"):
        return
    _spawned = True
    with contextlib.suppress(OSError):
        # started in the archive's folder: nothing it or its JVMs write lands in the user's working folder
        subprocess.Popen([sys.executable, "-m", "metaextract.engines.bioformats.cds"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env={**os.environ, "METAEXTRACT_CDS_BUILDING": "1", **_importable()},
                         cwd=archive.parent)


def _importable() -> dict[str, str]:
    """``PYTHONPATH`` for a child started in another folder: this ``metaextract`` first, whether it was found
    through a relative path or the working folder or not."""
    import metaextract

    here = str(Path(metaextract.__file__).resolve().parent.parent)  # the folder that holds the package
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join([here, *(os.path.abspath(p) for p in rest)])}


def _list_classes(class_list: Path, folder: Path) -> list[str]:
    """In a child JVM: read small files of the common kinds with the class list being written; the class path."""
    code = (
        "import json, sys\n"
        "from metaextract import synth\n"
        "from metaextract.engines.bioformats import jvm as _java\n"
        "from metaextract.engines.bioformats import BioFormatsEngine\n"
        "_java.start_jvm(extra=[sys.argv[1]])\n"
        "import jpype\n"
        "from pathlib import Path\n"
        "folder = Path(sys.argv[2])\n"
        "files = synth.write_cds_samples(folder)\n"
        "engine = BioFormatsEngine()\n"
        "for f in files:\n"
        "    engine.extract(str(f))\n"
        "print('CLASSPATH=' + json.dumps(str(jpype.java.lang.System.getProperty('java.class.path'))))\n"
    )
    env = {**os.environ, "METAEXTRACT_CDS_BUILDING": "1", ENV: "0", **_importable()}
    out = subprocess.run([sys.executable, "-c", code, f"-XX:DumpLoadedClassList={class_list}", str(folder)],
                         capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env, check=True,
                         cwd=class_list.parent)
    for line in out.stdout.splitlines():
        if line.startswith("CLASSPATH="):
            return str(json.loads(line.removeprefix("CLASSPATH="))).split(os.pathsep)
    raise RuntimeError("the class-list JVM did not report its class path")


def build(archive: Path | None = None) -> Path:
    """Build the archive now (about 10 s); returns its path. Raises when the JRE cannot dump one."""
    from metaextract.engines.bioformats.jvm import crash_options, java_executable

    archive = archive or archive_path()
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="metaextract-cds-") as tmp_name:
        tmp = Path(tmp_name)
        class_list = tmp / "classes.lst"
        classpath = _list_classes(class_list, tmp / "samples")
        partial = archive.with_name(f"{archive.name}.{os.getpid()}.tmp")
        # (a crash report of this JVM goes to the cache, never into the working folder it was started from)
        subprocess.run([str(java_executable()), "-Xshare:dump", f"-XX:SharedClassListFile={class_list}",
                        f"-XX:SharedArchiveFile={partial}", "-Xlog:cds=off", "-Xlog:cds+map=off",
                        *crash_options(), "-cp", os.pathsep.join(classpath)],
                       capture_output=True, timeout=BUILD_TIMEOUT, check=True, cwd=tmp)
        os.replace(partial, archive)
    return archive


def main() -> int:
    """Background builder: take the lock, build, release; silent (its parent does not wait)."""
    with contextlib.suppress(OSError):
        os.nice(10)
    archive = archive_path()
    if archive.is_file() or not _take_lock(archive):
        return 0
    try:
        build(archive)
    except Exception as exc:  # noqa: BLE001 - a failed build only means JVM starts stay as slow as before
        with contextlib.suppress(OSError):
            _failed_path(archive).write_text(f"{type(exc).__name__}: {exc}\n")
        return 1
    finally:
        _lock_path(archive).unlink(missing_ok=True)
    _failed_path(archive).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
