from __future__ import annotations

import numpy as np

from features.definitions import FeatureSpec
from tests.training.conftest import FAST
from training.fit import fit_models
from training.leakage import single_feature_auc


def _with_leak(small_set):
    df, spec, _ = small_set
    rng = np.random.default_rng(0)
    leaky = df.copy()
    leaky["sales_score"] = leaky["label"] * 3.0 + rng.normal(
        0, 0.5, len(leaky)
    )  # set after the fact
    spec = FeatureSpec(
        **{**spec.model_dump(), "numeric_profile": [*spec.numeric_profile, "sales_score"]}
    )
    return leaky, spec


def test_planted_leaky_column_is_flagged_and_excluded(small_set):
    df, spec = _with_leak(small_set)
    result = fit_models(df, spec, FAST)
    assert "sales_score" in result.leakage.flagged and "sales_score" in result.leakage.excluded
    assert "sales_score" not in result.scorer.features
    assert any("sales_score" in w and "excluded" in w for w in result.warnings)
    assert not set(result.leakage.flagged) - {"sales_score"}  # honest features are not flagged


def test_allow_leaky_keeps_it(small_set):
    df, spec = _with_leak(small_set)
    result = fit_models(df, spec, FAST, allow_leaky=True)
    assert "sales_score" in result.scorer.features and result.leakage.excluded == []


def test_declared_leaky_columns_are_excluded(small_set):
    df, spec, _ = small_set
    result = fit_models(df, spec, FAST, declared_leaky=["industry", "not_a_feature"])
    assert result.leakage.declared == ["industry"] and "industry" not in result.scorer.features


def test_single_feature_auc_is_symmetric_and_text_aware():
    import pandas as pd

    y = np.array([0, 1] * 200)
    assert single_feature_auc(pd.Series(y * 1.0), y) == 1.0
    assert single_feature_auc(pd.Series(-y * 1.0), y) == 1.0  # inverted leaks count too
    text = pd.Series(np.where(y == 1, "Closed won", "Open")).astype("category")
    assert single_feature_auc(text, y) > 0.99
    ids = pd.Series([f"id{i}" for i in range(len(y))]).astype("category")
    assert single_feature_auc(ids, y) < 0.6  # a unique id cannot leak through memorising
