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


# -- call order: A then B gives what B then A gives --------------------------------------------------------------

#: corpus folders of every kind a native engine reads from held bytes or hands from claim to extract
_KINDS = ("tiff", "tiff-plate-sbs", "imagej-tiff", "zeiss-lsm", "metamorph-stk", "ome-tiff", "czi", "dicom", "nd2")


def _files(corpus: Path) -> list[Path]:
    out = []
    for kind in _KINDS:
        out.extend(sorted(p for p in (corpus / kind).iterdir() if p.is_file())[:2])
    return out


def _outcome(path: Path) -> tuple[object, ...]:
    from metaextract.extraction.pipeline import extract_file

    r = extract_file(str(path))
    return (r.status, r.engine, r.omexml, r.error, r.valid, r.validation_error, tuple(r.notes))


def test_two_call_orders_give_identical_results(corpus: Path) -> None:
    """Every file of each kind, read after all the others in one order and then in the reverse order (in one
    process, engines and memos warm), gives the same Result: nothing one file leaves behind answers for another."""
    from metaextract import engines

    files = _files(corpus)
    assert len({p.parent.name for p in files}) == len(_KINDS) and len(files) >= 15
    engines.reset()
    forward = {p: _outcome(p) for p in files}
    engines.reset()
    backward = {p: _outcome(p) for p in reversed(files)}
    assert forward == backward
    assert all(o[0] == "ok" for o in forward.values()), {p.name: o[3] for p, o in forward.items() if o[0] != "ok"}
    assert len({o[1].split()[0] for o in forward.values()}) >= 6  # tifffile, imagej, lsm, stk, ome-xml, czi, ...


def test_a_claim_on_one_file_never_answers_extract_on_another(corpus: Path) -> None:
    """The old claim-to-extract memos: an engine's ``claim`` on file A, then ``extract`` on file B of the same
    engine, gives B's own document (what ``extract`` of B alone gives), for every engine of the kinds above."""
    from metaextract import engines
    from metaextract.extraction.pipeline import read_head

    by_engine: dict[str, list[Path]] = {}
    for p in _files(corpus):
        by_engine.setdefault(engines.choose(str(p), read_head(p)).name, []).append(p)
    pairs = [(name, ps[0], ps[1]) for name, ps in by_engine.items() if len(ps) >= 2]
    assert len(pairs) >= 4
    for name, a, b in pairs:
        eng = engines.get(name)
        alone = eng.extract(str(b))
        assert eng.claim(str(a), read_head(a)) > 0
        assert eng.extract(str(b)) == alone, name
        assert eng.extract(str(a)) != alone, name


def test_validation_order_does_not_change_an_answer() -> None:
    """Documents from the writer, validated in one order and in the reverse order with an empty memo, are
    answered alike, and as the schema answers each alone; a document's key comes with it, not from the last
    document written."""
    import metaextract.ome as ome
    from metaextract.ome import writer as ox

    def doc(name: str, date: str) -> str:
        image = ox.El("Image", {"ID": "Image:0", "Name": name}, [ox.El("AcquisitionDate", text=date)])
        pixels = image.add(ox.pixels(pixel_type="uint8", size=(4, 4, 1, 1, 1), big_endian=False,
                                     significant_bits=8, physical=(None, None, None)))
        pixels.add(ox.El("MetadataOnly"))
        return ox.document(image)

    docs = [doc("a", "2016-05-01T09:30:45"), doc("b", "2016-02-30T09:30:45"), doc("c", "2024-12-31T23:59:59")]
    alone = [ome.validate(x, remember=False) for x in docs]
    assert [ok for ok, _ in alone] == [True, False, True]
    answers = []
    for order in (docs, docs[::-1]):
        ome._VALID_SHAPES.clear()
        answers.append({x: ome.validate(x, key=ome.written_key(x)) for x in order})
        later = doc("z", "2016-05-01T09:30:45")  # written last: says nothing about the documents before it
        assert [ome.validate(x, key=ome.written_key(x)) for x in docs] == alone and later
    assert answers[0] == answers[1] == dict(zip(docs, alone, strict=True))


# -- no module-level mutable state consulted ----------------------------------------------------------------------

_AREAS = ("engines", "extraction", "ome")
#: the module globals that functions in those areas may assign, each a process-wide table that no result
#: depends on the order of: the engine registry (which engines exist), the class-data-sharing builder spawned
#: once, the pool's peak-memory reading and its one in-process pool for direct calls
_ASSIGNED_GLOBALS = {
    ("engines/__init__.py", "_factories"), ("engines/__init__.py", "_candidates"),
    ("engines/bioformats/cds.py", "_spawned"),
    ("extraction/pool.py", "_rss_seen"), ("extraction/pool.py", "_solo"),
}


def _module_aliases(tree: ast.AST) -> set[str]:
    """Names bound to a module of this package in ``tree`` (``from metaextract.x import module``, ``import``)."""
    import importlib.util

    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("metaextract"):
            for a in node.names:
                if importlib.util.find_spec(f"{node.module}.{a.name}") if _is_package(node.module) else False:
                    out.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            out.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("metaextract"))
    return out


def _is_package(module: str) -> bool:
    import importlib.util

    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def test_no_module_level_mutable_state_is_consulted() -> None:
    """Under engines/, extraction/ and ome/: no thread-local, no module global assigned by a function but the
    documented process tables above, and no function that sets an attribute of another module (a hook)."""
    assigned, hooks, local = set(), [], []
    for area in _AREAS:
        for file in sorted((SRC / area).rglob("*.py")):
            rel = str(file.relative_to(SRC))
            text = file.read_text(encoding="utf-8")
            tree = ast.parse(text)
            if "threading.local" in text or "import local" in text:
                local.append(rel)
            modules = _module_aliases(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Global):
                    assigned.update((rel, n) for n in node.names)
                elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    hooks.extend(f"{rel}:{node.lineno}" for t in targets if isinstance(t, ast.Attribute)
                                 and isinstance(t.value, ast.Name) and t.value.id in modules)
    assert local == []
    assert hooks == []
    assert assigned == _ASSIGNED_GLOBALS
    assert not (SRC / "extraction" / "clock.py").exists()
    from metaextract import ome
    from metaextract.engines import base
    from metaextract.extraction import snapshot

    for gone in (("ome", ome, "_written"), ("ome", ome, "by_writer"), ("base", base, "ClaimMemo"),
                 ("snapshot", snapshot, "holding"), ("snapshot", snapshot, "current")):
        assert not hasattr(gone[1], gone[2]), gone
