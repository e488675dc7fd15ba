"""Engines that read what Bio-Formats cannot: asked only in ``auto``, only after Bio-Formats failed.

A rescuer never claims a file (its ``claim`` is 0), so no file Bio-Formats reads is ever routed to it.
When Bio-Formats failed even with file grouping off, ``_extract._beyond`` asks every rescuer how strongly
it recognises the file (``rescues``) and lets them try in that order; the first that reads it answers,
with notes saying which engine read the file and why.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from metaextract.engines.base import Engine


@runtime_checkable
class Rescuer(Protocol):
    """What a rescue engine adds to the :class:`~metaextract.engines.base.Engine` contract."""

    name: str

    def version(self) -> str: ...

    def rescues(self, path: str, head: bytes) -> int:
        """0 when the engine does not recognise the file, else higher for stronger evidence."""
        ...

    def rescue(self, path: str) -> tuple[str, list[str]]:
        """The OME-XML and the notes to record (what the engine read, what it could not)."""
        ...


def rescuers(candidates: list[Engine], path: str, head: bytes) -> list[Rescuer]:
    """The engines among ``candidates`` that recognise ``path``, strongest evidence first."""
    scored = []
    for engine in candidates:
        if not isinstance(engine, Rescuer):
            continue
        try:
            score = engine.rescues(path, head)
        except Exception:  # noqa: BLE001, S112 - a recogniser that crashes simply does not recognise
            continue
        if score > 0:
            scored.append((score, engine.name, engine))
    return [engine for _, _, engine in sorted(scored, key=lambda s: (-s[0], s[1]))]
