"""Bio-Formats in this process's JVM, configured like the seed's
``showinf -omexml-only -nopix -novalid -nocore -no-upgrade -no-sas``.

One ``ImageReader`` and one ``OMEXMLService`` live as long as the process; every file gets a fresh
OME-XML metadata store. The XML is produced as ImageInfo 7.3.1's ``printOMEXML`` does (read from its
bytecode): the reader's metadata store serialised by the service, indented with 3 spaces.

Bio-Formats opens other files of a file's folder (companions, the rest of a file set). A symbolic link
there that leads out of the folder is hidden from it (:meth:`BioFormatsEngine._fence`: mapped, through
``Location.mapId``, to a name that does not exist), so no file outside the folder is read because of where
a link points; the file's own path is checked against its registered folder before any engine runs.
Vendor metadata files of the folder that Bio-Formats would read as companions (``.mlf``, ``.mrf``, ``.xdce``,
``Index.idx.xml``, ``.ome``, …) and that declare a DTD or entities are hidden the same way: the file itself
was refused before any engine (:func:`metaextract.extraction.sanity.refuse`), its siblings are checked here, once per
folder state; the JVM refuses external entities anyway (:func:`metaextract.engines.bioformats.jvm.xml_options`).
"""

from __future__ import annotations

import contextlib
import mmap
import os
from typing import Any

from metaextract.engines.base import Claim, ContextEngine, ExtractionError, FileContext, UnsupportedFormatError
from metaextract.engines.bioformats.jvm import start_jvm
from metaextract.extraction import fence, sanity
from metaextract.result import one_line

NAME = "bioformats"
DIRECTORY_CACHE_MS = 60_000
#: Endings of the metadata files Bio-Formats' readers open beside an image (CellVoyager ``.mlf``/``.mrf``,
#: ``.wpi``, InCell ``.xdce``, Harmony/Operetta ``Index.idx.xml``, OME ``.companion.ome``, MetaXpress ``.htd``,
#: MetaMorph ``.nd``, Leica ``.xlif``/``.xlef``/``.xlcf``, Olympus ``.oif``, Columbus ``.mea``, …).
COMPANION_ENDINGS = (".xml", ".mlf", ".mrf", ".wpi", ".xdce", ".ome", ".htd", ".nd", ".xlif", ".xlef", ".xlcf",
                     ".oif", ".mea", ".res", ".xlog", ".tdb", ".apl", ".mtd")


class BioFormatsEngine(ContextEngine[None]):
    """The Bio-Formats engine (the fallback for every file no native engine claims)."""

    name = NAME

    def __init__(self, *, group_files: bool = True) -> None:
        self.group_files = group_files
        self._reader: Any = None
        self._classes: Any = None
        self._new_reader: Any = None
        self._service: Any = None
        self._j: dict[str, Any] = {}
        # folder -> (its inode and mtime when scanned, the links leaving it that are hidden from Bio-Formats)
        self._fenced: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}

    # -- setup ---------------------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._reader is None:
            self._setup()

    def prepare(self, ctx: FileContext) -> None:
        """Start the JVM and load the reader classes, if not yet done, outside ``ctx``'s file's timeout."""
        if self._reader is None:
            with ctx.starting_up():
                self._setup()

    def _setup(self) -> None:
        start_jvm()
        from loci.common import DebugTools, Location
        from loci.common.services import ServiceFactory
        from loci.common.xml import XMLTools
        from loci.formats import (
            FormatTools,
            ImageReader,
            UnknownFormatException,
        )
        from loci.formats.in_ import (
            DynamicMetadataOptions,
            MetadataLevel,
        )
        from loci.formats.services import OMEXMLService

        DebugTools.setRootLevel("OFF")
        # Readers list a file's folder to look for companions; in a plate folder of 20,000 files that
        # listing per file would make a batch quadratic. Listings are cached for a minute.
        Location.cacheDirectoryListings(DIRECTORY_CACHE_MS)
        self._j = {
            "XMLTools": XMLTools,
            "FormatTools": FormatTools,
            "UnknownFormatException": UnknownFormatException,
            "DynamicMetadataOptions": DynamicMetadataOptions,
            "MetadataLevel": MetadataLevel,
            "Location": Location,
        }
        self._service = ServiceFactory().getInstance(OMEXMLService)
        self._classes = ImageReader.getDefaultReaderClasses()
        self._new_reader = lambda: ImageReader(self._classes)
        self._reader = self._new_reader()

    def version(self) -> str:
        self._ensure()
        return str(self._j["FormatTools"].VERSION)

    # -- contract ------------------------------------------------------------------------------------
    def claim_in(self, ctx: FileContext) -> Claim[None]:
        return Claim(1)  # the fallback: it claims everything, with the weakest evidence

    def extract_in(self, ctx: FileContext, found: None = None) -> str:
        self.prepare(ctx)
        return self._read(ctx.path, self.group_files)

    def extract_alone(self, path: str) -> str:
        """Read ``path`` with file grouping off: no sibling is opened (a file set is read as one file).

        ``auto`` uses it when a grouped read failed, because one broken sibling (e.g. a non-image DICOM
        in the folder) makes Bio-Formats fail on every file of the group.
        """
        return self._read(path, False)

    def _fence(self, path: str) -> frozenset[str]:
        """Hide from Bio-Formats every symbolic link in ``path``'s folder that leads out of it, and every
        companion metadata file there that declares a DTD or entities; returns them.

        The folder is scanned again when its inode or mtime changed (replacing a link or a file changes it);
        a link that no longer leads out is shown again.
        """
        folder = os.path.dirname(os.path.abspath(path))
        try:
            st = os.stat(folder)
        except OSError:
            return frozenset()
        stamp = (st.st_ino, st.st_mtime_ns)
        known = self._fenced.get(folder)
        if known is not None and known[0] == stamp:
            return known[1]
        out: set[str] = set()
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                link_out = entry.is_symlink() and not fence.in_folder(entry.path, folder)
                if link_out or (entry.name.lower().endswith(COMPANION_ENDINGS) and _declares_dtd(entry.path)):
                    out.add(entry.path)
        location = self._j["Location"]
        before = known[1] if known is not None else frozenset()
        for link in before - out:
            location.mapId(link, None)
        for link in out - before:
            location.mapId(link, f"{link} (a link leading out of the folder, or XML declaring a DTD: not read)")
        if len(self._fenced) >= 4096:
            self._fenced.clear()  # the mappings stay; a folder seen again is compared afresh
        self._fenced[folder] = (stamp, frozenset(out))
        return frozenset(out)

    def _read(self, path: str, group_files: bool) -> str:
        import jpype

        self._ensure()
        fenced = self._fence(path)
        # A fresh ImageReader (~1 ms) for every file: some format readers keep state across files
        # (Bio-Formats 7.3.1's DicomReader reports an earlier file's optical path as a later file's channel
        # name), which showinf, one JVM per file, never sees.
        self._reader = reader = self._new_reader()
        service, j = self._service, self._j
        try:
            reader.setOriginalMetadataPopulated(False)  # -no-sas
            reader.setMetadataStore(service.createOMEXMLMetadata(None, None))
            reader.setNormalized(False)
            reader.setMetadataFiltered(True)
            reader.setGroupFiles(group_files)
            options = j["DynamicMetadataOptions"]()
            options.setMetadataLevel(j["MetadataLevel"].ALL)
            options.setValidate(False)  # -novalid
            reader.setMetadataOptions(options)
            reader.setFlattenedResolutions(True)
            reader.setId(path)
            store = reader.getMetadataStore()
            xml = service.getOMEXML(store)
            indented = j["XMLTools"].indentXML(xml, 3, True) if xml is not None else None
            if indented is None:  # its serialiser gives null for a character XML forbids (U+FFFE, U+FFFF)
                raise ExtractionError("Bio-Formats could not write its metadata as XML (a character XML 1.0 "
                                      "forbids, e.g. U+FFFE or U+FFFF, in a name or description?)")
            return str(indented)
        except jpype.JException as exc:
            error = _translate(exc, path, j)
            if fenced:
                names = ", ".join(sorted(os.path.basename(f) for f in fenced)[:5])
                error.args = (f"{error.args[0]} (links leading out of the folder or files declaring a DTD were "
                              "hidden from Bio-Formats: "
                              f"{names}{', ...' if len(fenced) > 5 else ''})",)
            raise error from None
        finally:
            with contextlib.suppress(Exception):  # closing a broken reader must not hide the real error
                reader.close()


def _declares_dtd(path: str) -> bool:
    """Whether the regular file ``path`` holds DTD or entity markup (a sibling Bio-Formats may read)."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            return False
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return sanity.declares_dtd(data, min(len(data), sanity.MAX_SCAN))
    except (OSError, ValueError):
        return False  # unreadable: Bio-Formats cannot read it either


def _translate(exc: Any, path: str, j: dict[str, Any]) -> ExtractionError:
    cls = exc.getClass()
    name = str(cls.getSimpleName())
    message = exc.getMessage()
    text = f"{name}: {one_line(str(message))}" if message is not None else name
    if isinstance(exc, j["UnknownFormatException"]):
        return UnsupportedFormatError(f"Bio-Formats does not recognise the format ({text})")
    import jpype

    fatal = isinstance(exc, jpype.JClass("java.lang.Error"))
    return ExtractionError(f"Bio-Formats failed: {text}", fatal=fatal)
