"""All SQL lives in ``store/`` (issue 18, item 2): no module outside ``src/metaextract/store/`` imports
SQLAlchemy or the table models, calls a SQL builder, or holds SQL text in its code.

Read with :mod:`ast`, so docstrings and comments may speak of SQL, and a dict's ``.update(...)`` or a
set's ``.union`` are not mistaken for queries: only calls of the names SQLAlchemy builds statements with
(``select(...)``, ``insert(...)``, ``update(...)``, ``delete(...)``, ``text(...)``) imported from
somewhere, or called on a table, count, and string constants that are not docstrings.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "metaextract"
STORE = SRC / "store"
#: Statement builders: a bare call, or a method of a table (``jobs.insert()``); ``x.update(...)`` on
#: anything else is a dict or a set.
BUILDERS = {"select", "insert", "update", "delete", "text", "exists", "table", "column"}
TABLES = {"experiments", "plates", "acquisitions", "image_files", "metadata_files", "jobs", "job_runs",
          "submissions"}
#: Words that follow an SQL verb in SQL, never in prose or messages
SQL_NEXT = re.compile(r"\b(SELECT\s+(\*|\w+\s*(,|FROM))|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
                      r"CREATE\s+(TEMPORARY\s+|TEMP\s+)?(TABLE|INDEX|TRIGGER|VIEW))")


def _outside_store() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if STORE not in p.parents)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (of the module, classes and functions)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def problems(source: str) -> Iterator[str]:
    """What in ``source`` is SQL or SQLAlchemy, one line each (``line N: ...``)."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    yield f"line {node.lineno}: imports {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] == "sqlalchemy":
                yield f"line {node.lineno}: imports from {module}"
            if module == "metaextract.store.models":
                tables = sorted({a.name for a in node.names} & TABLES)
                if tables:
                    yield f"line {node.lineno}: imports the tables {', '.join(tables)}"
            imported |= {a.asname or a.name for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in BUILDERS and f.id in imported:
                yield f"line {node.lineno}: calls {f.id}(...)"
            if (isinstance(f, ast.Attribute) and f.attr in BUILDERS and isinstance(f.value, ast.Name)
                    and f.value.id in TABLES):
                yield f"line {node.lineno}: calls {f.value.id}.{f.attr}(...)"
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
              and SQL_NEXT.search(node.value)):
            yield f"line {node.lineno}: SQL text {node.value[:60]!r}"


def test_no_sql_outside_store() -> None:
    found = {str(p.relative_to(SRC)): list(problems(p.read_text("utf-8"))) for p in _outside_store()}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("code", [
    "import sqlalchemy",
    "from sqlalchemy import select\nq = select(1)",
    "from sqlalchemy.exc import DBAPIError",
    "from metaextract.store.models import image_files",
    "from metaextract.store.models import jobs, utcnow\njobs.insert()",
    "SQL = 'SELECT id FROM jobs'",
    "def f(c):\n    c.exec_driver_sql(f'DELETE FROM {t} WHERE id = 1')",
    "x = 'CREATE TEMPORARY TABLE m AS SELECT 1'",
    "def f():\n    '''doc'''\n    return \"UPDATE image_files SET status = 'ok'\"",
])
def test_the_check_finds_sql(code: str) -> None:
    assert list(problems(code)), code


@pytest.mark.parametrize("code", [
    '"""Selects the jobs: SELECT id FROM jobs, in the docstring."""',
    "d = {}\nd.update(a=1)\ns = set()\ns.update([1])",
    "msg = 'Delete the experiment? (it is running)'",
    "from metaextract.store.models import utcnow, FILE_STATES",
    "def f(x):\n    '''UPDATE image_files SET x'''\n    return x",
])
def test_the_check_leaves_prose_alone(code: str) -> None:
    assert not list(problems(code)), code


def test_the_store_is_where_the_sql_is() -> None:
    """The check sees the SQL that is in store/ (so it would see it elsewhere)."""
    assert list(problems((STORE / "batches.py").read_text("utf-8")))
    assert list(problems((STORE / "jobs.py").read_text("utf-8")))
