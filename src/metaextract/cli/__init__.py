"""The ``metaextract`` command line: a thin click layer over the library.

``metaextract EXP COMMAND`` (the seed's form) is routed to the ``step`` group; the other top-level
commands (``show``, ``experiment``, ...) are looked up first.
"""

from __future__ import annotations

from typing import Any

import click

from metaextract.cli.lazy import LazyGroup


def suggest(word: str, choices: list[str]) -> str | None:
    """The command ``word`` most likely meant (a typo such as ``sumbit``), or None."""
    import difflib

    close = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.7)
    return close[0] if close else None


class _Main(LazyGroup):
    """Routes ``metaextract [OPTIONS] EXP COMMAND ...`` to ``step EXP COMMAND ...``, and is the command line's
    one error boundary: every library error of every command becomes one line (:mod:`.errors`)."""

    lazy = {
        "show": ("metaextract.cli.show", "show",
                 "Print the OME-XML of each FILE (default), or one summary line per image."),
        "compare": ("metaextract.cli.compare", "compare",
                    "Run a native engine and Bio-Formats on each FILE and print where their documents differ."),
        "experiment": ("metaextract.cli.experiment", "command",
                       "Create experiments and register their folders (EXP is a name, or #ID for an id)."),
        "step": ("metaextract.cli.step", "command",
                 "The metaextract step of experiment EXP (its name, or #ID): init, run, info, log, cleanup, status."),
        "serve": ("metaextract.web.serve", "serve",
                  "Serve a read-only web view of experiments, plate maps, submissions and files."),
    }

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        i = 0
        takes_value = {"--db"}
        while i < len(args):
            a = args[i]
            if a in takes_value:
                i += 2
                continue
            if a.startswith("-"):
                i += 1
                continue
            if a not in self.list_commands(ctx):
                self._refuse_typo(ctx, a, args[i + 1:])
                args = [*args[:i], "step", *args[i:]]
            break
        return super().parse_args(ctx, args)

    def _refuse_typo(self, ctx: click.Context, word: str, rest: list[str]) -> None:
        """A usage error when ``word``, about to be taken as EXP, looks like a mistyped command and what
        follows it is no step command (``metaextract sumbit``, ``metaextract shwo x.tif``)."""
        step = self.get_command(ctx, "step")
        step_cmds = step.list_commands(ctx) if isinstance(step, click.Group) else []
        if rest and rest[0] in step_cmds:
            return  # `metaextract EXP init`: EXP is an experiment, whatever it looks like
        guess = suggest(word, [*self.list_commands(ctx), *step_cmds])
        if guess is not None:
            raise click.UsageError(f"no command {word!r} (did you mean {guess}?); as `metaextract EXP COMMAND`, "
                                   f"{word!r} would be taken as the experiment EXP")

    def invoke(self, ctx: click.Context) -> Any:
        from metaextract.cli.errors import as_click

        try:
            return super().invoke(ctx)
        except Exception as exc:
            mapped = as_click(exc)
            if mapped is None or mapped is exc:
                raise
            raise mapped from None


def _version_text() -> str:
    from metaextract import __version__, bioformats_version

    try:
        bf = bioformats_version()
    except Exception as exc:  # noqa: BLE001
        bf = f"unavailable ({exc})"
    return f"metaextract {__version__}\nBio-Formats {bf}"


def _print_version(ctx: click.Context, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print our version and the Bio-Formats version, then exit.")
@click.option("--db", "db", metavar="URL", envvar="METAEXTRACT_DB",
              help="Database URL (sqlite:///path or postgresql+psycopg://...); default: a SQLite file in "
                   "the user data directory. Also METAEXTRACT_DB.")
@click.option("-v", "--verbose", count=True, help="More output (repeatable).")
@click.pass_context
def main(ctx: click.Context, db: str | None, verbose: int) -> None:
    """Extract OME-XML metadata from microscope image files, for whole experiments.

    \b
    metaextract show FILE...              print a file's OME-XML
    metaextract experiment create NAME    register an experiment, then `experiment add`
    metaextract EXP init|run|submit|resubmit|info|log|status|cleanup
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    ctx.obj["verbose"] = verbose


def run() -> None:
    main(prog_name="metaextract")


if __name__ == "__main__":  # pragma: no cover
    run()
