"""Validity of the Venn-Abers intervals on the simulator, where each lead's true probability
is known: prints one JSON object.

A model is trained as `leadscore train` trains it (default config, fewer bootstrap draws),
and its out-of-time test rows are scored by the evaluated model (the one whose interval
was fitted on the validation rows, which the test rows follow in time). Per model grade:

- how often the true probability (the simulator's Bayes oracle) lies inside [p_low, p_high];
- how often the calibration target lies inside: the mean true probability of the test rows
  whose probability is within +-`--band` on the logit scale of the row's (what a calibrated
  probability promises: "of the leads scored like this one, this share wins"; a Venn-Abers
  interval is about that, not about one lead's latent interest, which no score can see);
- the calibration of p_low, p and p_high against matured outcomes: mean of each and the
  observed win rate, per grade and per band of p (fixed cut-offs, so no row order counts);
- the mean width and the share flagged for review.

Usage: python -m benchmarks.intervals [--leads 20000] [--seeds 2] [--band 0.1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402


def calibration_target(p: np.ndarray, truth: np.ndarray, band: float) -> np.ndarray:
    """Per row, the mean true probability of the rows whose logit(p) is within `band` of
    its own (itself included): sorted once, two binary searches and a prefix sum."""
    z = np.log(p / (1 - p))
    order = np.argsort(z, kind="stable")
    zs, ts = z[order], truth[order]
    cum = np.r_[0.0, np.cumsum(ts)]
    lo = np.searchsorted(zs, z - band, side="left")
    hi = np.searchsorted(zs, z + band, side="right")
    return (cum[hi] - cum[lo]) / (hi - lo)


BANDS = (0.02, 0.05, 0.1, 0.2, 0.4)


def band_of(p: np.ndarray) -> np.ndarray:
    """Each probability's band, by fixed cut-offs ("0.05-0.1", ...)."""
    edges = (0.0, *BANDS, 1.0)
    names = np.array([f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:], strict=True)])
    return names[np.searchsorted(np.asarray(BANDS), p, side="right")]


def summarise(rows: dict[str, np.ndarray], keys: np.ndarray) -> list[dict]:
    out = []
    for key in [*sorted(set(keys.tolist())), "all"]:
        m = np.ones(len(keys), bool) if key == "all" else keys == key
        low, high = rows["p_low"][m], rows["p_high"][m]
        y = rows["label"][m]
        out.append(
            {
                "group": key,
                "rows": int(m.sum()),
                "true_p_inside": round(
                    float(np.mean((low <= rows["truth"][m]) & (rows["truth"][m] <= high))), 4
                ),
                "target_inside": round(
                    float(np.mean((low <= rows["target"][m]) & (rows["target"][m] <= high))), 4
                ),
                "mean_p_low": round(float(low.mean()), 4),
                "mean_p": round(float(rows["p"][m].mean()), 4),
                "mean_p_high": round(float(high.mean()), 4),
                "observed_win_rate": round(float(y.mean()), 4),
                "mean_true_p": round(float(rows["truth"][m].mean()), 4),
                "mean_width": round(float((high - low).mean()), 4),
                "share_review": round(float(rows["review"][m].mean()), 4),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--band", type=float, default=0.1, help="logit half-width of a target")
    args = parser.parse_args()

    from leadscore.crm.loading import load_dataset
    from leadscore.features.batch import build_training_set
    from leadscore.simulation import SimulationConfig, simulate
    from leadscore.simulation.oracle import oracle_probability, read_truth
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models

    config = TrainConfig(bootstrap=0)
    out: dict = {"benchmark": "intervals", "leads": args.leads, "band": args.band, "runs": []}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "crm"
            simulate(SimulationConfig(n_leads=args.leads, seed=seed), path)
            ds = load_dataset(path)
            df, spec, _ = build_training_set(ds)
            result = fit_models(df, spec, config)
            scorer = result.scorer
            test = df[result.split.test]
            record = scorer.score(scorer.frame_batch(test), reasons=0)
            truth = oracle_probability(
                read_truth(path), test["lead_id"], test["as_of"], spec.horizon_days
            )
        rows = {
            "p": record.probability,
            "p_low": record.p_low,
            "p_high": record.p_high,
            "review": record.review,
            "label": test["label"].to_numpy(float),
            "truth": truth,
        }
        rows["target"] = calibration_target(record.probability, truth, args.band)
        out["runs"].append(
            {
                "seed": seed,
                "test_rows": int(len(test)),
                "calibration_rows": scorer.interval.rows,
                "by_grade": summarise(rows, np.asarray(record.grade, dtype=str)),
                "by_band_of_p": summarise(rows, band_of(record.probability)),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
