"""The ``with`` protocol of an object that has a ``close()``: one mixin instead of the same three methods
on every resource (a compound document, the store and the handles that may own it, the extraction pool)."""

from __future__ import annotations

from typing import Self


class Closing:
    """Closed by :meth:`close`, or on leaving a ``with`` block (entering returns the object itself)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
