"""`leadscore score --engine spark`'s engine: the open pipeline scored on Spark's executors
gives the DuckDB run's rows (rtol 1e-9), reasons and rule scores included."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.loading import load_dataset
from leadscore.operations.pipeline import score_pipeline
from leadscore.scoring.model_ref import ModelRef
from tests.conftest import write_dataset
from tests.features.test_spark_engine import MESSY_ACTIVITIES, MESSY_DEALS, MESSY_LEADS

pytest.importorskip("pyspark", reason="the Spark engine's tests need pyspark (the spark extra)")

MODEL = ModelRef("lead-scoring", "3")


def _same(got, want):
    pd.testing.assert_frame_equal(got.frame, want.frame, rtol=1e-9, atol=0)
    assert got.reasons == want.reasons


@pytest.fixture(scope="module")
def scorer(trained, served_rules):
    with_rules = trained.scorer.with_parts(rules=served_rules)
    return with_rules


def test_the_simulators_open_pipeline(spark, small_sim_path, small_sim, scorer):
    from leadscore.features.spark_engine import SparkHistory
    from leadscore.operations.spark_scoring import spark_score_pipeline

    history = SparkHistory(spark, load_dataset(small_sim_path, activities=False))
    for as_of in (None, small_sim.data_end - pd.Timedelta(days=60)):
        want = score_pipeline(small_sim, scorer, MODEL, as_of)
        got = spark_score_pipeline(history, scorer, MODEL, as_of, buckets=5)
        assert len(got.frame) == len(want.frame) > 500
        _same(got, want)
    got = spark_score_pipeline(history, trained_without_rules(scorer), MODEL, reasons=False)
    _same(got, score_pipeline(small_sim, trained_without_rules(scorer), MODEL, reasons=False))
    history.close()


def trained_without_rules(scorer):
    bare = scorer.with_parts(rules=None)
    return bare


def test_a_messy_export_with_categories_unseen_in_training(spark, tmp_path, scorer):
    """Industries and sources the model never saw, blanks, mixed offsets, a lead with no
    activity, ties: the same scores and words on both engines."""
    from leadscore.features.spark_engine import SparkHistory
    from leadscore.operations.spark_scoring import spark_score_pipeline

    path = write_dataset(tmp_path / "crm", leads=MESSY_LEADS.replace("industry", "industry_x"),
                         activities=MESSY_ACTIVITIES, deals=MESSY_DEALS)  # fmt: skip
    # The model reads `industry`-less leads? It needs its own profile columns: give them.
    leads = pd.read_csv(path / "leads.csv", dtype=str)
    for column in scorer.spec.categorical + scorer.spec.numeric_profile:
        if column not in leads:
            leads[column] = ["never-seen", None, "", "also-new", None][: len(leads)]
    leads.to_csv(path / "leads.csv", index=False)
    ds = load_dataset(path)
    history = SparkHistory(spark, load_dataset(path, activities=False))
    for as_of in ("2025-01-08T08:00:00Z", "2025-01-25T00:00:00Z"):
        want = score_pipeline(ds, scorer, MODEL, as_of)
        assert len(want.frame) >= 3
        _same(spark_score_pipeline(history, scorer, MODEL, as_of, buckets=2), want)
    history.close()


def test_score_and_features_commands_on_spark(
    spark, tmp_path, small_sim_path, small_set, trained, monkeypatch
):
    """`leadscore score --engine spark` writes the DuckDB run's rows as the partition of its
    as_of and records the run in the history; `leadscore features --engine spark` writes
    the DuckDB training set. The app in process: the commands get the run's Spark session
    (`local[2]`, already started) instead of starting their own."""
    from leadscore.cli import app
    from tests.cli.test_cli import runner

    monkeypatch.chdir(tmp_path)
    folder = trained.scorer.save(tmp_path / "scorer")
    when = trained.test["as_of"].max().isoformat()
    for engine, out in (("duckdb", "scores.parquet"), ("spark", "scores")):
        result = runner.invoke(app, [
            "score", "--data", str(small_sim_path), "--out", str(tmp_path / out), "--model",
            str(folder), "--as-of", when, "--engine", engine, "--spark-master", "local[2]",
            "--history", str(tmp_path / f"{engine}.duckdb"),
        ])  # fmt: skip
        assert result.exit_code == 0, result.output[-3000:]
    partitions = sorted(p.name for p in (tmp_path / "scores").iterdir())
    assert partitions == ["as_of=" + pd.Timestamp(when).strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ")]
    got = pd.read_parquet(tmp_path / "scores").drop(columns=["as_of"])
    want = pd.read_parquet(tmp_path / "scores.parquet").drop(columns=["as_of"])
    pd.testing.assert_frame_equal(got, want, rtol=1e-9, check_dtype=False)
    shown = runner.invoke(
        app, ["history", want["lead_id"].iloc[0], "--history", str(tmp_path / "spark.duckdb")]
    )
    assert shown.exit_code == 0 and when[:10] in shown.stdout
    result = runner.invoke(app, [
        "features", "--data", str(small_sim_path), "--out", str(tmp_path / "set.parquet"),
        "--engine", "spark", "--spark-master", "local[2]",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "set.parquet"), small_set[0])


def test_a_rerun_replaces_its_partition_and_keeps_the_others(tmp_path, small_sim, trained):
    from leadscore.operations.pipeline import partition_name, write_scores

    frame = score_pipeline(small_sim, trained.scorer, MODEL, reasons=False).frame
    first = write_scores(frame, tmp_path / "scores")
    other = frame.assign(as_of=frame["as_of"] - pd.Timedelta(days=7))
    write_scores(other, tmp_path / "scores")
    write_scores(frame.head(10), tmp_path / "scores")  # the same as_of again: replaced
    assert first.name == partition_name(frame["as_of"].iloc[0])
    names = sorted(p.name for p in (tmp_path / "scores").iterdir())
    assert len(names) == 2 and not any(n.startswith(".") for n in names)
    back = pd.read_parquet(first)
    assert len(back) == 10 and "as_of" not in back
    with pytest.raises(LeadscoreError, match="one as_of"):
        write_scores(pd.concat([frame, other]), tmp_path / "scores")


def test_mlflow_spark_udf_over_the_registered_model(spark, tmp_path, small_sim, trained):
    """Users who prefer `mlflow.pyfunc.spark_udf` over the registered model get the same
    probabilities as the batch pipeline (benchmarks/spark_score.py reports its cost)."""
    import json

    import mlflow
    from pyspark.sql import functions as F

    from leadscore.crm.payloads import lead_payloads
    from leadscore.scoring.mlflow_model import SCORER_ARTIFACT
    from leadscore.training.tracking import PYFUNC_ENTRY

    before = mlflow.get_tracking_uri()
    experiment_env = os.environ.get("MLFLOW_EXPERIMENT_ID")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        folder = trained.scorer.save(tmp_path / "scorer")
        # An experiment of this store: another test in this process may have set one of
        # another store as the active experiment (mlflow.set_experiment is process-wide).
        experiment = mlflow.set_experiment("spark-udf-test")
        with mlflow.start_run(experiment_id=experiment.experiment_id):
            mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_ENTRY),
                artifacts={SCORER_ARTIFACT: str(folder)},
                registered_model_name="lead-scoring",
            )
        udf = mlflow.pyfunc.spark_udf(
            spark,
            "models:/lead-scoring/1",
            result_type="lead_id string, probability double, grade string",
            env_manager="local",
        )
        want = score_pipeline(small_sim, trained.scorer, MODEL, reasons=False).frame.head(60)
        as_of = want["as_of"].iloc[0].isoformat()
        payloads = lead_payloads(small_sim, want["lead_id"], iso=True)
        rows = spark.createDataFrame(
            pd.DataFrame(
                {
                    "lead": [json.dumps(p, default=str) for p in payloads],
                    "as_of": [as_of] * len(payloads),
                }
            )  # fmt: skip
        )
        got = (
            rows.withColumn("scored", udf(F.struct("lead", "as_of")))
            .select("scored.*")
            .toPandas()
            .set_index("lead_id")
            .loc[want["lead_id"]]
        )
    finally:
        mlflow.set_tracking_uri(before)
        if experiment_env is None:  # set_experiment exports its id: leave the env as found
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        else:
            os.environ["MLFLOW_EXPERIMENT_ID"] = experiment_env
    assert (got["grade"].to_numpy() == want["grade"].to_numpy()).all()
    pd.testing.assert_series_equal(
        got["probability"].reset_index(drop=True),
        want["probability"].reset_index(drop=True),
        rtol=1e-9,
    )
