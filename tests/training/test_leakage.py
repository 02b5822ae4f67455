from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.definitions import FeatureSpec
from tests.training.conftest import FAST
from training.fit import fit_models
from training.leakage import single_feature_auc

XEDUCATION = Path(__file__).resolve().parents[2].parent / "shared/datasets/xeducation/Leads.csv"


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


def test_a_disposition_that_settles_the_outcome_both_ways_is_flagged(small_set):
    """A sales disposition with a modest AUC alone (like X Education's Lead Quality) is
    flagged; an honest feature that only raises the odds for one value is not."""
    df, spec, _ = small_set
    rng = np.random.default_rng(1)
    y = df["label"].to_numpy()
    # Most leads have no disposition yet; a few won ones are "hot", a few lost ones "dead".
    disposition = np.full(len(df), None, dtype=object)
    disposition[(y == 1) & (rng.random(len(df)) < 0.3)] = "hot"
    disposition[(y == 0) & (rng.random(len(df)) < 0.05)] = "dead"
    disposition[rng.random(len(df)) < 0.05] = "callback"
    # One-sided: "referral" leads win far more often, the rest are as usual.
    referral = np.where((y == 1) & (rng.random(len(df)) < 0.3), "referral", "other")
    leaky = df.assign(disposition=pd.Categorical(disposition), referred=pd.Categorical(referral))
    spec = FeatureSpec(
        **{**spec.model_dump(), "categorical": [*spec.categorical, "disposition", "referred"]}
    )
    result = fit_models(leaky, spec, FAST)
    assert result.leakage.single_feature_auc["disposition"] < FAST.leakage_auc
    assert result.leakage.flagged == ["disposition"]
    won, lost = result.leakage.pinned["disposition"]
    assert (won.value, lost.value) == ("hot", "dead") and won.win_rate == 1.0
    assert any("settles the outcome both ways" in w for w in result.warnings)
    assert "referred" in result.scorer.features


@pytest.mark.skipif(not XEDUCATION.is_file(), reason=f"{XEDUCATION} not on this machine")
def test_xeducation_audit_flags_tags_and_lead_quality_undeclared(tmp_path):
    from crm.mapping import builtin_mapping_path, import_tables, load_mapping
    from features.batch import build_training_set

    ds = import_tables(
        load_mapping(builtin_mapping_path("xeducation")), leads=XEDUCATION, out_dir=tmp_path / "xe"
    ).dataset
    df, spec, _ = build_training_set(ds)
    result = fit_models(df, spec, FAST, declared_leaky=[])  # nothing declared
    assert {"tags", "lead_quality"} <= set(result.leakage.flagged)
    assert not {"occupation", "lead_origin", "time_on_website"} & set(result.leakage.flagged)
    declared = fit_models(df, spec, FAST, declared_leaky=ds.spec.columns.leaky)
    assert declared.metrics["model"]["roc_auc"] >= 0.87  # out of time, no leaky column
