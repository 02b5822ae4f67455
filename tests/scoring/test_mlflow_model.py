"""The MLflow pyfunc: models saved by earlier layouts still load and predict the same."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.models import Model

from crm.errors import LeadscoreError
from scoring.mlflow_model import SCORER_ARTIFACT, load_scorer

# Saved with the 0.1 layout: its logged entry file imports features.mlflow_model.
LEGACY = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_model"


def test_legacy_model_loads_through_mlflow_and_predicts_as_saved():
    assert "from features.mlflow_model import" in (LEGACY / "model" / "pyfunc_entry.py").read_text()
    model = mlflow.pyfunc.load_model(str(LEGACY / "model"))
    example = Model.load(str(LEGACY / "model")).load_input_example(str(LEGACY / "model"))
    got = model.predict(example)
    expected = pd.read_json(LEGACY / "expected.json", orient="records", dtype=False)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)


def test_legacy_scorer_folder_loads_with_its_rules():
    scorer = load_scorer(LEGACY / "model" / "artifacts" / SCORER_ARTIFACT)
    assert scorer.rules is not None and scorer.features
    assert type(scorer).__module__ == "scoring.scorer"


def test_not_a_scorer_folder_is_a_clear_error(tmp_path):
    with pytest.raises(LeadscoreError, match="not a saved lead scorer"):
        load_scorer(tmp_path)


def test_tracking_uris_are_shown_without_credentials():
    from scoring.mlflow_model import masked_uri

    assert (
        masked_uri("http://user:s3cret@mlflow.internal:5000")
        == "http://user:***@mlflow.internal:5000"
    )
    assert masked_uri("postgresql://ls:pw@db/mlflow") == "postgresql://ls:***@db/mlflow"
    assert masked_uri("https://token@host") == "https://***@host"
    assert masked_uri("https://host/api?token=abc&x=1") == "https://host/api?token=***&x=1"
    for plain in ("sqlite:///mlflow.db", "sqlite:////abs/mlflow.db", "file:///tmp/mlruns"):
        assert masked_uri(plain) == plain
