"""`leadscore train` wall time on the demo's CRM, as shipped and as it was before issue 23:
prints one JSON object.

The demo's CRM (20,000 simulated leads, seed 42) is written once. Then `leadscore train`
runs as a user runs it (a subprocess, its own empty MLflow store each time):

- `before`: the settings before issue 23: snapshot ages 0-60 days, one test window (no
  walk-forward backtest), the evaluated model shipped (no refit);
- `now`: the defaults: every age up to two years, a 4-origin backtest (with the rules and
  the learned points at every origin), the refit that ships, the champion gate.

The goal (issue 23): `now` at most 3x `before`. Each variant's steps are read from the
CLI's own timings ("training ...: 6.0 s") so the JSON says where the time goes.

Usage: python -m benchmarks.train_wall [--leads 20000] [--seed 42] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BEFORE_TRAIN = "backtest_origins: 1\nrefit: false\n"
BEFORE_FEATURES = "snapshot_ages_days: [0, 3, 7, 14, 30, 60]\n"
STEP = re.compile(r"^(?P<step>[a-zA-Z][^:\n]{3,80}): (?P<seconds>\d+(?:\.\d+)?) s$", re.M)


def _train(data: Path, work: Path, train_yaml: str | None, features_yaml: str | None) -> dict:
    """One `leadscore train` in its own folder (its own MLflow store); wall time and steps."""
    work.mkdir(parents=True)
    args = [sys.executable, "-m", "leadscore", "train", "--data", str(data)]
    if train_yaml is not None:
        (work / "train.yaml").write_text(train_yaml)
        args += ["--config", str(work / "train.yaml")]
    if features_yaml is not None:
        (work / "features.yaml").write_text(features_yaml)
        args += ["--features-config", str(work / "features.yaml")]
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"leadscore train failed ({done.returncode}):\n{done.stderr[-3000:]}")
    text = done.stdout + done.stderr
    steps = {m["step"].strip(): float(m["seconds"]) for m in STEP.finditer(text)}
    return {"wall_s": round(wall, 2), "steps_s": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant (best kept)")
    args = parser.parse_args()

    from leadscore.simulation import SimulationConfig, simulate

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "crm"
        simulate(SimulationConfig(n_leads=args.leads, seed=args.seed), data)
        runs: dict[str, list[dict]] = {"before": [], "now": []}
        for k in range(args.repeat):  # interleaved, so that a noisy spell hits both
            runs["before"].append(
                _train(data, Path(tmp) / f"before{k}", BEFORE_TRAIN, BEFORE_FEATURES)
            )
            runs["now"].append(_train(data, Path(tmp) / f"now{k}", None, None))
    best = {name: min(r, key=lambda x: x["wall_s"]) for name, r in runs.items()}
    ratio = best["now"]["wall_s"] / best["before"]["wall_s"]
    print(
        json.dumps(
            {
                "benchmark": "train_wall",
                "leads": args.leads,
                "seed": args.seed,
                "cpus": os.cpu_count(),
                "before": best["before"],
                "now": best["now"],
                "ratio_now_to_before": round(ratio, 2),
                "goal_at_most": 3.0,
                "met": ratio <= 3.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
