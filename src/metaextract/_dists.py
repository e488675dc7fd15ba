"""Installed distributions' versions and entry points, read straight from the ``*.dist-info`` (and
``*.egg-info``) folders on ``sys.path``, without importing ``importlib.metadata``: that import is a fifth
of an extraction process's start, and such a process needs only two versions and one entry-point group.

The answers are ``importlib.metadata``'s (``tests/test_dists.py`` compares them for every installed
distribution); where ``sys.path`` holds something else than folders (a zip, an egg), ``None`` says
"ask ``importlib.metadata``".
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache

_META = (".dist-info", ".egg-info")


def _normal(name: str) -> str:
    """A distribution name as ``importlib.metadata`` compares it (PEP 503, with underscores)."""
    return re.sub(r"[-_.]+", "_", name).lower()


@cache
def _found() -> tuple[tuple[str, str], ...] | None:
    """``(normalised name, metadata folder)`` of every distribution, in ``sys.path`` order; None when a
    path entry is not a plain folder."""
    out = []
    for entry in sys.path:
        folder = entry or os.getcwd()
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return None  # a zip or an egg on the path
            continue
        try:
            names = os.listdir(folder)  # in the order importlib.metadata takes them
        except OSError:
            continue
        for item in names:
            if item.endswith(_META):  # name-version.dist-info: the name is before the first "-"
                out.append((_normal(item.rpartition(".")[0].partition("-")[0]), os.path.join(folder, item)))
    return tuple(out)


def _header(folder: str, field: str) -> str | None:
    for meta in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, meta), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if not line.strip():
                        return None  # the headers end at the first empty line
                    key, sep, value = line.partition(":")
                    if sep and key.strip().lower() == field.lower():
                        return value.strip()
        except OSError:
            continue
    return None


def version(name: str) -> str | None:
    """The version of distribution ``name`` (the first on ``sys.path``); None: not found, or not sure."""
    found = _found()
    if found is None:
        return None
    want = _normal(name)
    for norm, folder in found:
        if norm == want:
            return _header(folder, "Version")
    return None


def entry_points(group: str) -> list[tuple[str, str]] | None:
    """``(name, value)`` of every entry point in ``group``, distributions in ``sys.path`` order (each name
    once: the first distribution's); None when not sure."""
    found = _found()
    if found is None:
        return None
    out: dict[str, str] = {}
    seen: set[str] = set()
    for norm, folder in found:
        if norm in seen:
            continue  # a distribution's first copy on the path is the one installed
        seen.add(norm)
        try:
            with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            continue
        section = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
                continue
            if section == group:
                key, sep, value = line.partition("=")
                if sep:
                    out.setdefault(key.strip(), value.strip())
    return list(out.items())
