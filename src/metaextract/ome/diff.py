"""Whole-document comparison of two OME-XML documents: the first element where they differ.

Two documents are equal exactly when :func:`metaextract.ome.normalise` makes them the same text (white
space and UUIDs aside, nothing else); :func:`first_difference` then returns None. Otherwise it names the
first place, in document order, where the normalised documents differ, as a path such as
``/OME/Instrument[0]/Detector[1]@Model`` (the index counts siblings of the same name, from 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from metaextract.ome import normalise, parse


@dataclass(frozen=True)
class Difference:
    """Where two documents first differ and what each has there (None: it has nothing there)."""

    path: str
    ours: str | None
    theirs: str | None

    def __str__(self) -> str:
        return f"{self.path}: {self.ours!r} != {self.theirs!r}"


def _name(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else str(el.tag)


def _label(el: etree._Element | None) -> str | None:
    return None if el is None else f"<{_name(el)}>"


def _attrs(el: etree._Element) -> dict[str, str]:
    return {etree.QName(key).localname if key.startswith("{") else key: value for key, value in el.attrib.items()}


def _text(value: str | None) -> str | None:
    return " ".join(value.split()) or None if value is not None else None


def _children(el: etree._Element) -> list[tuple[str, etree._Element]]:
    """The element children of ``el`` with their paths' last step (``Name[i]``, i among same-named ones)."""
    counts: dict[str, int] = {}
    out = []
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions are not OME content
        name = _name(child)
        out.append((f"{name}[{counts.get(name, 0)}]", child))
        counts[name] = counts.get(name, 0) + 1
    return out


def _walk(ours: etree._Element, theirs: etree._Element, path: str) -> Difference | None:
    if _name(ours) != _name(theirs):
        return Difference(path, _label(ours), _label(theirs))
    mine, other = _attrs(ours), _attrs(theirs)
    for key in sorted(set(mine) | set(other)):
        if mine.get(key) != other.get(key):
            return Difference(f"{path}@{key}", mine.get(key), other.get(key))
    if _text(ours.text) != _text(theirs.text):
        return Difference(f"{path}/text()", _text(ours.text), _text(theirs.text))
    left, right = _children(ours), _children(theirs)
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else None
        b = right[index] if index < len(right) else None
        if a is None:
            return Difference(f"{path}/{right[index][0]}", None, _label(right[index][1]))
        if b is None:
            return Difference(f"{path}/{a[0]}", _label(a[1]), None)
        if a[0] != b[0]:
            return _misplaced(path, left, right, index)
        found = _walk(a[1], b[1], f"{path}/{a[0]}")
        if found is not None:
            return found
        if _text(a[1].tail) != _text(b[1].tail):
            return Difference(f"{path}/{a[0]}/tail()", _text(a[1].tail), _text(b[1].tail))
    return None


def _misplaced(path: str, left: list[tuple[str, etree._Element]], right: list[tuple[str, etree._Element]],
               index: int) -> Difference:
    """Children that part at ``index``: name the one only one side has (``/OME/Experimenter[0]: None !=
    '<Experimenter>'``), or, when both sides have both, the one out of order."""
    mine, theirs = left[index], right[index]
    if theirs[0] not in {step for step, _ in left}:
        return Difference(f"{path}/{theirs[0]}", None, _label(theirs[1]))
    if mine[0] not in {step for step, _ in right}:
        return Difference(f"{path}/{mine[0]}", _label(mine[1]), None)
    return Difference(f"{path}/{mine[0]}", f"{_label(mine[1])} at {index}", f"{_label(theirs[1])} at {index}")


def _first_text_difference(ours: str, theirs: str) -> Difference:
    """Where two texts part, with some context (for documents that do not parse, or that differ only in
    how they are written: attribute order, namespace prefixes)."""
    at = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(len(ours), len(theirs)))
    start = max(0, at - 30)
    return Difference(f"character {at}", ours[start:at + 40], theirs[start:at + 40])


def first_difference(ours: str, theirs: str) -> Difference | None:
    """The first place where two OME-XML documents differ after :func:`~metaextract.ome.normalise`, or None
    when they are equal (the conformance test's equality: nothing else is ignored)."""
    left, right = normalise(ours), normalise(theirs)
    if left == right:
        return None
    try:
        a, b = parse(left, huge=True), parse(right, huge=True)
    except (etree.XMLSyntaxError, ValueError):  # not well-formed, or refused as unsafe
        return _first_text_difference(left, right)
    found = _walk(a, b, f"/{_name(a)}")
    return found if found is not None else _first_text_difference(left, right)
