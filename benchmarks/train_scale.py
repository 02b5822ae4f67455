"""The fit at scale: `leadscore.training.fit.fit_models` on training sets of growing size, up to 10M rows.

Prints one JSON object: for each size, in a child process of its own (its own peak RSS),
the rows, positives, the time to read the training set and to fit (split, leakage audit,
LightGBM with early stopping, calibration, out-of-time evaluation; no bootstrap), the
peak RSS and the bytes per row it implies, and from the largest run the rows this
machine's memory would hold.

The training sets are built from one simulated CRM (about 5 snapshots per lead) with
`leadscore.features.batch.training_set_chunks` into Parquet, chunk by chunk; the smaller sizes are
the rows of a random share of its leads (the time span, and so the split, stays whole).

Usage: python -m benchmarks.train_scale [--leads 2000000] [--sizes 2500000,5000000,10000000]
       [--training-set FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

WHOLE_ROWS = 5_000_000


def subset(path: Path, rows: int, into: Path) -> Path:
    """The rows of a random share of the leads of a training set (about `rows` rows; the
    time span, and so the split, stays whole), written to `into`."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    lead_ids = table["lead_id"].to_numpy(zero_copy_only=False)
    uniques, counts = np.unique(lead_ids, return_counts=True)
    order = np.random.default_rng(0).permutation(len(uniques))
    upto = np.searchsorted(np.cumsum(counts[order]), rows) + 1
    keep = pc.is_in(table["lead_id"], value_set=pa.array(uniques[order[:upto]]))
    pq.write_table(table.filter(keep), into, compression="zstd")
    return into


def fit_once(path: Path, rows: int) -> dict:
    from leadscore.features.training_set import read_training_set
    from leadscore.training.config import LightGBMParams, TrainConfig
    from leadscore.training.fit import fit_models

    start = time.perf_counter()
    df, spec, _ = read_training_set(path)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    # Up to WHOLE_ROWS rows the booster learns from every row (what a whole fit costs);
    # past it, from the sample by lead of the default max_fit_rows (leadscore.training.sampling).
    cap = None if rows <= WHOLE_ROWS else TrainConfig().max_fit_rows
    config = TrainConfig(bootstrap=0, lightgbm=LightGBMParams(max_rounds=300), max_fit_rows=cap)
    result = fit_models(df, spec, config)
    fit_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "rows": len(df),
        "positives": int(df["label"].sum()),
        "features": len(spec.feature_names),
        "read_s": round(read_s, 1),
        "fit_s": round(fit_s, 1),
        "trees": result.scorer.booster.num_trees(),
        "max_fit_rows": cap,
        "fit_rows": result.params["fit_rows"],
        "test_auc": round(result.metrics["model"]["roc_auc"], 4),
        "test_ece": round(result.metrics["model"]["ece"], 4),
        "peak_rss_mib": round(peak / 2**20),
        "bytes_per_row": round(peak / len(df)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=2_000_000)
    parser.add_argument("--sizes", default="2500000,5000000,10000000")
    parser.add_argument("--fit", type=Path, help=argparse.SUPPRESS)  # a child's job
    parser.add_argument("--training-set", type=Path, help="fit this training set (no simulation)")
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--subset", type=Path, help=argparse.SUPPRESS)  # a child's job too
    args = parser.parse_args()
    if args.subset is not None:
        subset(args.fit, args.rows, args.subset)
        return
    if args.fit is not None:
        print(json.dumps(fit_once(args.fit, args.rows)))
        return

    import pyarrow.parquet as pq

    from leadscore.crm.loading import load_dataset
    from leadscore.features.batch import training_set_chunks
    from leadscore.features.training_set import write_training_set
    from leadscore.simulation import SimulationConfig, simulate_apart

    report: dict = {"benchmark": "train_scale", "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        training_set = args.training_set
        if training_set is None:
            training_set = tmp / "set.parquet"
            simulate_apart(SimulationConfig(n_leads=args.leads, seed=21), tmp / "crm")
            start = time.perf_counter()
            ds = load_dataset(tmp / "crm")
            spec, stats, chunks = training_set_chunks(ds)
            write_training_set(chunks, spec, stats, training_set)
            report["training_set"] = {
                "leads": args.leads,
                "snapshots": stats["snapshots"],
                "build_s": round(time.perf_counter() - start, 1),
            }
            del ds, chunks
        for size in (int(s) for s in args.sizes.split(",")):
            fit_path = training_set
            if size < pq.ParquetFile(training_set).metadata.num_rows:
                fit_path = tmp / f"set-{size}.parquet"
                subprocess.run(
                    [sys.executable, __file__, "--fit", str(training_set), "--rows", str(size),
                     "--subset", str(fit_path)],
                    check=True,
                )  # fmt: skip
            done = subprocess.run(
                [sys.executable, __file__, "--fit", str(fit_path), "--rows", str(size)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                report["runs"].append({"rows": size, "failed": done.stderr[-1500:]})
                continue
            report["runs"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    done_runs = [r for r in report["runs"] if "bytes_per_row" in r]
    if done_runs:
        largest = max(done_runs, key=lambda r: r["rows"])
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        report["machine_memory_gib"] = round(memory / 2**30, 1)
        report["rows_this_memory_holds"] = int(0.8 * memory / largest["bytes_per_row"])
    print(json.dumps(report))


if __name__ == "__main__":
    main()
