"""Engines without hidden inputs: no private name shared across modules, and results independent of call order."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "metaextract"


def _private_imports() -> list[str]:
    """Every ``from metaextract.x import _name`` (x another module than the importer) in the package."""
    found = []
    for file in sorted(SRC.rglob("*.py")):
        rel = file.relative_to(SRC.parent).with_suffix("")
        own = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.module in (None, "__future__") or node.level:
                continue
            if node.module != own and node.module.startswith("metaextract"):
                found.extend(f"{rel}: from {node.module} import {a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__"))
    return found


def test_no_private_name_is_imported_from_another_module() -> None:
    assert _private_imports() == []
