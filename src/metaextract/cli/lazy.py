"""Command groups whose commands are imported when one is used, not when the command line starts.

``metaextract --version`` or ``--help`` should not pay for SQLAlchemy, Dask or the engines: a group lists its
commands from a table (name → module, attribute, one-line help) and imports a command's module only when
that command runs (or its own ``--help`` is asked for). ``tests/test_cli_lazy.py`` checks that each table's
help line is the command's own.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A :class:`click.Group` with commands named in :attr:`lazy` and imported on first use."""

    #: name → (module, attribute, the command's one-line help as ``--help`` lists it)
    lazy: dict[str, tuple[str, str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in self.lazy:
            found = self.load(cmd_name)
        return found

    def load(self, name: str) -> click.Command:
        """Import the command ``name`` of :attr:`lazy` and keep it."""
        module, attribute, _ = self.lazy[name]
        found: click.Command = getattr(importlib.import_module(module), attribute)
        self.add_command(found, name)
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click lists commands, but with the table's help lines for commands not imported yet."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        rows: list[tuple[str, str]] = []
        for name in names:
            cmd = self.commands.get(name)
            if cmd is not None:
                if cmd.hidden:
                    continue
                rows.append((name, cmd.get_short_help_str(limit)))
            else:
                rows.append((name, click.Command(name, help=self.lazy[name][2]).get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
