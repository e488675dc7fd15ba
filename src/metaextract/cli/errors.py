"""The command line's one error boundary: a library error becomes one line and an exit code, never a traceback.

:func:`as_click` maps an exception to the :class:`click.ClickException` to raise (exit 1, or 2 for a usage
error), or None for one that is not ours to word (a bug: its traceback is what a report needs). The top-level
group applies it to every command (:class:`metaextract.cli._Main`); :func:`cli_errors` applies it to one
function, for code that calls commands on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0] if len(exc.args) == 1 else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def as_click(exc: BaseException) -> click.ClickException | None:
    """The one-line ClickException for a library error, or None when ``exc`` is not one we word."""
    if isinstance(exc, click.ClickException):
        return exc
    if isinstance(exc, (click.exceptions.Exit, click.exceptions.Abort)):
        return None  # click's own way out (--help, --version, Ctrl-C): nothing to word, nothing to import
    from metaextract.experiment import NotFoundError
    from metaextract.store import StoreError
    from metaextract.store.db import database_error
    from metaextract.store.jobs import JobBusyError

    if isinstance(exc, (NotFoundError, JobBusyError, StoreError)):
        return click.ClickException(_first_line(exc))
    if isinstance(exc, ValueError):
        return click.UsageError(_first_line(exc))
    said = database_error(exc)
    if said is not None:
        return click.ClickException(said)
    if isinstance(exc, OverflowError):
        return click.UsageError(f"number too large: {_first_line(exc)}")
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return click.ClickException(f"{where}{exc.strerror}")
    return None


def cli_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into one clean message (exit 1 or 2), never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            mapped = as_click(exc)
            if mapped is None or mapped is exc:
                raise
            raise mapped from None

    return wrapper
