"""Files that belong to an acquisition but hold no image, and that Bio-Formats 7.3.1 does not recognise.

An acquisition folder holds more than images: Micro-Manager's NDTiff writes an ``NDTiff.index`` (where each
plane lies in the stacks) and a ``display_settings.txt`` (JSON), Yokogawa's CellVoyager writes its
measurement records (``.mlf``) and settings (``.mrf``) as XML. Bio-Formats answers each of them with
``UnknownFormatException`` (the reference's ``summary.tsv``: exit 1, "Unknown file format"), which ``auto``
records as *unsupported*. This engine gives that same verdict without starting a JVM, for exactly these
kinds, recognised by name **and** structure:

* ``NDTiff.index``: a length-prefixed JSON object (the plane's axes) followed by a length-prefixed file
  name ending in ``.tif``, as NDTiff writes its first entry;
* ``display_settings.txt``: a JSON object (Bio-Formats' text reader wants numbers, its Micro-Manager
  reader wants ``metadata.txt``);
* ``*.mlf`` / ``*.mrf``: XML whose root is ``MeasurementData`` / ``MeasurementDetail`` in Yokogawa's BTS
  namespace (Bio-Formats' CellVoyager readers open ``MeasurementResult.xml`` and ``.wpi``, not these).

Anything else (a renamed image, a damaged index, other XML) is not claimed and goes to Bio-Formats as
before. The verdict was checked against Bio-Formats on the corpus files and on renamed/edited copies
(``tests/test_engines_sidecar.py``).
"""

from __future__ import annotations

import json
import os
import re
import struct

from metaextract.engines.base import CLAIM, UnsupportedFormatError, head_of, package_version

NAME = "sidecar"
MAX_JSON = 1 << 20  # display settings and index axes are small; a bigger file is not ours to judge
BTS = b"http://www.yokogawa.co.jp/BTS/BTSSchema/1.0"
#: the root element after the XML declaration (and comments), with its namespace prefix
_ROOT = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<(?:(\w+):)?(\w+)\b([^>]*)>",
                   re.S)
_XMLNS = re.compile(rb"""xmlns(?::(\w+))?\s*=\s*["']([^"']*)["']""")
KINDS = {
    "ndtiff-index": "a Micro-Manager NDTiff index (where each plane lies in the dataset's TIFF stacks)",
    "display-settings": "Micro-Manager display settings (JSON)",
    "cv-measurement-data": "a Yokogawa CellVoyager measurement record list (.mlf)",
    "cv-measurement-detail": "a Yokogawa CellVoyager measurement settings file (.mrf)",
}


def _ndtiff_index(head: bytes) -> bool:
    if len(head) < 8:
        return False
    (n,) = struct.unpack_from("<i", head, 0)
    if not 2 <= n <= len(head) - 8 or head[4:5] != b"{":
        return False
    try:
        axes = json.loads(head[4:4 + n])
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        return False
    if not isinstance(axes, dict):
        return False
    (m,) = struct.unpack_from("<i", head, 4 + n)
    name = head[8 + n:8 + n + m]
    return 0 < m <= 4096 and len(name) == m and name.lower().endswith((b".tif", b".tiff"))


def _json_object(path: str, size: int) -> bool:
    if size > MAX_JSON:
        return False
    try:
        with open(path, "rb") as fh:
            value = json.loads(fh.read(MAX_JSON))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(value, dict)


def _bts_root(head: bytes) -> str | None:
    found = _ROOT.match(head)
    if found is None:
        return None
    prefix, local, attributes = found.groups()
    namespaces = {(p or b""): uri for p, uri in _XMLNS.findall(attributes)}
    if namespaces.get(prefix or b"") != BTS:
        return None
    return local.decode("ascii")


def kind_of(path: str, head: bytes) -> str | None:
    """Which non-image kind ``path`` is (a key of :data:`KINDS`), or None."""
    name = os.path.basename(path)
    lower = name.lower()
    if name == "NDTiff.index":
        return "ndtiff-index" if _ndtiff_index(head) else None
    if name == "display_settings.txt":
        try:
            size = os.path.getsize(path)
        except OSError:
            return None
        return "display-settings" if head[:1] == b"{" and _json_object(path, size) else None
    if lower.endswith(".mlf") and _bts_root(head) == "MeasurementData":
        return "cv-measurement-data"
    if lower.endswith(".mrf") and _bts_root(head) == "MeasurementDetail":
        return "cv-measurement-detail"
    return None


class SidecarEngine:
    """Claims the non-image files above and answers *unsupported* for them, as Bio-Formats does."""

    name = NAME
    suffixes = ("ndtiff.index", "display_settings.txt", ".mlf", ".mrf")  #: ``claim`` is 0 for other names
    magic = None

    def version(self) -> str:
        return f"{package_version('metaextract')}-{NAME}"

    def claim(self, path: str, head: bytes) -> int:
        return CLAIM if kind_of(path, head) else 0

    def extract(self, path: str) -> str:
        head = head_of(path, 4096, UnsupportedFormatError)
        kind = kind_of(path, head)
        if kind is None:
            raise UnsupportedFormatError("not a file this engine knows: it answers only for NDTiff.index, "
                                         "display_settings.txt and CellVoyager .mlf/.mrf files")
        raise UnsupportedFormatError(f"not an image: {KINDS[kind]}; Bio-Formats 7.3.1 does not recognise the "
                                     "format either")
