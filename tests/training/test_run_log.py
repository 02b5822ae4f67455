"""What a training run shows in MLflow: name, dataset inputs, train/validation/test
metrics, learning curve, descriptions, and a logged model whose environment installs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from leadscore.training import run_log
from tests.training.conftest import register, sqlite_store

NAME = "run-log-test"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with sqlite_store(tmp_path_factory.mktemp("mlflow")) as root:
        yield root


def _register(result, small_sim, df, **kwargs):
    return register(
        result, small_sim, df, name=NAME, experiment="run-log-test",
        source="/data/exports/acme-crm", **kwargs,
    )  # fmt: skip


def test_requirements_pin_every_import_of_the_shipped_code():
    pins = run_log.model_requirements()
    names = {line.split("==")[0] for line in pins}
    assert all("==" in line for line in pins), pins
    assert {"mlflow", "lightgbm", "numpy", "pandas", "scikit-learn", "pydantic", "pyyaml"} <= names
    assert "numba" in names  # the batch TreeSHAP kernel: a list by hand once missed it
    assert "leadscore" not in names  # the code travels with the model instead
    shipment = run_log.model_shipment()
    assert len(names) == len(shipment.third_party)  # one distribution per imported library
    # the Spark engine is shipped (features/) but no prediction imports pyspark
    assert "pyspark" not in names and "leadscore.features" in shipment.packages
    assert "leadscore.training" not in shipment.packages


def test_a_run_reads_like_an_mlflow_run(store, small_sim, small_set, trained, tmp_path):
    df, _, _ = small_set
    rules = {"roc_auc": 0.61, "roc_auc_ci": [0.55, 0.66], "brier": 0.09, "ece": 0.02}
    first = _register(trained, small_sim, df, rules_metrics=rules)
    second = _register(trained, small_sim, df)
    client = MlflowClient()
    run = client.get_run(first.run_id)

    # a name that says what, on what, when; the experiment asked for
    name = run.info.run_name
    assert name.startswith("acme-crm · LightGBM · data to ") and name[-16:-6].count("-") == 2
    assert client.get_experiment(run.info.experiment_id).name == "run-log-test"

    # the three periods as run inputs, with digest and schema
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "validation", "test"}
    split = trained.split
    for context, mask in (("train", split.train), ("test", split.test)):
        data = inputs[context]
        assert data.name == f"acme-crm-{context}" and data.digest
        assert json.loads(data.profile)["num_rows"] == int(mask.sum())
        assert "label" in data.schema and "acme-crm" in data.source

    # train and validation metrics next to the test ones
    metrics = run.data.metrics
    for key in ("train_roc_auc", "validation_roc_auc", "train_log_loss", "validation_ece"):
        assert key in metrics
    assert metrics["train_roc_auc"] == pytest.approx(trained.fit_metrics["train"]["roc_auc"])
    assert metrics["train_roc_auc"] > metrics["test_roc_auc_model"] - 0.2

    # LightGBM's learning curve, one point per round, train and validation
    curve = client.get_metric_history(first.run_id, "lgbm_validation_binary_logloss")
    rounds = len(trained.learning_curve["validation"]["binary_logloss"])
    assert [m.step for m in curve] == list(range(1, rounds + 1))
    assert rounds >= trained.params["best_iteration"]
    assert client.get_metric_history(first.run_id, "lgbm_train_auc")

    # descriptions: the registered model, each version, the run
    assert "champion" in client.get_registered_model(NAME).description
    v1 = client.get_model_version(NAME, first.version).description
    assert "Trained on `/data/exports/acme-crm`" in v1 and "Out-of-time test" in v1
    assert "| points rules (same period) | 0.610 [0.550, 0.660] | - |" in v1
    assert (
        "Promotion: champion: the first version, no champion before it" in v1
        and "leakage audit" in v1
    )
    assert run.data.tags["mlflow.note.content"] == v1
    v2 = client.get_model_version(NAME, second.version).description
    # the champion gate: both on the same rows; the very same model keeps the champion
    assert f"| | this model | champion v{first.version} | difference [95% CI] |" in v2
    assert "| ROC AUC |" in v2 and "+0.0000" in v2
    assert "challenger only" in v2 and "the same figures as the champion" in v2
    assert run.data.metrics.get("gate_rows") is None  # no champion when v1 was trained
    gate = client.get_run(second.run_id).data.metrics
    assert gate["gate_rows"] == len(trained.test) and gate["gate_roc_auc_difference"] == 0

    # the logged model: pinned requirements, and our code inside it
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{first.version}"))
    lines = (model_dir / "requirements.txt").read_text().split()
    assert sorted(lines) == sorted(run_log.model_requirements())
    code = model_dir / "code"
    assert sorted(p.name for p in code.iterdir()) == ["leadscore"]  # one namespace, no bare names
    assert (code / "leadscore" / "scoring" / "scorer.py").is_file()
    assert (code / "leadscore" / "crm" / "mappings").is_dir()

    # it loads and predicts in a fresh interpreter, with the shipped code first on the path
    script = tmp_path / "load.py"
    script.write_text(
        "import json, sys, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "import leadscore.scoring.scorer\n"
        "example = json.load(open(sys.argv[2]))\n"
        "rows = pd.DataFrame(example['data'], columns=example['columns'])\n"
        "print(leadscore.scoring.scorer.__file__, len(m.predict(rows)))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(model_dir), str(model_dir / "input_example.json")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    where, count = done.stdout.split()[-2:]
    assert Path(where).is_relative_to(model_dir / "code") and count == "2"


def test_the_logged_schema_is_what_mlflow_infers_from_every_value(small_set):
    """The dataset schema read off witness rows equals MLflow's inference over every cell:
    on the training set, and on a frame of awkward columns (all missing, missing first,
    categories, text, booleans, times), any row order."""
    import numpy as np
    import pandas as pd

    def full(frame):
        return mlflow.data.from_pandas(run_log._schema_friendly(frame)).schema

    df = small_set[0]
    assert run_log.dataset_schema(df) == full(df)
    n = 50
    odd = pd.DataFrame(
        {
            "none": [None] * n,
            "nan": np.full(n, np.nan),
            "late": [None] * (n - 1) + ["x"],
            "text": pd.array(["a"] * n, dtype="str"),
            "gaps": pd.array([None, "b"] * (n // 2), dtype="str"),
            "cat": pd.Categorical(["u", None] * (n // 2)),
            "flag": [True, False] * (n // 2),
            "count": np.arange(n),
            "ratio": np.r_[np.nan, np.linspace(0, 1, n - 1)],
            "at": pd.date_range("2025-01-01", periods=n, freq="D", tz="UTC"),
        }
    )
    for frame in (odd, odd.iloc[::-1], odd.sample(frac=1, random_state=1)):
        assert run_log.dataset_schema(frame) == full(frame)
    assert run_log.dataset_schema(odd.iloc[:0]) == full(odd.iloc[:0])
