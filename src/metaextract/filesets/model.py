"""The contract of a fileset kind: what detection finds and what a read returns."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Place:
    """Where one plane a file holds sits in its fileset's OME-XML document.

    ``image`` is the Image's index in the document; ``well`` is the well's name (``"B02"``); ``field`` is the
    WellSample's index within its well, from 0; ``z``, ``c``, ``t`` are OME's 0-based TheZ/TheC/TheT.
    ``position`` (stage X, Y, Z in µm, each None where the vendor does not say) and ``time`` (seconds since
    the acquisition's start, or None) only where the vendor files say. ``plane`` is the plane's index
    inside the member file (0 for a single-plane TIFF).
    """

    image: int
    z: int
    c: int
    t: int
    plate: str | None = None
    well: str | None = None
    field: int | None = None
    plane: int = 0
    position: tuple[float | None, float | None, float | None] | None = None
    time: float | None = None


@dataclass(frozen=True, slots=True)
class FilesetSpec:
    """Files that belong together, as detection found them (no file read beyond names and vendor files).

    ``kind`` names the reader (``"metaxpress-htd"``, ``"metaxpress-names"``, ``"cellvoyager"``,
    ``"harmony"``, ``"scanr-names"``, ``"single"`` ...); ``master`` is the file a Bio-Formats reader would be
    given (absolute path); ``images`` the members that hold pixels, ``metadata`` the vendor files.
    """

    kind: str
    master: str
    images: tuple[str, ...]
    metadata: tuple[str, ...] = ()

    def members(self) -> tuple[str, ...]:
        """Every file of the fileset, each once: the master, the images, the vendor files."""
        return tuple(dict.fromkeys((self.master, *self.images, *self.metadata)))


@dataclass(slots=True)
class FilesetRead:
    """One read of a whole fileset: its OME-XML document, each member's planes in it, and notes.

    ``places`` maps every image member (absolute path) to the planes it holds; ``notes`` say what a user
    should know (e.g. "Bio-Formats 7.3.1 fails on this plate; read from the .HTD and the file names").
    ``layout_from_names`` is True where the vendor's file naming is all the layout there was.
    """

    spec: FilesetSpec
    omexml: str
    places: dict[str, list[Place]]
    notes: list[str] = field(default_factory=list)
    layout_from_names: bool = False


@dataclass(slots=True)
class FilesetLayout:
    """Where every image member sits in its fileset, had from names and vendor files alone (no image file
    opened): what registration stores, cheaply, before any read.

    ``places`` maps every image member (absolute path) to its planes, as the kind's ``read`` gives them
    except for what only the image files say (a kind's ``layout`` names what it leaves out in ``notes``,
    e.g. MetaXpress' stage positions and acquisition times, which are in each TIFF's header); a member with
    no place in the layout maps to ``[]``. ``layout_from_names`` as in :class:`FilesetRead`.
    """

    spec: FilesetSpec
    places: dict[str, list[Place]]
    notes: list[str] = field(default_factory=list)
    layout_from_names: bool = False
