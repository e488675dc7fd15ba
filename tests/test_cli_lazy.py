"""The command line starts light: a command's module (and what it imports) is loaded when it runs."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from metaextract.cli import main
from metaextract.cli.lazy import LazyGroup

HEAVY = {"sqlalchemy", "alembic", "dask", "distributed", "rich", "lxml", "tifffile", "jpype", "numpy", "pandas",
         "psycopg", "psutil", "pydicom", "nd2", "ome_types"}

_PROBE = """
import json, sys
from metaextract.cli import main
try:
    main(sys.argv[1:], prog_name="metaextract")
except SystemExit:
    pass
print("LOADED=" + json.dumps(sorted(sys.modules)))
"""


def _modules(*args: str) -> set[str]:
    """Every module a command in a fresh process has imported once it is done."""
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120,
                         check=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("LOADED=")][-1]
    return set(json.loads(line.removeprefix("LOADED=")))


def _loaded(*args: str) -> set[str]:
    """The top-level packages a command has imported."""
    return {m.split(".")[0] for m in _modules(*args)}


def _groups() -> list[LazyGroup]:
    step = main.get_command(click.Context(main), "step")
    assert isinstance(step, LazyGroup)
    return [main, step]


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["step", "--help"], ["someexp", "--help"]])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    assert not _loaded(*args) & HEAVY


def test_status_imports_only_the_database(tmp_path: object, db_url: str) -> None:
    from metaextract.experiment import create_experiment
    from metaextract.store import open_store

    with open_store(db_url) as store:
        create_experiment(store, "lazy")
    modules = _modules("--db", db_url, "lazy", "status")
    loaded = {m.split(".")[0] for m in modules}
    assert "sqlalchemy" in loaded and "metaextract.store.reports" in modules  # the control: the command did run
    assert not loaded & (HEAVY - {"sqlalchemy", "psycopg"}), loaded & HEAVY  # no Alembic for a current database
    # SQLAlchemy's Core only (the ORM costs ~0.1 s), and none of the job machinery or the folder walk
    beyond = {m for m in modules if m.startswith(("sqlalchemy.orm", "metaextract.jobs.step", "metaextract.jobs.runner",
                                                  "metaextract.experiment", "metaextract.extraction.pool"))}
    assert not beyond, beyond


def test_each_lazy_help_line_is_the_commands_own() -> None:
    for group in _groups():
        ctx = click.Context(group)
        for name, (_module, _attr, text) in group.lazy.items():
            real = group.get_command(ctx, name)
            assert real is not None, name
            assert click.Command(name, help=text).get_short_help_str(1000) == real.get_short_help_str(1000), name


def test_every_command_is_listed_and_loads() -> None:
    for group in _groups():
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert isinstance(cmd, click.Command) and cmd.help, name
