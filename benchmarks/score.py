"""Batch scoring of the open pipeline and the training-set build at scale, out of core.

Prints one JSON object. For each measured export (the simulated CRM, and the same CRM with
every activity twice: `doubled`), in a child process of its own so that each peak RSS is
its own: load and validate; the training-set build written to Parquet chunk by chunk
(`leadscore.features.batch.training_set_chunks`, what `leadscore features` runs); featurisation of
the open pipeline (`build_scoring_set`); scoring without and with worded reasons, and
TreeSHAP alone on the same leads (the ceiling of worded reasons); the peak RSS after each
step. Then the same leads through the MLflow pyfunc (`mlflow.pyfunc.load_model(...).predict`,
one JSON payload per lead: what a user of the logged model would otherwise run) on a
sample, as a ratio. With `--engine spark` (or `both`) the Spark engine scores the same
export on `local[*]` (see `benchmarks/spark_score.py`).

The model is trained on a separate, smaller simulated CRM (training is not what is timed);
the scored CRM is simulated in a child process, so its memory is in no measured peak.

Usage: python -m benchmarks.score [--leads 1400000] [--reasons-leads 200000]
       [--pyfunc-leads 2000] [--data DIR] [--no-doubled] [--engine duckdb|spark|both]
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

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(data: Path, scorer_dir: Path, reasons_leads: int, pyfunc_leads: int) -> dict:
    """One export, in this (child) process: the figures of the module docstring."""
    import mlflow

    from leadscore.crm.loading import load_dataset
    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.batch import build_scoring_set, training_set_chunks
    from leadscore.features.training_set import write_training_set
    from leadscore.operations.pipeline import REASON_SEPARATOR
    from leadscore.scoring.mlflow_model import SCORER_ARTIFACT
    from leadscore.scoring.scorer import LeadScorer
    from leadscore.training.tracking import PYFUNC_ENTRY

    scorer = LeadScorer.load(scorer_dir)
    out: dict = {}
    start = time.perf_counter()
    ds = load_dataset(data)
    out["load_s"] = round(time.perf_counter() - start, 2)
    out["leads_in_crm"] = len(ds.leads)
    out["activity_events"] = len(ds.activity_table)
    out["peak_rss_after_load_mib"] = round(_rss_mib())

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        spec, stats, chunks = training_set_chunks(ds, spec=scorer.spec)
        write_training_set(chunks, spec, stats, Path(tmp) / "training.parquet")
        build_s = time.perf_counter() - start
    out["training_set"] = {
        "snapshots": stats["snapshots"],
        "wall_s": round(build_s, 2),
        "snapshots_per_s": round(stats["snapshots"] / build_s),
        "peak_rss_mib": round(_rss_mib()),
    }

    start = time.perf_counter()
    frame = build_scoring_set(ds, scorer.spec)
    featurise_s = time.perf_counter() - start
    n = len(frame)
    out["open_leads_scored"] = n
    out["featurise_s"] = round(featurise_s, 2)
    out["featurise_leads_per_s"] = round(n / featurise_s)

    start = time.perf_counter()
    probability = np.empty(n)
    for lo in range(0, n, 100_000):
        part = frame.iloc[lo : lo + 100_000]
        record = scorer.score(scorer.frame_batch(part), reasons=0)
        probability[lo : lo + len(part)] = record.probability
    grades = scorer.grades(probability)
    score_s = time.perf_counter() - start
    out["score_s"] = round(score_s, 2)
    out["score_leads_per_s"] = round(n / score_s)
    out["featurise_and_score_leads_per_s"] = round(n / (featurise_s + score_s))
    out["grade_counts"] = {g: int((grades == g).sum()) for g in "ABCD"}

    k = n if reasons_leads <= 0 else min(n, reasons_leads)
    start = time.perf_counter()
    worded = 0
    for lo in range(0, k, 20_000):
        part = frame.iloc[lo : min(lo + 20_000, k)]
        record = scorer.score(scorer.frame_batch(part), reasons=3)
        for texts in record.reason_texts("positive"):
            worded += len(REASON_SEPARATOR.join(texts)) > 0
    reasons_s = time.perf_counter() - start
    start = time.perf_counter()
    for lo in range(0, k, 20_000):
        part = frame.iloc[lo : min(lo + 20_000, k)]
        scorer.group_contributions(scorer.encode_frame(part))
    shap_s = time.perf_counter() - start
    out["with_reasons"] = {
        "leads": k,
        "wall_s": round(reasons_s, 2),
        "leads_per_s": round(k / reasons_s),
        "treeshap_alone_leads_per_s": round(k / shap_s),
        "wording_us_per_lead": round(max(reasons_s - shap_s, 0) / k * 1e6, 1),
        "share_with_a_reason_up": round(worded / max(k, 1), 3),
    }
    out["peak_rss_mib"] = round(_rss_mib())

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mlflow.pyfunc.save_model(
            tmp / "pyfunc",
            python_model=str(PYFUNC_ENTRY),
            artifacts={SCORER_ARTIFACT: str(scorer_dir)},
        )
        model = mlflow.pyfunc.load_model(str(tmp / "pyfunc"))
        sample = frame.sample(min(pyfunc_leads, n), random_state=0)
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
        got["probability"].to_numpy(), probability[sample.index.to_numpy()], rtol=1e-9
    )
    out["pyfunc"] = {
        "leads": len(sample),
        "wall_s": round(pyfunc_s, 2),
        "leads_per_s": round(len(sample) / pyfunc_s, 1),
    }
    out["speedup_vs_pyfunc"] = round((pyfunc_s / len(sample)) / ((featurise_s + score_s) / n), 1)
    return out


def doubled(data: Path, into: Path) -> Path:
    """The same export with every activity twice (row group by row group: bounded memory)."""
    import pyarrow.parquet as pq

    into.mkdir(parents=True, exist_ok=True)
    for item in data.iterdir():
        if not item.name.startswith("activities"):
            (into / item.name).symlink_to(item.resolve())
    source = pq.ParquetFile(data / "activities.parquet")
    with pq.ParquetWriter(into / "activities.parquet", source.schema_arrow) as writer:
        for _ in range(2):
            for i in range(source.num_row_groups):
                writer.write_table(source.read_row_group(i))
    return into


def _child(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--no-doubled", action="store_true", help="skip the doubled export")
    parser.add_argument("--engine", choices=("duckdb", "spark", "both"), default="both")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--scorer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.scorer, args.reasons_leads, args.pyfunc_leads)))
        return

    from leadscore.crm.loading import load_dataset
    from leadscore.features.batch import build_training_set
    from leadscore.simulation import SimulationConfig, simulate_apart
    from leadscore.training.config import LightGBMParams, TrainConfig
    from leadscore.training.fit import fit_models

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        simulate_apart(SimulationConfig(n_leads=20_000, seed=11), tmp / "train")
        df, spec, _ = build_training_set(load_dataset(tmp / "train"))
        config = TrainConfig(bootstrap=0, lightgbm=LightGBMParams(max_rounds=300))
        scorer = fit_models(df, spec, config).scorer
        scorer_dir = scorer.save(tmp / "scorer")
        data = args.data
        if data is None:
            data = tmp / "crm"
            simulate_apart(SimulationConfig(n_leads=args.leads, seed=12), data)
        common = ["--scorer", str(scorer_dir), "--reasons-leads", str(args.reasons_leads),
                  "--pyfunc-leads", str(args.pyfunc_leads)]  # fmt: skip
        report: dict = {"benchmark": "score", "model_trees": scorer.booster.num_trees()}
        if args.engine in ("duckdb", "both"):
            report["duckdb"] = _child(["--measure", str(data), *common])
            if not args.no_doubled and (data / "activities.parquet").is_file():
                twice = _child(["--measure", str(doubled(data, tmp / "doubled")), *common])
                report["doubled"] = {
                    key: twice[key]
                    for key in ("activity_events", "load_s", "peak_rss_after_load_mib",
                                "training_set", "featurise_leads_per_s", "peak_rss_mib")
                }  # fmt: skip
                report["doubled"]["peak_growth"] = round(
                    twice["peak_rss_mib"] / report["duckdb"]["peak_rss_mib"] - 1, 3
                )
        if args.engine in ("spark", "both"):
            spark = Path(__file__).with_name("spark_score.py")
            done = subprocess.run(
                [sys.executable, str(spark), "--data", str(data), "--scorer", str(scorer_dir)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"spark run failed:\n{done.stderr[-4000:]}")
            report["spark"] = json.loads(done.stdout.strip().splitlines()[-1])
            if "duckdb" in report:
                report["spark"]["wall_ratio_to_duckdb"] = round(
                    report["spark"]["featurise_and_score_s"]
                    / (report["duckdb"]["featurise_s"] + report["duckdb"]["score_s"]),
                    2,
                )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
