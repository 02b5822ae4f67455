"""Calibration of the whole open pipeline by lead age, on matured outcomes: prints one JSON
object.

At three dates one horizon or more before the data's end, a model is trained on what was
known then (the training set censored at that date) and shipped as `leadscore train` ships
it (refit on every matured snapshot; `--no-refit`: the evaluated model), the pipeline open
at that date is scored, and its expected wins (the sum of the probabilities) are set against the wins of the
next horizon, per lead-age band (`leadscore.operations.matured.age_band_table`). The same run does it
with the feature config's snapshot ages and with the ages a baseline config used (default:
the 0.1 ages, 0-60 days), so the two can be read side by side.

Goal (issue 23): every band with at least 20 expected wins within observed / expected
[0.8, 1.25] (a Poisson 95 % band below that), the whole pipeline within [0.9, 1.1].

Usage: python -m benchmarks.calibration_by_age [--leads 20000] [--seed 42] [--step-days 45]
       [--baseline-ages 0,3,7,14,30,60]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

WHOLE_BAND = (0.9, 1.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--step-days", type=float, default=45.0)
    parser.add_argument("--baseline-ages", default="0,3,7,14,30,60")
    parser.add_argument(
        "--calibration", default="auto", help="the training config's calibration method"
    )
    parser.add_argument("--only", choices=["default", "baseline"], help="one config only")
    parser.add_argument(
        "--no-refit", action="store_true", help="score with the evaluated model, not the refit"
    )
    args = parser.parse_args()

    import pandas as pd

    from leadscore.crm.loading import load_dataset
    from leadscore.features.batch import build_scoring_set, build_training_set
    from leadscore.features.config import FeatureConfig
    from leadscore.features.labels import won_within
    from leadscore.operations.matured import age_band_table
    from leadscore.simulation import SimulationConfig, simulate
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models
    from leadscore.training.refit import ship

    configs = {
        "default": FeatureConfig(),
        "baseline": FeatureConfig(
            snapshot_ages_days=[float(a) for a in args.baseline_ages.split(",")]
        ),
    }
    out: dict = {
        "leads": args.leads,
        "seed": args.seed,
        "calibration": args.calibration,
        "refit": not args.no_refit,
        "configs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        simulate(SimulationConfig(n_leads=args.leads, seed=args.seed), Path(tmp) / "crm")
        ds = load_dataset(Path(tmp) / "crm")
        horizon = configs["default"].horizon_days
        end = pd.Timestamp(ds.data_end)
        dates = [end - pd.Timedelta(days=horizon + k * args.step_days) for k in range(3)]
        for name, features in configs.items():
            if args.only and name != args.only:
                continue
            runs = []
            for when in dates:
                start = time.perf_counter()
                df, spec, _ = build_training_set(ds, features, data_end=when)
                train_config = TrainConfig(
                    bootstrap=0, calibration=args.calibration, refit=not args.no_refit
                )
                result = ship(fit_models(df, spec, train_config), df, train_config)
                seconds = time.perf_counter() - start
                frame = build_scoring_set(ds, spec, when)
                scorer = result.scorer
                p = scorer.score(scorer.frame_batch(frame), reasons=0).probability
                y = won_within(ds, frame["lead_id"], when, horizon)
                bands = age_band_table(frame["lead_age_days"].to_numpy(), p, y)
                expected, wins = float(p.sum()), float(y.sum())
                runs.append(
                    {
                        "as_of": when.isoformat(),
                        "training_rows": int(len(df)),
                        "oldest_trained_age_days": max(spec.snapshot_ages_days),
                        "train_seconds": round(seconds, 1),
                        "calibration": result.calibration["method"],
                        "open_leads": int(len(frame)),
                        "expected_wins": round(expected, 1),
                        "wins": wins,
                        "predicted_over_observed": round(expected / wins, 3) if wins else None,
                        "whole_holds": bool(
                            wins and WHOLE_BAND[0] <= expected / wins <= WHOLE_BAND[1]
                        ),
                        "bands": [
                            {
                                "band": r.group,
                                "leads": r.leads,
                                "expected_wins": round(r.expected_wins, 1),
                                "wins": r.wins,
                                "predicted_over_observed": round(r.expected_wins / r.wins, 3)
                                if r.wins
                                else None,
                                "holds": r.holds,
                            }
                            for r in bands.itertuples()
                        ],
                        "all_bands_hold": bool(bands["holds"].all()),
                    }
                )
            out["configs"][name] = {
                "snapshot_ages_days": list(features.snapshot_ages_days),
                "runs": runs,
                "every_band_and_whole_hold": all(
                    r["all_bands_hold"] and r["whole_holds"] for r in runs
                ),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
