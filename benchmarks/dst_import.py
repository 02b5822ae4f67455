"""`leadscore import` of the same export with UTC timestamps and with local times whose UTC
offset changes at daylight saving (+01:00 in winter, +02:00 in summer, as any European
local-time export): prints one JSON object.

A simulated CRM (default 6,500 leads, about 262k events) is written twice as a foreign
export (semicolon CSV): once with every timestamp in UTC, once in Europe/Berlin local time
with its offset. Both are imported through the same mapping (`leadscore.crm.importer.import_tables`),
best of `--repeat`. The goal (issue 24): the DST import within 1.5x of the UTC one. Both
imports must give the same UTC times (checked).

Usage: python -m benchmarks.dst_import [--leads 6500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

MAPPING = """\
name: dst-bench
csv: {delimiter: ";"}
leads:
  columns: {lead_id: lead_id, created_at: created_at, source: source}
activities:
  columns: {lead_id: lead_id, occurred_at: occurred_at, activity_type: activity_type, value: value}
deals:
  columns:
    {deal_id: deal_id, lead_id: lead_id, created_at: created_at, closed_at: closed_at,
     status: status, amount: amount}
"""
TIMES = {
    "leads": ["created_at"],
    "activities": ["occurred_at"],
    "deals": ["created_at", "closed_at"],
}


def _write(dataset, folder: Path, zone: str) -> dict[str, Path]:
    import pandas as pd

    folder.mkdir(parents=True)
    files = {}
    for table, columns in TIMES.items():
        frame = getattr(dataset, table).copy()
        for col in columns:
            local = pd.to_datetime(frame[col], utc=True).dt.tz_convert(zone)
            frame[col] = local.map(lambda t: t.isoformat() if t == t else "")
        files[table] = folder / f"{table}.csv"
        frame.to_csv(files[table], sep=";", index=False)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=6_500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from leadscore.crm.importer import import_tables
    from leadscore.crm.loading import load_dataset
    from leadscore.crm.mapping import load_mapping
    from leadscore.simulation import SimulationConfig, simulate

    out: dict = {"benchmark": "dst_import", "leads": args.leads}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        simulate(SimulationConfig(n_leads=args.leads, seed=3), root / "sim")
        dataset = load_dataset(root / "sim")
        out["events"] = int(len(dataset.activities))
        (root / "mapping.yaml").write_text(MAPPING)
        mapping = load_mapping(root / "mapping.yaml")
        times, results = {}, {}
        for name, zone in (("utc", "UTC"), ("dst", "Europe/Berlin")):
            files = _write(dataset, root / f"export_{name}", zone)
            best = float("inf")
            for k in range(args.repeat):
                start = time.perf_counter()
                result = import_tables(mapping, **files, out_dir=root / f"ds_{name}_{k}")
                best = min(best, time.perf_counter() - start)
            times[name], results[name] = best, result.dataset
        same = (
            results["utc"]
            .activities["occurred_at"]
            .equals(results["dst"].activities["occurred_at"])
        )
    out.update(
        {
            "utc_s": round(times["utc"], 3),
            "dst_s": round(times["dst"], 3),
            "ratio_dst_to_utc": round(times["dst"] / times["utc"], 2),
            "goal_at_most": 1.5,
            "met": times["dst"] / times["utc"] <= 1.5,
            "same_utc_times": bool(same),
        }
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
