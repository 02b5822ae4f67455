"""Batch scoring of the open pipeline (`leadscore score`'s engine) at scale.

Prints one JSON object: the open leads and activity events, featurisation (the batch engine,
`build_scoring_set`) and scoring timed apart, leads/s without and with worded reasons, peak
RSS, and the same leads through the MLflow pyfunc (`mlflow.pyfunc.load_model(...).predict`,
one JSON payload per lead: what a user of the logged model would otherwise run) on a
sample, as a ratio.

The model is trained on a separate, smaller simulated CRM (training is not what is timed);
the scored CRM is simulated in a child process, so its memory is not in the peak RSS.

Usage: python benchmarks/score.py [--leads 1400000] [--reasons-leads 200000] [--pyfunc-leads 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--leads",
        type=int,
        default=1_400_000,
        help="simulated leads (~41 events each; about 70 %% of them are open at the end)",
    )
    parser.add_argument("--reasons-leads", type=int, default=200_000,
                        help="open leads scored with worded reasons (0: all)")  # fmt: skip
    parser.add_argument("--pyfunc-leads", type=int, default=2_000)
    parser.add_argument("--data", type=Path, help="score this dataset instead of simulating one")
    args = parser.parse_args()

    import mlflow

    from crm.loading import load_dataset
    from crm.payloads import lead_payloads
    from features.batch import build_scoring_set, build_training_set
    from operations.pipeline import REASON_SEPARATOR
    from scoring.mlflow_model import SCORER_ARTIFACT
    from simulation import SimulationConfig, simulate_apart
    from training.config import LightGBMParams, TrainConfig
    from training.fit import fit_models
    from training.tracking import PYFUNC_ENTRY

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        simulate_apart(SimulationConfig(n_leads=20_000, seed=11), tmp / "train")
        train_ds = load_dataset(tmp / "train")
        df, spec, _ = build_training_set(train_ds)
        config = TrainConfig(bootstrap=0, lightgbm=LightGBMParams(max_rounds=300))
        scorer = fit_models(df, spec, config).scorer
        trees = scorer.booster.num_trees()
        del train_ds, df

        data = args.data
        if data is None:
            data = tmp / "crm"
            simulate_apart(SimulationConfig(n_leads=args.leads, seed=12), data)
        start = time.perf_counter()
        ds = load_dataset(data)
        load_s = time.perf_counter() - start
        rss_after_load = _rss_mib()

        start = time.perf_counter()
        frame = build_scoring_set(ds, scorer.spec)
        featurise_s = time.perf_counter() - start
        n = len(frame)

        start = time.perf_counter()
        probability = np.empty(n)
        for lo in range(0, n, 100_000):
            part = frame.iloc[lo : lo + 100_000]
            record = scorer.score(scorer.frame_batch(part), reasons=0)
            probability[lo : lo + len(part)] = record.probability
        grades = scorer.grades(probability)
        score_s = time.perf_counter() - start

        k = n if args.reasons_leads <= 0 else min(n, args.reasons_leads)
        start = time.perf_counter()
        worded = 0
        for lo in range(0, k, 20_000):
            part = frame.iloc[lo : min(lo + 20_000, k)]
            record = scorer.score(scorer.frame_batch(part), reasons=3)
            for texts in record.reason_texts("positive"):
                worded += len(REASON_SEPARATOR.join(texts)) > 0
        reasons_s = time.perf_counter() - start
        peak = _rss_mib()

        # The pyfunc a user would load from MLflow, on a sample of the same leads.
        scorer_dir = scorer.save(tmp / "scorer")
        mlflow.pyfunc.save_model(
            tmp / "pyfunc",
            python_model=str(PYFUNC_ENTRY),
            artifacts={SCORER_ARTIFACT: str(scorer_dir)},
        )
        model = mlflow.pyfunc.load_model(str(tmp / "pyfunc"))
        sample = frame.sample(min(args.pyfunc_leads, n), random_state=0)
        as_of = pd.Timestamp(sample["as_of"].iloc[0]).isoformat()
        payloads = lead_payloads(ds, sample["lead_id"], iso=True)
        request = pd.DataFrame(
            {
                "lead": [json.dumps(p, default=str) for p in payloads],
                "as_of": [as_of] * len(payloads),
            }
        )
        start = time.perf_counter()
        got = model.predict(request)
        pyfunc_s = time.perf_counter() - start
        # Same numbers, or the ratio means nothing.
        np.testing.assert_allclose(
            got["probability"].to_numpy(),
            probability[sample.index.to_numpy()],
            rtol=1e-9,
        )

    per_lead_ours = (featurise_s + score_s) / n
    print(
        json.dumps(
            {
                "benchmark": "score",
                "leads_in_crm": len(ds.leads),
                "activity_events": len(ds.activity_table),
                "open_leads_scored": n,
                "model_trees": trees,
                "load_s": round(load_s, 2),
                "featurise_s": round(featurise_s, 2),
                "featurise_leads_per_s": round(n / featurise_s),
                "score_s": round(score_s, 2),
                "score_leads_per_s": round(n / score_s),
                "featurise_and_score_leads_per_s": round(n / (featurise_s + score_s)),
                "with_reasons": {
                    "leads": k,
                    "wall_s": round(reasons_s, 2),
                    "leads_per_s": round(k / reasons_s),
                    "share_with_a_reason_up": round(worded / max(k, 1), 3),
                },
                "grade_counts": {g: int((grades == g).sum()) for g in "ABCD"},
                "peak_rss_mib": round(peak),
                "peak_rss_after_load_mib": round(rss_after_load),
                "pyfunc": {
                    "leads": len(sample),
                    "wall_s": round(pyfunc_s, 2),
                    "leads_per_s": round(len(sample) / pyfunc_s, 1),
                },
                "speedup_vs_pyfunc": round((pyfunc_s / len(sample)) / per_lead_ours, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
