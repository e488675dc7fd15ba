"""``metaextract compare FILE...``: a native engine against Bio-Formats, whole document and key field by key field.

Equal means what the conformance test means: the same text after :func:`metaextract.ome.normalise`
(white space and UUIDs aside, nothing else). Where they differ, the first differing element is printed
(:func:`metaextract.ome.diff.first_difference`), then every key field that differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from metaextract.ome.diff import Difference


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"images[0].pixels.size_x": 512, ...}`` from nested key fields."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and not (len(value) == 2 and isinstance(value[1], str)
                                        and isinstance(value[0], int | float)):
        out = {f"{prefix}.length": len(value)}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def differences(native_xml: str, reference_xml: str) -> list[tuple[str, Any, Any]]:
    """The key fields whose values differ: ``(field, native, bioformats)``, in field order."""
    from metaextract.ome import key_fields

    ours, theirs = flatten(key_fields(native_xml)), flatten(key_fields(reference_xml))
    return [(k, ours.get(k), theirs.get(k)) for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]


@dataclass(frozen=True)
class Comparison:
    """A native document against Bio-Formats': the first place they differ (None: equal whole, after
    normalisation) and the key fields that differ (empty when they agree on those)."""

    first: Difference | None
    fields: list[tuple[str, Any, Any]]


def compare_documents(native_xml: str, reference_xml: str) -> Comparison:
    """Whole document first, then key fields (a document can agree on every key field and still differ)."""
    from metaextract.ome.diff import first_difference

    return Comparison(first_difference(native_xml, reference_xml), differences(native_xml, reference_xml))


def compare_file(path: str, engine: str = "auto") -> tuple[str, Comparison | str]:
    """``(native engine name, comparison)``, or ``(name, message)`` when there is nothing to compare.

    Both reads go through :func:`~metaextract.extraction.pipeline.extract_file`, so a file is checked
    (refused, fenced, validated) exactly as a run would check it before its key fields are compared.
    """
    from metaextract.extraction.pipeline import extract_file

    ours = extract_file(path, engine)
    name = ours.engine or engine
    if name == "bioformats":
        return "bioformats", "no native engine claims this file"
    if ours.status != "ok" or ours.omexml is None:
        return name, f"{name} failed: {ours.error}"
    theirs = extract_file(path, "bioformats")
    if theirs.status != "ok" or theirs.omexml is None:
        return name, f"bioformats failed: {theirs.error}"
    return name, compare_documents(ours.omexml, theirs.omexml)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--engine", default="auto", show_default=True,
              help="The native engine to check (auto: the one that claims each file).")
def compare(files: tuple[str, ...], engine: str) -> None:
    """Run a native engine and Bio-Formats on each FILE and print where their documents differ.

    For a file whose documents differ (after normalising white space and UUIDs): one line with the first
    differing element (``FILE<TAB>first difference (czi != bioformats)<TAB>/OME/Experimenter[0]: None !=
    '<Experimenter>'``), then one line per key field that differs. Prints nothing for a file where they
    agree; exit code 1 when any file differs.
    """
    if engine == "bioformats":
        raise click.UsageError("compare needs a native engine: use auto or an engine name")
    differ = False
    for path in files:
        try:
            name, outcome = compare_file(path, engine)
        except (ValueError, OSError) as exc:
            raise click.UsageError(str(exc)) from None
        if isinstance(outcome, str):
            click.echo(f"{path}: {outcome}", err=True)
            continue
        if outcome.first is None:
            continue
        differ = True
        click.echo(f"{path}\tfirst difference ({name} != bioformats)\t{outcome.first}")
        for field, ours, theirs in outcome.fields:
            click.echo(f"{path}\t{field}\t{name}={_show(ours)}\tbioformats={_show(theirs)}")
    if differ:
        raise SystemExit(1)

