"""Names vs ids (issue 17, item 6): EXP is a name, an id only as ``#N``; names that would read as ids or
commands are refused; ``delete`` names what it deletes and deletes only with --yes or a terminal's yes."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaextract import MetadataExtractor
from metaextract.experiment import RESERVED_NAMES, NotFoundError
from metaextract.store import Store, open_store
from metaextract.store.models import experiments, utcnow

from .conftest import cli, cli_json, small_plate


def _legacy(db_url: str, *names: str) -> dict[str, int]:
    """Experiments inserted as an older version let them be named (all digits, a command word); their ids."""
    with open_store(db_url) as store, store.begin() as conn:
        return {n: int(conn.execute(experiments.insert().values(name=n, created=utcnow())
                                    .returning(experiments.c.id)).scalar_one()) for n in names}


def _names(db_url: str) -> list[str]:
    return [r["name"] for r in cli_json(db_url, "experiment", "list", "--json")]  # type: ignore[attr-defined]


def test_an_all_digit_name_is_a_name_and_hash_n_is_an_id(db_url: str, tmp_path: Path) -> None:
    ids = _legacy(db_url, "3", "alpha", "beta")
    assert ids["beta"] == 3 and ids["3"] != 3  # the trap of the issue: name "3" is not id 3
    cli(db_url, "experiment", "add", "beta", str(small_plate(tmp_path / "p", 1, 2)))
    res = cli(db_url, "experiment", "delete", "3", "--yes")
    assert f"deleted experiment '3' (id {ids['3']}): 0 image files" in res.stdout  # type: ignore[attr-defined]
    assert _names(db_url) == ["alpha", "beta"]
    res = cli(db_url, "experiment", "delete", "#3", "--yes")
    assert "deleted experiment 'beta' (id 3): 2 image files, 2 metadata files, 1 plates" in res.stdout  # type: ignore[attr-defined]
    assert _names(db_url) == ["alpha"]
    res = cli(db_url, "experiment", "show", "3", expect=1)
    assert res.output.strip() == "Error: no experiment named '3' (an id is written #3)"  # type: ignore[attr-defined]


def test_the_api_resolves_the_same_way(db_url: str) -> None:
    ids = _legacy(db_url, "2", "x")
    with open_store(db_url) as store:
        with MetadataExtractor("2", db=store) as step:
            assert (step.experiment_id, step.experiment_name) == (ids["2"], "2")
        with MetadataExtractor(ids["x"], db=store) as step, MetadataExtractor(f"#{ids['x']}", db=store) as step2:
            assert step.experiment_name == step2.experiment_name == "x"
        with pytest.raises(NotFoundError, match="no experiment with id 99"):
            MetadataExtractor("#99", db=store)


@pytest.mark.parametrize("name", ["7", "0042", "#x", "show", "init", "Submit", "experiment"])
def test_names_that_read_as_ids_or_commands_are_refused(sqlite_url: str, name: str) -> None:
    res = cli(sqlite_url, "experiment", "create", name, expect=2)
    errors = [line for line in res.output.splitlines() if line.startswith("Error")]  # type: ignore[attr-defined]
    assert len(errors) == 1 and errors[0].startswith(f"Error: experiment name {name!r}")
    assert "Traceback" not in res.output  # type: ignore[attr-defined]
    assert _names(sqlite_url) == []


def test_every_command_word_is_reserved() -> None:
    import click

    from metaextract.cli import main

    ctx = click.Context(main)
    groups = [main, *(main.get_command(ctx, name) for name in ("step", "experiment"))]
    words = {w for g in groups if isinstance(g, click.Group) for w in g.list_commands(ctx)}
    assert {"show", "submit", "summary", "create"} <= words  # the control: every group was listed
    assert words <= RESERVED_NAMES, words - RESERVED_NAMES


def test_an_experiment_named_like_a_command_is_reachable(db_url: str, tmp_path: Path) -> None:
    ids = _legacy(db_url, "show")
    cli(db_url, "experiment", "add", "show", str(small_plate(tmp_path / "p", 1, 1)))
    assert "experiment 1 'show'" in cli(db_url, "step", "show", "status").stdout  # type: ignore[attr-defined]
    assert "show: 1 run job" in cli(db_url, f"#{ids['show']}", "init").stdout  # type: ignore[attr-defined]
    assert cli_json(db_url, "experiment", "show", "show", "--json")["image_files"] == 1  # type: ignore[index]


def test_delete_without_yes_and_without_a_terminal_refuses(db_url: str, tmp_path: Path) -> None:
    cli(db_url, "experiment", "create", "keep")
    cli(db_url, "experiment", "add", "keep", str(small_plate(tmp_path / "p", 1, 1)))
    res = cli(db_url, "experiment", "delete", "keep", expect=1)
    assert res.output.strip().splitlines() == [  # type: ignore[attr-defined]
        "Error: not deleting experiment 'keep' (id 1): 1 image files, 2 metadata files, 1 plates, with their "
        "results and jobs: no terminal to confirm on; add --yes"]
    assert _names(db_url) == ["keep"]


def test_unknown_reference_is_one_line(store: Store) -> None:
    with pytest.raises(NotFoundError, match=r"^no experiment named 'nope'$"):
        MetadataExtractor("nope", db=store)


def _delete_at_a_terminal(db_url: str, exp: str, answer: bytes) -> tuple[int, str]:
    """``experiment delete EXP`` with a real terminal (a pseudo-terminal) on stdin, answering ``answer``."""
    import os
    import pty
    import subprocess
    import sys

    from .conftest import ROOT

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "metaextract", "--db", db_url, "experiment", "delete", exp],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    os.close(slave)
    os.write(master, answer)
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    return proc.returncode, out.decode()


def test_delete_at_a_terminal_asks_and_says_what(db_url: str, tmp_path: Path) -> None:
    cli(db_url, "experiment", "create", "asked")
    cli(db_url, "experiment", "add", "asked", str(small_plate(tmp_path / "p", 1, 2)))
    code, out = _delete_at_a_terminal(db_url, "asked", b"n\n")
    assert code == 1 and "delete experiment 'asked' (id 1): 2 image files" in out and "not deleted" in out
    assert _names(db_url) == ["asked"]
    code, out = _delete_at_a_terminal(db_url, "asked", b"y\n")
    assert code == 0 and "deleted experiment 'asked' (id 1)" in out
    assert _names(db_url) == []
