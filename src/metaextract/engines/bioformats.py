"""Bio-Formats in this process's JVM, configured like the seed's
``showinf -omexml-only -nopix -novalid -nocore -no-upgrade -no-sas``.

One ``ImageReader`` and one ``OMEXMLService`` live as long as the process; every file gets a fresh
OME-XML metadata store. The XML is produced as ImageInfo 7.3.1's ``printOMEXML`` does (read from its
bytecode): the reader's metadata store serialised by the service, indented with 3 spaces.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .._clock import starting_up
from .._java import start_jvm
from ..result import one_line
from .base import ExtractionError, UnsupportedFormatError

NAME = "bioformats"
DIRECTORY_CACHE_MS = 60_000


class BioFormatsEngine:
    """The Bio-Formats engine (the fallback for every file no native engine claims)."""

    name = NAME

    def __init__(self, *, group_files: bool = True) -> None:
        self.group_files = group_files
        self._reader: Any = None
        self._classes: Any = None
        self._new_reader: Any = None
        self._service: Any = None
        self._j: dict[str, Any] = {}

    # -- setup ---------------------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._reader is not None:
            return
        with starting_up():  # the JVM start and the reader classes do not count on a file's timeout
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
        }
        self._service = ServiceFactory().getInstance(OMEXMLService)
        self._classes = ImageReader.getDefaultReaderClasses()
        self._new_reader = lambda: ImageReader(self._classes)
        self._reader = self._new_reader()

    def version(self) -> str:
        self._ensure()
        return str(self._j["FormatTools"].VERSION)

    # -- contract ------------------------------------------------------------------------------------
    def claim(self, path: str, head: bytes) -> int:
        return 1  # the fallback: it claims everything, with the weakest evidence

    def extract(self, path: str) -> str:
        return self._read(path, self.group_files)

    def extract_alone(self, path: str) -> str:
        """Read ``path`` with file grouping off: no sibling is opened (a file set is read as one file).

        ``auto`` uses it when a grouped read failed, because one broken sibling (e.g. a non-image DICOM
        in the folder) makes Bio-Formats fail on every file of the group.
        """
        return self._read(path, False)

    def _read(self, path: str, group_files: bool) -> str:
        import jpype

        self._ensure()
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
            return str(j["XMLTools"].indentXML(xml, 3, True))
        except jpype.JException as exc:
            raise _translate(exc, path, j) from None
        finally:
            with contextlib.suppress(Exception):  # closing a broken reader must not hide the real error
                reader.close()


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
