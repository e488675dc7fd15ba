"""``python -m metaextract.demo`` (``make demo``): the whole step on a synthetic plate.

Writes a small plate twice — as MetaXpress-style TIFFs and as OME-TIFFs, with the project's own
writers in :mod:`metaextract.synth` — into ``./demo-data`` (or ``--out``), then runs, against a SQLite
database in that folder::

    metaextract experiment create demo
    metaextract experiment add demo DIR --plate P --acquisition tiff|ome-tiff
    metaextract demo init --batch-size N
    metaextract demo run --job N          (every job)
    metaextract demo summary
    metaextract demo status

and exits non-zero unless every file was extracted.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import click


def write_plate(root: Path, *, wells: int, sites: int, channels: int) -> dict[str, Path]:
    """One plate as MetaXpress TIFFs and as OME-TIFFs; returns ``{acquisition: folder}``."""
    from metaextract.synth import write_metaxpress_plate, write_ometiff_plate

    folders = {"tiff": root / "tiff", "ome-tiff": root / "ome-tiff"}
    write_metaxpress_plate(folders["tiff"], plate="demo", wells=wells, sites=sites, channels=channels)
    write_ometiff_plate(folders["ome-tiff"], plate="demo", wells=wells, sites=sites, channels=channels)
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
    parser.add_argument("--wells", type=int, default=6, help="wells (2 x 3) [6]")
    parser.add_argument("--sites", type=int, default=4, help="sites per well [4]")
    parser.add_argument("--channels", type=int, default=3, help="channels [3]")
    parser.add_argument("--batch-size", type=int, default=25, help="files per run job [25]")
    parser.add_argument("--workers", type=int, default=None, help="extraction processes per job [CPUs]")
    args = parser.parse_args(argv)

    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    folders = write_plate(out / "plate", wells=args.wells, sites=args.sites, channels=args.channels)
    n_files = sum(1 for f in folders.values() for p in f.rglob("*") if p.is_file())
    click.echo(f"wrote {n_files} files of a {args.wells}-well plate ({args.sites} sites, {args.channels} "
               f"channels) as TIFF and OME-TIFF under {out / 'plate'}")
    db = f"sqlite:///{out / 'metaextract.db'}"

    steps: list[tuple[str, ...]] = [("experiment", "create", "demo", "--description", "metaextract demo")]
    steps += [("experiment", "add", "demo", str(folder), "--plate", "demo", "--acquisition", name)
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
    _metaextract(db, "demo", "summary")
    _metaextract(db, "demo", "status")
    with MetadataExtractor("demo", db=db) as ext:
        files = ext.status()["files"]
    ok = not failed and files["ok"] == files["total"] > 0
    click.echo(f"\ndemo {'passed' if ok else 'FAILED'}: {files['ok']} of {files['total']} image files ok; "
               f"database {out / 'metaextract.db'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
