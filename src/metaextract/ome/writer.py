"""Write OME-XML the way Bio-Formats' ``showinf -omexml-only`` prints it, for the native engines.

Bio-Formats serialises its metadata store with attributes in alphabetical order, three spaces of
indentation, numbers as Java's ``Double.toString`` spells them and empty elements as ``<X/>``; a
native engine that writes the same bytes can be compared with it field by field and as a whole.
"""

from __future__ import annotations

import itertools
import math
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from metaextract import ome

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://www.openmicroscopy.org/Schemas/OME/2016-06 '
    'http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd">'
)
MICRON = "µm"
REFERENCE_FRAME = "reference frame"  #: the unit of a stage position a reader cannot place in space

#: numpy dtype name -> OME pixel type
PIXEL_TYPES = {
    "uint8": "uint8", "int8": "int8", "uint16": "uint16", "int16": "int16", "uint32": "uint32",
    "int32": "int32", "float32": "float", "float64": "double",
}


def zct(plane: int, order: str, size: tuple[int, int, int, int, int]) -> tuple[int, int, int]:
    """The (Z, C, T) of plane number ``plane`` for a dimension order such as ``XYZCT`` and sizes (X, Y, Z, C, T),
    as ``FormatTools.getZCTCoords`` gives them."""
    extent = {"Z": size[2], "C": size[3], "T": size[4]}
    found: dict[str, int] = {}
    for axis in order[2:]:
        found[axis] = plane % extent[axis]
        plane //= extent[axis]
    return found["Z"], found["C"], found["T"]


def f32(value: float) -> float:
    """``value`` rounded to a Java ``float`` (IEEE single precision)."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def jfloat(value: float) -> str:
    """A float32 as Java's ``Float.toString`` writes it (the shortest digits that give the float back)."""
    if not math.isfinite(value) or value == 0:
        return jdouble(value)
    for digits in range(1, 10):
        text = f"{value:.{digits - 1}e}"
        if f32(float(text)) == value:
            return jdouble(float(text))
    return jdouble(value)


_JAVA_TRIMMED = "".join(map(chr, range(33)))


def jtrim(text: str) -> str:
    """``String.trim()``: strips every character up to U+0020 from both ends (Python's ``strip`` differs)."""
    return text.strip(_JAVA_TRIMMED)


def jdouble(value: float) -> str:
    """``value`` as Java's ``Double.toString`` writes it (``1.0``, ``0.65``, ``1.0E-4``, ``1.5E7``)."""
    v = float(value)
    if v == 0:
        return "-0.0" if math.copysign(1.0, v) < 0 else "0.0"
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if 1e-3 <= abs(v) < 1e7:
        return repr(v)  # Python's shortest repr is positional here, as Java's is
    parts = Decimal(repr(abs(v))).as_tuple()
    digits = "".join(map(str, parts.digits))
    exponent = len(digits) - 1 + int(parts.exponent)
    digits = digits.rstrip("0") or "0"
    return f"{'-' if v < 0 else ''}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def jnumber(value: float | int) -> str:
    """A Java ``Double`` attribute (``1.0``) from any number."""
    return jdouble(float(value))


#: What Bio-Formats removes from every string a reader puts into its metadata store (``FilterMetadata`` with
#: ``DataTools.sanitize``, as ``setMetadataFiltered(true)`` runs it): the ISO control characters but tab and
#: newline, so C0 controls (which XML 1.0 forbids, carriage return included) and DEL to U+009F. U+FFFE and
#: U+FFFF, which Bio-Formats keeps and then cannot serialise (``getOMEXML`` gives null), go too: XML forbids them.
_UNWRITABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
_ATTR_SPECIAL = re.compile('[&<>"\n\r\t\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]')  # one search: fast path


def clean(text: str) -> str:
    """``text`` without the characters Bio-Formats drops from a reader's strings (:data:`_UNWRITABLE`)."""
    return _UNWRITABLE.sub("", text)


def _escape_attr(text: str) -> str:
    if _ATTR_SPECIAL.search(text) is None:
        return text
    return (_UNWRITABLE.sub("", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


def _escape_text(text: str) -> str:
    if _ATTR_SPECIAL.search(text) is None:
        return text
    return (_UNWRITABLE.sub("", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


class _Form(NamedTuple):
    """How an element of one tag, attribute names and depth is written."""

    start: str  # '   <Tag a="%s" b="%s"', filled with the escaped values
    names: tuple[str, ...]  # the attribute names as ome's classes know them: " a", " b"
    id: int  # never reused, even after the cache below is emptied: it stands for this form in a shape


_forms: dict[tuple[str, tuple[str, ...], int], _Form] = {}
_form_ids = itertools.count(1)


def _form(tag: str, keys: tuple[str, ...], depth: int) -> _Form:
    form = _forms.get((tag, keys, depth))
    if form is None:
        start = f"{'   ' * depth}<{tag}".replace("%", "%%") + "".join(f' {k.replace("%", "%%")}="%s"' for k in keys)
        if len(_forms) > 4096:
            _forms.clear()
        form = _forms[(tag, keys, depth)] = _Form(start, tuple(" " + k for k in keys), next(_form_ids))
    return form


class _Shaping:
    """The validity shape of the document being written, gathered as it is written: the forms of its
    elements in order (by id; a closing tag as the negative id), their texts as :func:`ome.shape` sees
    them, and then every attribute value's class.

    It is not :func:`ome.shape`'s tuple, but as fine: documents written with equal ones have equal
    :func:`ome.shape` (the same forms, texts and value classes make the same text around values of the
    same classes), so they are valid or invalid alike (``tests/test_omexml.py`` checks it).
    """

    __slots__ = ("names", "tokens", "values")

    def __init__(self) -> None:
        self.tokens: list[int | str] = []
        self.names: list[str] = []
        self.values: list[str] = []

    def text(self, tag: str, text: str) -> None:
        marker = ome.leaf(text, tag) if tag in _LEAVES else None
        self.tokens.append(text if marker is None else marker)

    def key(self) -> tuple[str, tuple[int | str, ...], tuple[str, ...]]:
        get, value_class = ome.known_classes().get, ome.value_class
        classes = [get(pair) or value_class(*pair) for pair in zip(self.names, self.values, strict=True)]
        return ("\x00written", tuple(self.tokens), tuple(classes))


_LEAVES = frozenset({"AcquisitionDate", "Description"})


@dataclass
class El:
    """One element: tag, attributes (written sorted, like Bio-Formats), children or text."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[El] = field(default_factory=list)
    text: str | None = None

    def add(self, child: El) -> El:
        self.children.append(child)
        return child

    def write(self, out: list[str], depth: int, sh: _Shaping | None = None) -> None:
        tag, attrs = self.tag, self.attrs
        if attrs:
            keys = tuple(sorted(attrs))
            values = [attrs[k] for k in keys]
            if _ATTR_SPECIAL.search("".join(values)) is not None:
                values = [_escape_attr(v) for v in values]
        else:
            keys, values = (), []
        form = _forms.get((tag, keys, depth)) or _form(tag, keys, depth)
        start = form.start % tuple(values) if values else form.start
        if sh is not None:
            sh.tokens.append(form.id)
            if values:
                sh.names.extend(form.names)
                sh.values.extend(values)
        if self.text:
            text = _escape_text(self.text)
            out.append(f"{start}>{text}</{tag}>")
            if sh is not None:
                sh.text(tag, text)
        elif self.children:
            out.append(start + ">")
            for child in self.children:
                child.write(out, depth + 1, sh)
            out.append(f"{'   ' * depth}</{tag}>")
            if sh is not None:
                sh.tokens.append(-form.id)
        else:
            out.append(start + "/>")


def document(*elements: El) -> str:
    """The whole ``<OME>`` document around ``elements`` (Images, Plates, Instruments …).

    Its validity shape is worked out while it is written and returned with it (a
    :class:`metaextract.ome.Written`), so validating it does not cut the text up again.
    """
    out = [HEADER]
    sh = _Shaping()
    for element in elements:
        element.write(out, 1, sh)
    out.append("</OME>")
    xml = "\n".join(out) + "\n"
    return xml if "\x00" in xml else ome.Written(xml, sh.key())


#: What a document is written from by :func:`templated`: strings (each written as it is into exactly one
#: attribute or text), None (absent), and booleans (flags that only choose the structure)
Values = dict[str, "str | bool | None"]


def string(value: str | bool | None) -> str:
    """A string of :data:`Values`, for a builder (it is one wherever the builder reads it as one)."""
    assert isinstance(value, str)
    return value


def maybe(value: str | bool | None) -> str | None:
    """A string of :data:`Values` that may be absent."""
    assert value is None or isinstance(value, str)
    return value


class _Template(NamedTuple):
    text: str  # the document with %s where the values go (every other % doubled)
    keys: tuple[str, ...]  # the values, in the order they go in
    attrs: tuple[str | None, ...]  # per value: the attribute it fills (" Name"), or None for a text ...
    tags: tuple[str, ...]  # ... and then the element whose text it is
    id: int


_templates: dict[tuple[object, tuple[object, ...]], _Template] = {}
_SENTINEL = re.compile("\ue000([0-9]+)\ue001")  # private-use marks: kept by the writer
_BEFORE_VALUE = re.compile(r'\s([\w:.-]+)="\Z')
_BEFORE_TEXT = re.compile(r"<([\w:.-]+)[^<>]*>\Z")


def templated(build: Callable[[Values], El], values: Values) -> str:
    """``document(build(values))``, written from a template made once per ``build`` and shape of
    ``values`` (which are present, which flags are set, which texts are empty).

    ``build`` must put every string value, unchanged, into one attribute or one element's text, and
    choose the document's structure by nothing but that shape. A plate's files then cost one string
    formatting each, and the validity shape returned with it (:class:`metaextract.ome.Written`) is the template's
    and the values' classes: documents of one template whose values are of the same classes have the
    same :func:`metaextract.ome.shape`.
    """
    form = tuple(v if v is None or v is True or v is False or v == "" else "*" for v in values.values())
    tpl = _templates.get((build, form))
    if tpl is None:
        tpl = _template(build, values, form)
    args: list[str] = [values[key] for key in tpl.keys]  # type: ignore[misc]  # strings, by the form
    if _ANY_SPECIAL.search("".join(args)) is not None:
        args = [_escape_attr(v) if attr is not None else _escape_text(v)
                for v, attr in zip(args, tpl.attrs, strict=True)]
    get, value_class, leaf = ome.known_classes().get, ome.value_class, ome.leaf
    classes = [get((attr, v)) or value_class(attr, v) if attr is not None
               else leaf(v, tag) or v if tag in _LEAVES else v
               for v, attr, tag in zip(args, tpl.attrs, tpl.tags, strict=True)]
    xml = tpl.text % tuple(args)
    return xml if "\x00" in xml else ome.Written(xml, ("\x00template", tpl.id, tuple(classes)))


_ANY_SPECIAL = _ATTR_SPECIAL  # what an attribute or a text would have escaped or dropped


def _template(build: Callable[[Values], El], values: Values, form: tuple[object, ...]) -> _Template:
    """Write ``build``'s document once with a marker in place of each non-empty string value, and cut it there."""
    marked: Values = {}
    for i, (key, value) in enumerate(values.items()):
        marked[key] = f"\ue000{i}\ue001" if isinstance(value, str) and value else value
    xml = document(build(marked))
    parts = _SENTINEL.split(xml)
    names = list(values)
    keys = tuple(names[int(i)] for i in parts[1::2])
    expected = [k for k, v in marked.items() if isinstance(v, str) and v]
    if sorted(keys) != sorted(expected):
        raise ValueError(f"{build.__name__} must write each value once, as it is: {sorted(keys)} != {sorted(expected)}")
    attrs: list[str | None] = []
    tags: list[str] = []
    for before, after in zip(parts[0:-1:2], parts[2::2], strict=True):
        attr, text = _BEFORE_VALUE.search(before), _BEFORE_TEXT.search(before)
        if not (attr is not None and after.startswith('"') or attr is None and text is not None
                and after.startswith(f"</{text.group(1)}>")):
            raise ValueError(f"{build.__name__} must write each value as it is, as a whole attribute or text")
        attrs.append(" " + attr.group(1) if attr is not None else None)
        tags.append(text.group(1) if attr is None and text is not None else "")
    if len(_templates) > 1024:
        _templates.clear()
    tpl = _Template("%s".join(p.replace("%", "%%") for p in parts[0::2]), keys, tuple(attrs), tuple(tags),
                    next(_form_ids))
    _templates[(build, form)] = tpl
    return tpl


def positions(attrs: dict[str, str], values: Iterable[float | None], axes: str = "XYZ",
              unit: str = REFERENCE_FRAME) -> None:
    """A plane's ``Position{X,Y,Z}`` and their unit in ``attrs``, one per axis of ``axes`` given a value."""
    for axis, value in zip(axes, values, strict=True):
        if value is not None:
            attrs[f"Position{axis}"] = jdouble(value)
            attrs[f"Position{axis}Unit"] = unit


def pixels(*, index: int = 0, dimension_order: str = "XYCZT", pixel_type: str,
           size: tuple[int | str, int | str, int | str, int | str, int | str], big_endian: bool | str,
           significant_bits: int | str, interleaved: bool = False,
           physical: tuple[float | str | None, float | str | None, float | str | None] = (None, None, None)) -> El:
    """A ``Pixels`` element as ``MetadataTools.populatePixels`` fills it (sizes are X, Y, Z, C, T; a string
    is written as it is, e.g. by a :func:`templated` builder)."""
    x, y, z, c, t = size
    endian = big_endian if isinstance(big_endian, str) else "true" if big_endian else "false"
    attrs = {
        "BigEndian": endian, "DimensionOrder": dimension_order,
        "ID": f"Pixels:{index}", "Interleaved": "true" if interleaved else "false",
        "SignificantBits": str(significant_bits), "SizeX": str(x), "SizeY": str(y), "SizeZ": str(z),
        "SizeC": str(c), "SizeT": str(t), "Type": pixel_type,
    }
    for axis, value in zip("XYZ", physical, strict=True):
        if value is not None:
            attrs[f"PhysicalSize{axis}"] = value if isinstance(value, str) else jdouble(value)
            attrs[f"PhysicalSize{axis}Unit"] = MICRON
    return El("Pixels", attrs)


def channel(image: int, index: int, samples: int | str, **attrs: str) -> El:
    """A ``Channel`` with its empty ``LightPath``, as Bio-Formats writes every channel."""
    el = El("Channel", {"ID": f"Channel:{image}:{index}", "SamplesPerPixel": str(samples), **attrs})
    el.add(El("LightPath"))
    return el
