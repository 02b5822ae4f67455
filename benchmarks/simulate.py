"""Simulator throughput and memory: prints one JSON object.

Each size runs in a fresh subprocess so that its peak RSS is its own.
Usage: python -m benchmarks.simulate [--sizes 100000 1000000] [--format parquet]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_one(n_leads: int, fmt: str) -> dict:
    from leadscore.simulation import SimulationConfig, simulate

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        counts = simulate(SimulationConfig(n_leads=n_leads, seed=1, format=fmt), Path(tmp) / "crm")
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (Path(tmp) / "crm").iterdir())
    events = counts["activities"] + counts["deals"]
    return {
        "leads": n_leads,
        "activities": counts["activities"],
        "deals": counts["deals"],
        "wall_s": round(wall, 2),
        "leads_per_s": round(n_leads / wall),
        "events_per_s": round(events / wall),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "bytes_on_disk": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.format)))
        return
    runs = []
    for n in args.sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--format", args.format],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(proc.stdout))
    print(json.dumps({"benchmark": "simulate", "format": args.format, "runs": runs}))


if __name__ == "__main__":
    main()
