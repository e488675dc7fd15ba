"""``python -m metaextract.demo`` (``make demo``): the whole step on two plates with their vendor files.

Writes, with the project's own writers in :mod:`metaextract.synth` (no corpus, no network), into
``./demo-data`` (or ``--out``): an ImageXpress plate as MetaXpress exports it (``demo.HTD`` and
``TimePoint_1/`` with its MetaSeries TIFFs) and a CellVoyager measurement (``demo-cv.wpi``,
``MeasurementData.mlf``, ``MeasurementDetail.mrf``, ``.mes`` and the TIFFs they name). Then runs, against a
SQLite database in that folder::

    metaextract experiment create demo
    metaextract experiment add demo DIR --plate P --acquisition imagexpress|cellvoyager
    metaextract demo init --batch-size N
    metaextract demo run --job N          (every job: one per fileset, per-file batches of the rest)
    metaextract demo status
    metaextract demo plate                (the plate maps)

and exits non-zero unless every file was extracted. Every file is read natively: no JVM starts.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import click

#: ``(acquisition, plate)`` of the two plates, in the order they are written and registered.
PLATES = (("imagexpress", "demo"), ("cellvoyager", "demo-cv"))


def write_plates(root: Path, *, wells: int, sites: int, channels: int) -> dict[str, Path]:
    """The ImageXpress plate (with its ``.HTD``) and the CellVoyager measurement (with its ``.wpi``,
    ``.mlf``, ``.mrf`` and ``.mes``), each in its own folder under ``root``; returns ``{acquisition: folder}``."""
    from metaextract.synth import write_cellvoyager_measurement, write_htd_plate

    folders = {acquisition: root / acquisition for acquisition, _ in PLATES}
    plate = dict(PLATES)
    write_htd_plate(folders["imagexpress"], plate=plate["imagexpress"], wells=wells, sites=sites,
                    channels=channels)
    write_cellvoyager_measurement(folders["cellvoyager"], plate=plate["cellvoyager"], wells=wells, sites=sites,
                                  channels=channels)
    return folders


def _metaextract(db: str, *args: str) -> int:
    """Run one ``metaextract`` command in this process, echoing it first; returns its exit code."""
    from metaextract.cli import main

    click.echo(f"\n$ metaextract {shlex.join(args)}")
    try:
        main.main(["--db", db, *args], prog_name="metaextract", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metaextract.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-data"), help="folder (replaced) [demo-data]")
    parser.add_argument("--wells", type=int, default=6, help="wells (A01 on, row by row) [6]")
    parser.add_argument("--sites", type=int, default=4, help="sites (fields) per well [4]")
    parser.add_argument("--channels", type=int, default=3, help="channels (wavelengths) [3]")
    parser.add_argument("--batch-size", type=int, default=25, help="files per run job [25]")
    parser.add_argument("--workers", type=int, default=None, help="extraction processes per job [CPUs]")
    args = parser.parse_args(argv)

    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    folders = write_plates(out / "plates", wells=args.wells, sites=args.sites, channels=args.channels)
    n_files = sum(1 for f in folders.values() for p in f.rglob("*") if p.is_file())
    click.echo(f"wrote {n_files} files under {out / 'plates'}: a {args.wells}-well plate ({args.sites} sites, "
               f"{args.channels} channels) as ImageXpress TIFFs with their .HTD and as a CellVoyager measurement "
               "with its .wpi, .mlf, .mrf and .mes")
    db = f"sqlite:///{out / 'metaextract.db'}"

    plate = dict(PLATES)
    steps: list[tuple[str, ...]] = [("experiment", "create", "demo", "--description", "metaextract demo")]
    steps += [("experiment", "add", "demo", str(folder), "--plate", plate[name], "--acquisition", name)
              for name, folder in folders.items()]
    steps.append(("demo", "init", "--batch-size", str(args.batch_size)))
    for step in steps:
        if _metaextract(db, *step):
            return 1

    from metaextract.jobs.step import MetadataExtractor

    with MetadataExtractor("demo", db=db) as ext:
        numbers = [j["id"] for j in ext.status()["jobs"]]
    workers = ("--workers", str(args.workers)) if args.workers else ()
    failed = [n for n in numbers if _metaextract(db, "demo", "run", "--job", str(n), *workers)]
    _metaextract(db, "demo", "status")
    _metaextract(db, "demo", "plate")
    with MetadataExtractor("demo", db=db) as ext:
        files = ext.status()["files"]
    ok = not failed and files["ok"] == files["total"] > 0
    click.echo(f"\ndemo {'passed' if ok else 'FAILED'}: {files['ok']} of {files['total']} image files ok; "
               f"database {out / 'metaextract.db'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
