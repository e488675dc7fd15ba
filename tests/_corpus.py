"""Shared knowledge about the corpus and its Bio-Formats reference, for the tests."""

from __future__ import annotations

import csv
from pathlib import Path


def reference_rows(reference: Path) -> list[dict[str, str]]:
    with open(reference / "summary.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def corpus_files(corpus: Path) -> list[str]:
    with open(corpus / "MANIFEST.tsv", newline="") as fh:
        return [row["local_path"] for row in csv.DictReader(fh, delimiter="\t")]
