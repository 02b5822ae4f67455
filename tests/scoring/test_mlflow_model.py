"""The MLflow pyfunc: a scorer saved by an earlier layout still loads (its pyfunc is
migrated by `leadscore models migrate`: tests/training/test_migrate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.scoring.mlflow_model import SCORER_ARTIFACT, load_scorer

# Saved with the 0.1 layout: its logged entry file imports features.mlflow_model.
LEGACY = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_model"


def test_legacy_scorer_folder_loads_with_its_rules():
    scorer = load_scorer(LEGACY / "model" / "artifacts" / SCORER_ARTIFACT)
    assert scorer.rules is not None and scorer.features
    assert type(scorer).__module__ == "leadscore.scoring.scorer"


def test_not_a_scorer_folder_is_a_clear_error(tmp_path):
    with pytest.raises(LeadscoreError, match="not a saved lead scorer"):
        load_scorer(tmp_path)


def test_urls_are_shown_without_credentials():
    from leadscore.crm.secrets import mask_urls, masked_url

    assert (
        masked_url("http://user:s3cret@mlflow.internal:5000") == "http://***@mlflow.internal:5000"
    )
    assert masked_url("postgresql://ls:pw@db/mlflow") == "postgresql://***@db/mlflow"
    assert masked_url("https://token@host") == "https://***@host"
    assert masked_url("https://host/api?token=abc&x=1") == "https://host/api?token=***&x=1"
    assert masked_url("https://h/hook?api_key=k&Signature=s&page=2") == (
        "https://h/hook?api_key=***&Signature=***&page=2"
    )
    # not a URL that parses: masked by pattern, never shown raw
    assert masked_url("http://u:pw@[::1?token=t") == "http://***@[::1?token=***"
    for plain in ("sqlite:///mlflow.db", "sqlite:////abs/mlflow.db", "file:///tmp/mlruns"):
        assert masked_url(plain) == plain
    said = mask_urls("connection to postgresql://ls:hunter2@db:5432/h failed: timeout")
    assert "hunter2" not in said and "postgresql://***@db:5432/h failed" in said
