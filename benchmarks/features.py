"""Training-set build throughput on ~10M activity events, against a naive pandas way.

Prints one JSON object: load and build wall times, events/s and snapshots/s of the DuckDB
engine, peak RSS, and the naive pandas implementation (per snapshot: filter the lead's
activities to `<= as_of`, group by type per window) on a subsample, as a ratio.

Usage: python -m benchmarks.features [--leads 250000] [--naive-snapshots 400] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def naive_counts(
    acts_by_lead: dict, lead_id: str, as_of: pd.Timestamp, windows: list[int]
) -> dict[str, float]:
    """The obvious pandas way for one snapshot: filter, then group by type per window."""
    acts = acts_by_lead.get(lead_id)
    out: dict[str, float] = {}
    if acts is None:
        return out
    past = acts[acts["occurred_at"] <= as_of]
    for w in windows:
        recent = past[past["occurred_at"] > as_of - pd.Timedelta(days=w)]
        for kind, n in recent.groupby("activity_type", observed=True).size().items():
            out[f"n_{kind}_{w}d"] = float(n)
    for kind, n in past.groupby("activity_type", observed=True).size().items():
        out[f"n_{kind}_total"] = float(n)
    for kind, last in past.groupby("activity_type", observed=True)["occurred_at"].max().items():
        out[f"days_since_{kind}"] = (as_of - last) / pd.Timedelta(days=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--leads", type=int, default=250_000, help="simulated leads (~41 events each)"
    )
    parser.add_argument("--naive-snapshots", type=int, default=400)
    parser.add_argument("--data", type=Path, help="use this dataset instead of simulating one")
    args = parser.parse_args()

    from leadscore.crm.loading import load_dataset
    from leadscore.features.batch import build_training_set
    from leadscore.simulation import SimulationConfig, simulate_apart

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "crm"
            # In a child process: its memory does not count in this one's peak RSS.
            simulate_apart(SimulationConfig(n_leads=args.leads, seed=3), data)
        start = time.perf_counter()
        ds = load_dataset(data)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        df, spec, stats = build_training_set(ds)
        build_s = time.perf_counter() - start
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        # The naive way, on a random subsample of the same snapshots.
        sample = df.sample(min(args.naive_snapshots, len(df)), random_state=0)
        acts = ds.activities[ds.activities["lead_id"].isin(set(sample["lead_id"]))]
        acts_by_lead = {lead: frame for lead, frame in acts.groupby("lead_id", sort=False)}
        start = time.perf_counter()
        naive = [
            naive_counts(acts_by_lead, r.lead_id, r.as_of, spec.windows_days)
            for r in sample.itertuples()
        ]
        naive_s = time.perf_counter() - start
        # The baseline must compute the same numbers, or the ratio means nothing.
        for row, got in zip(sample.to_dict("records"), naive, strict=True):
            for name, value in got.items():
                assert np.isclose(row[name], value, rtol=1e-9), (name, row[name], value)

    events = len(ds.activities)
    snaps = len(df)
    ours_per_snapshot = build_s / snaps
    naive_per_snapshot = naive_s / len(sample)
    print(
        json.dumps(
            {
                "benchmark": "features",
                "leads": len(ds.leads),
                "activity_events": events,
                "deals": len(ds.deals),
                "snapshots": snaps,
                "features": len(spec.feature_names),
                "load_s": round(load_s, 2),
                "build_s": round(build_s, 2),
                "events_per_s": round(events / build_s),
                "snapshots_per_s": round(snaps / build_s),
                "end_to_end_events_per_s": round(events / (load_s + build_s)),
                "peak_rss_mib": round(peak_rss),
                "naive_pandas": {
                    "snapshots": len(sample),
                    "wall_s": round(naive_s, 2),
                    "snapshots_per_s": round(len(sample) / naive_s, 1),
                },
                "speedup_vs_naive_pandas": round(naive_per_snapshot / ours_per_snapshot, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
