"""Exporting N stored results (CSV, JSON, Parquet, OME-XML companions): rows per second and peak RSS.

The database (SQLite) is filled directly with bulk inserts of one real OME-XML document (a 2-channel
MetaXpress-like image as Bio-Formats writes it), then each export runs in a fresh Python process so
its peak RSS is its own. Two sizes (N/10 and N) show whether memory grows with the number of files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from common import md_table
from metaextract.experiment import create_experiment
from metaextract.store import open_store
from metaextract.store.models import acquisitions, image_files, plates, utcnow

XML = """<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">
   <Image ID="Image:0" Name="DAPI">
      <AcquisitionDate>2016-05-01T09:30:00</AcquisitionDate>
      <Pixels BigEndian="false" DimensionOrder="XYCZT" ID="Pixels:0" Interleaved="false" PhysicalSizeX="0.65"
 PhysicalSizeXUnit="µm" PhysicalSizeY="0.65" PhysicalSizeYUnit="µm" SignificantBits="16" SizeC="2" SizeT="1"
 SizeX="2048" SizeY="2048" SizeZ="1" Type="uint16">
         <Channel EmissionWavelength="452.0" EmissionWavelengthUnit="nm" ID="Channel:0:0" Name="DAPI"
 SamplesPerPixel="1"><LightPath/></Channel>
         <Channel EmissionWavelength="525.0" EmissionWavelengthUnit="nm" ID="Channel:0:1" Name="FITC"
 SamplesPerPixel="1"><LightPath/></Channel>
         <MetadataOnly/>
         <Plane DeltaT="0.0" DeltaTUnit="s" ExposureTime="0.02" ExposureTimeUnit="s" PositionX="1000.0"
 PositionXUnit="reference frame" PositionY="500.0" PositionYUnit="reference frame" TheC="0" TheT="0" TheZ="0"/>
         <Plane DeltaT="0.0" DeltaTUnit="s" ExposureTime="0.05" ExposureTimeUnit="s" PositionX="1000.0"
 PositionXUnit="reference frame" PositionY="500.0" PositionYUnit="reference frame" TheC="1" TheT="0" TheZ="0"/>
      </Pixels>
   </Image>
</OME>
"""
_CHILD = """
import json, resource, sys, time
from metaextract.export import export
from metaextract.store.results import open_experiment
url, dest, fmt = sys.argv[1:4]
t0 = time.perf_counter()
with open_experiment("bench", db=url) as res:
    report = export(res, dest, fmt)
print(json.dumps({"records": report.records, "seconds": time.perf_counter() - t0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def fill(url: str, n: int, batch: int = 20_000) -> float:
    """An experiment "bench" of ``n`` extracted files (96 wells × sites); seconds taken."""
    t0 = time.perf_counter()
    with open_store(url) as store:
        eid = create_experiment(store, "bench")
        with store.begin() as conn:
            pid = conn.execute(insert(plates).values(experiment_id=eid, name="PLATE").returning(plates.c.id)
                               ).scalar_one()
            aid = conn.execute(insert(acquisitions).values(plate_id=pid, name="default", root="/data")
                               .returning(acquisitions.c.id)).scalar_one()
        now = utcnow()
        for start in range(0, n, batch):
            rows = []
            for i in range(start, min(n, start + batch)):
                well = f"{'ABCDEFGH'[i % 96 // 12]}{i % 12 + 1:02d}"
                name = f"TimePoint_1/PLATE_{well}_s{i // 96 + 1}_w1.tif"
                rows.append({"experiment_id": eid, "acquisition_id": aid, "name": name,
                             "location": f"/data/{name}", "size": 8_400_000, "mtime": 0.0, "status": "ok",
                             "omexml": XML, "engine": "bioformats", "engine_version": "7.3.1",
                             "seconds": 0.05, "valid": True, "extracted_at": now})
            with store.begin() as conn:
                conn.execute(insert(image_files), rows)
    return time.perf_counter() - t0


def export_once(url: str, dest: Path, fmt: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, url, str(dest), fmt], capture_output=True, text=True,
                         check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(quick: bool) -> str:
    # `make bench` exports 10,000 and 100,000 results; METAEXTRACT_BENCH_FULL=1 adds 1,000,000 (~7 min)
    n = 1_000_000 if os.environ.get("METAEXTRACT_BENCH_FULL") == "1" else 10_000 if quick else 100_000
    sizes = (n // 10, n)
    formats = ["csv", "json", "parquet", "ome-xml"]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        formats.remove("parquet")
    rows = []
    fills = []
    with tempfile.TemporaryDirectory(prefix="metaextract-bench-export-") as tmp:
        for size in sizes:
            url = f"sqlite:///{tmp}/bench-{size}.db"
            fills.append(f"{size:,} rows in {fill(url, size):.1f} s")
            for fmt in formats:
                if fmt == "ome-xml" and size > 100_000:
                    continue  # a million small files says more about the file system than about us
                got = export_once(url, Path(tmp) / f"out-{size}-{fmt}", fmt)
                rows.append((fmt, f"{size:,}", f"{got['seconds']:.1f}", f"{got['records'] / got['seconds']:,.0f}",
                             f"{got['rss_mb']:.0f}"))
    return (
        "## Export: streaming N stored results\n\n"
        f"SQLite, one 2-channel OME-XML document ({len(XML.encode()):,} bytes) per file, filled with bulk "
        f"inserts ({'; '.join(fills)}). Each export runs in a fresh process; peak RSS is that process's "
        "(Python, SQLAlchemy, lxml and, for Parquet, pyarrow included). Records: rows for CSV and Parquet "
        "(one per image), objects for JSON, files for OME-XML.\n\n"
        + md_table(("format", "files", "seconds", "records/s", "peak RSS (MB)"), rows) + "\n"
    )


if __name__ == "__main__":
    print(run("--full" not in sys.argv))
