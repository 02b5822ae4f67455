"""What the refit buys: the shipped model (refit on every matured snapshot) against the
evaluated one (trained on the train period only) on the last horizon of a simulated CRM
whose conversion moved some months before its end: prints one JSON object.

The training set is censored one horizon before the data's end (what was known then); both
models score the pipeline open then, and are set against the wins of the horizon that
followed: expected over observed wins (whole, and for the leads created after the drift),
ROC AUC and log loss. The refit has seen the drifted leads' first months, the evaluated
model (whose newest example is a purge, a validation and a test period older) has not.

Usage: python -m benchmarks.refit [--leads 20000] [--seed 42] [--drift-months 8]
       [--drift conversion]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drift-months", type=float, default=8.0)
    parser.add_argument("--drift", default="conversion")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    from sklearn.metrics import log_loss, roc_auc_score

    from leadscore.crm.loading import load_dataset
    from leadscore.features.batch import build_scoring_set, build_training_set
    from leadscore.features.labels import won_within
    from leadscore.simulation import SimulationConfig, simulate
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models
    from leadscore.training.refit import ship

    base = SimulationConfig(n_leads=args.leads, seed=args.seed)
    start = pd.Timestamp(base.start)
    end_guess = start + pd.Timedelta(days=base.days)
    drift_after = (end_guess - pd.Timedelta(days=30.4 * args.drift_months)).date().isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        config = SimulationConfig(
            n_leads=args.leads,
            seed=args.seed,
            drift_after=drift_after,
            drift=tuple(args.drift.split(",")),
        )
        simulate(config, Path(tmp) / "crm")
        ds = load_dataset(Path(tmp) / "crm")
        train_config = TrainConfig(bootstrap=0)
        horizon = 90.0
        when = pd.Timestamp(ds.data_end) - pd.Timedelta(days=horizon)
        df, spec, _ = build_training_set(ds, data_end=when)
        t0 = time.perf_counter()
        evaluated = fit_models(df, spec, train_config)
        t1 = time.perf_counter()
        shipped = ship(evaluated, df, train_config)
        t2 = time.perf_counter()
        frame = build_scoring_set(ds, spec, when)
        y = won_within(ds, frame["lead_id"], when, horizon)
        created = pd.to_datetime(frame["as_of"]) - pd.to_timedelta(frame["lead_age_days"], "D")
        drifted = (created >= pd.Timestamp(drift_after, tz="UTC")).to_numpy()

        def figures(scorer) -> dict:
            p = scorer.score(scorer.frame_batch(frame), reasons=0).probability
            out = {
                "expected_over_observed": round(float(p.sum() / max(y.sum(), 1)), 3),
                "roc_auc": round(float(roc_auc_score(y, p)), 4),
                "log_loss": round(float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6))), 5),
            }
            if drifted.any() and y[drifted].sum():
                out["drifted_expected_over_observed"] = round(
                    float(p[drifted].sum() / y[drifted].sum()), 3
                )
            return out

        result = {
            "leads": args.leads,
            "drift": args.drift,
            "drift_after": drift_after,
            "as_of": when.isoformat(),
            "open_leads": int(len(frame)),
            "wins": int(y.sum()),
            "drifted_leads": int(drifted.sum()),
            "drifted_wins": int(y[drifted].sum()),
            "evaluated": {
                **figures(shipped.scorer.evaluated),
                "trained_to": evaluated.scorer.info["validation_start"],
                "fit_seconds": round(t1 - t0, 1),
            },
            "shipped": {
                **figures(shipped.scorer),
                "trained_to": shipped.shipped["last_as_of"],
                "refit_seconds": round(t2 - t1, 1),
            },
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
