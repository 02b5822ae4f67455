"""Training time and peak RSS on ~1M snapshot rows: prints one JSON object.

The training set is built first (not timed); then the whole fit is timed (split, leakage
audit, LightGBM with early stopping, calibration, logistic baseline, evaluation with
bootstrap intervals), with LightGBM's own share measured separately.

Usage: python -m benchmarks.train [--leads 250000] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--leads", type=int, default=250_000, help="simulated leads (~4.2 snapshots each)"
    )
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()

    import lightgbm as lgb

    from leadscore.crm.loading import load_dataset
    from leadscore.features.batch import build_training_set
    from leadscore.simulation import SimulationConfig, simulate_apart
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "crm"
            # In a child process: its memory does not count in this one's peak RSS.
            simulate_apart(SimulationConfig(n_leads=args.leads, seed=5), data)
        df, spec, _ = build_training_set(load_dataset(data))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    lgb_seconds = []
    real_train = lgb.train

    def timed_train(*a, **k):
        start = time.perf_counter()
        try:
            return real_train(*a, **k)
        finally:
            lgb_seconds.append(time.perf_counter() - start)

    lgb.train = timed_train
    start = time.perf_counter()
    result = fit_models(df, spec, TrainConfig())
    wall = time.perf_counter() - start
    lgb.train = real_train
    m = result.metrics["model"]
    print(
        json.dumps(
            {
                "benchmark": "train",
                "snapshot_rows": len(df),
                "train_rows": int(result.split.train.sum()),
                "validation_rows": int(result.split.validation.sum()),
                "test_rows": int(result.split.test.sum()),
                "features": len(result.scorer.features),
                "boosting_rounds": result.params["best_iteration"],
                "fit_wall_s": round(wall, 1),
                "lightgbm_s": round(sum(lgb_seconds), 1),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "peak_rss_before_fit_mib": round(rss_before),
                "test_roc_auc": round(m["roc_auc"], 4),
                "test_roc_auc_logistic": round(result.metrics["logistic"]["roc_auc"], 4),
                "test_ece": round(m["ece"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
