"""Files that are not images although an image reader's format claims them (so their failure is no
failure of the folder): a DICOM object without pixel data, e.g. a microscopy bulk annotation."""

from __future__ import annotations

DICOM_PREAMBLE = 128


def why_not_an_image(path: str, head: bytes) -> str | None:
    """A one-line reason when ``path`` is a well-formed file of an image format that holds no image."""
    if head[DICOM_PREAMBLE:DICOM_PREAMBLE + 4] == b"DICM":
        return _dicom(path)
    return None


def _dicom(path: str) -> str | None:
    try:
        import pydicom
        from pydicom.uid import UID
    except ImportError:  # pragma: no cover - pydicom is a dependency
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=False)
    except Exception:  # noqa: BLE001 - unreadable: not our verdict to give
        return None
    pixel_tags = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, FloatPixelData, DoubleFloatPixelData
    if any(tag in ds for tag in pixel_tags) or "Rows" in ds:
        return None
    # stop_before_pixels hides PixelData itself: check the file really ends without it
    full = pydicom.dcmread(path, force=False, specific_tags=["PixelData"])
    if "PixelData" in full:
        return None
    sop = ds.get("SOPClassUID")
    kind = UID(str(sop)).name if sop else "unknown SOP class"
    return f"not an image: DICOM object without pixel data ({kind})"
