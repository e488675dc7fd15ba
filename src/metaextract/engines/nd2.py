"""Nikon ND2 through the ``nd2`` package: a rescue engine only.

``nd2`` reads ND2 metadata natively and writes OME through ome-types, but it cannot agree with
Bio-Formats 7.3.1 on the key fields of the corpus's ``nd2/cluster.nd2`` (the differences and their causes
are pinned in ``tests/test_engines_nd2.py``): so it claims no file, and ``auto`` asks it only for an ND2
that Bio-Formats failed to read.
"""

from __future__ import annotations

from .base import ExtractionError, UnsupportedFormatError

NAME = "nd2"
RESCUE = 50
#: ND2 files start with the chunk magic 0x0ABECEDA (little-endian), legacy ones with a JPEG 2000 box.
MAGIC = (b"\xda\xce\xbe\x0a", b"\x00\x00\x00\x0cjP  ")


def is_nd2(head: bytes) -> bool:
    return head.startswith(MAGIC)


class Nd2Engine:
    """ND2 metadata through ``nd2``; a rescuer (it claims nothing: it disagrees with Bio-Formats)."""

    name = NAME

    def version(self) -> str:
        import nd2

        return str(nd2.__version__)

    def claim(self, path: str, head: bytes) -> int:
        return 0  # key fields differ from Bio-Formats' (see the module docstring)

    def rescues(self, path: str, head: bytes) -> int:
        return RESCUE if is_nd2(head) else 0

    def rescue(self, path: str) -> tuple[str, list[str]]:
        return self.extract(path), ["ND2 metadata read by the nd2 package (its OME mapping, not Bio-Formats')"]

    def extract(self, path: str) -> str:
        try:
            import nd2
        except ImportError:  # pragma: no cover - a declared dependency
            raise ExtractionError("the nd2 engine needs the 'nd2' package (pip install nd2)") from None
        with open(path, "rb") as fh:
            head = fh.read(12)
        if not is_nd2(head):
            raise UnsupportedFormatError(f"not recognised as ND2 (first 4 bytes: {head[:4]!r})")
        try:
            with nd2.ND2File(path) as f:
                return str(f.ome_metadata().to_xml())
        except Exception as exc:  # noqa: BLE001 - nd2 raises many kinds; one line says which
            raise ExtractionError(f"nd2 cannot read the file: {type(exc).__name__}: {exc}") from None
