"""The Spark engine on this machine (`local[*]`): the open pipeline of an export scored on
the executors, and the same leads through `mlflow.pyfunc.spark_udf` on a sample.

Prints one JSON object: session start, reading and checking the activities on Spark, the
open pipeline featurised and scored (`leadscore.operations.spark_scoring.spark_score_pipeline`,
without reasons, as `benchmarks/score.py` times DuckDB's), leads/s; the pyfunc as a Spark
UDF over the same model on a sample (one JSON payload per lead) and the ratio; the peak RSS
of the driver (Python), of the JVM and of the largest Python worker, sampled every 0.2 s.

`benchmarks/score.py --engine spark|both` runs this with its own export and model.

Usage: python -m benchmarks.spark_score --data DIR --scorer DIR [--udf-leads 2000] [--master local[*]]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path


class PeakSampler:
    """The peak RSS (MiB) of this process, its JVM child and its largest Python worker."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peaks = {"driver": 0.0, "jvm": 0.0, "worker": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self._take("driver", self._me.memory_info().rss)
                for child in self._me.children(recursive=True):
                    name = child.name()
                    kind = "jvm" if name.startswith("java") else "worker"
                    self._take(kind, child.memory_info().rss)
            except psutil.Error:
                pass
            self._stop.wait(0.2)

    def _take(self, kind: str, rss: int) -> None:
        self.peaks[kind] = max(self.peaks[kind], rss / 2**20)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--scorer", type=Path, required=True)
    parser.add_argument("--udf-leads", type=int, default=2_000)
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args()

    import mlflow
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    from leadscore.crm.loading import load_dataset
    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.spark_engine import SparkHistory, spark_session
    from leadscore.operations.spark_scoring import spark_score_pipeline
    from leadscore.scoring.mlflow_model import SCORER_ARTIFACT
    from leadscore.scoring.model_ref import ModelRef
    from leadscore.scoring.scorer import LeadScorer
    from leadscore.training.tracking import PYFUNC_ENTRY

    out: dict = {"benchmark": "spark_score", "master": args.master}
    scorer = LeadScorer.load(args.scorer)
    with PeakSampler() as peaks:
        start = time.perf_counter()
        spark = spark_session(args.master)
        out["session_start_s"] = round(time.perf_counter() - start, 2)
        ds = load_dataset(args.data, activities=False)
        start = time.perf_counter()
        history = SparkHistory(spark, ds)
        out["read_and_check_s"] = round(time.perf_counter() - start, 2)
        out["activity_events"] = sum(history.type_counts.values())
        start = time.perf_counter()
        scored = spark_score_pipeline(history, scorer, ModelRef("bench", "1"), reasons=False)
        wall = time.perf_counter() - start
        n = len(scored.frame)
        out["open_leads_scored"] = n
        out["featurise_and_score_s"] = round(wall, 2)
        out["featurise_and_score_leads_per_s"] = round(n / wall)
        engine_peaks = dict(peaks.peaks)  # the UDF's preparation below is not the engine's

        # The logged model as a Spark UDF, on a sample of the same leads.
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.pyfunc.save_model(
                Path(tmp) / "pyfunc",
                python_model=str(PYFUNC_ENTRY),
                artifacts={SCORER_ARTIFACT: str(args.scorer)},
            )
            udf = mlflow.pyfunc.spark_udf(
                spark, str(Path(tmp) / "pyfunc"), result_type="lead_id string, probability double",
                env_manager="local",
            )  # fmt: skip
            sample = scored.frame.sample(min(args.udf_leads, n), random_state=0)
            as_of = pd.Timestamp(sample["as_of"].iloc[0]).isoformat()
            payloads = lead_payloads(load_dataset(args.data), sample["lead_id"], iso=True)
            rows = spark.createDataFrame(
                pd.DataFrame(
                    {
                        "lead": [json.dumps(p, default=str) for p in payloads],
                        "as_of": [as_of] * len(payloads),
                    }
                )  # fmt: skip
            ).cache()
            rows.count()
            start = time.perf_counter()
            got = rows.withColumn("s", udf(F.struct("lead", "as_of"))).select("s.*").toPandas()
            udf_s = time.perf_counter() - start
        got = got.set_index("lead_id").loc[sample["lead_id"]]
        np.testing.assert_allclose(got["probability"], sample["probability"], rtol=1e-9)
        out["spark_udf"] = {
            "leads": len(sample),
            "wall_s": round(udf_s, 2),
            "leads_per_s": round(len(sample) / udf_s, 1),
        }
        out["speedup_vs_spark_udf"] = round((udf_s / len(sample)) / (wall / n), 1)
        history.close()
        spark.stop()
    out["peak_rss_mib"] = {k: round(v) for k, v in engine_peaks.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
