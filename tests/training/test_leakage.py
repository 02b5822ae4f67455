from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.features.definitions import FeatureSpec
from leadscore.training.fit import fit_models
from leadscore.training.leakage import audit_leakage, single_feature_auc
from tests.training.conftest import FAST

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
    from leadscore.crm.importer import import_tables
    from leadscore.crm.mapping import builtin_mapping_path, load_mapping
    from leadscore.features.batch import build_training_set

    ds = import_tables(
        load_mapping(builtin_mapping_path("xeducation")), leads=XEDUCATION, out_dir=tmp_path / "xe"
    ).dataset
    df, spec, _ = build_training_set(ds)
    result = fit_models(df, spec, FAST, declared_leaky=[])  # nothing declared
    assert {"tags", "lead_quality"} <= set(result.leakage.flagged)
    assert not {"occupation", "lead_origin", "time_on_website"} & set(result.leakage.flagged)
    declared = fit_models(df, spec, FAST, declared_leaky=ds.spec.columns.leaky)
    assert declared.metrics["model"]["roc_auc"] >= 0.87  # out of time, no leaky column


def _snapshots(leads: int = 600, per_lead: int = 4, seed: int = 0) -> pd.DataFrame:
    """Leads with several snapshots each, the same outcome on all of a lead's rows."""
    rng = np.random.default_rng(seed)
    won = rng.random(leads) < 0.2
    return pd.DataFrame(
        {
            "lead_id": np.repeat([f"L{i:05d}" for i in range(leads)], per_lead),
            "label": np.repeat(won.astype(int), per_lead),
        }
    )


def test_folds_keep_a_leads_snapshots_together():
    """An id column cannot score by memorising the lead's other snapshots."""
    df = _snapshots()
    ids = df["lead_id"].astype("category")
    y = df["label"].to_numpy()
    assert single_feature_auc(ids, y, df["lead_id"].to_numpy()) < 0.6
    assert single_feature_auc(ids, y) > 0.9  # folds over rows: the leak the lead folds close


def test_missingness_that_settles_the_outcome_is_flagged_one_sided():
    """A field filled only once a deal closed (won or lost), blank on every open lead."""
    df = _snapshots(seed=1)
    rng = np.random.default_rng(1)
    y = df["label"].to_numpy()
    closed = (y == 1) | (np.repeat(rng.random(600) < 0.3, 4))
    sector = np.where(closed, rng.choice(["retail", "services", "public"], len(df)), None)
    # honest: a phone number is missing twice as often on lost leads: not flagged
    phone = np.where(rng.random(len(df)) < np.where(y == 1, 0.1, 0.2), None, "yes")
    df = df.assign(sector=pd.Categorical(sector), phone=pd.Categorical(phone))
    report = audit_leakage(
        df, ["sector", "phone"], [], threshold=0.95, allow_leaky=False, profile=["sector", "phone"]
    )
    assert report.flagged == ["sector"] and report.excluded == ["sector"]
    m = report.missing["sector"]
    assert m.side == "missing" and m.missing_win_rate == 0.0 and m.present_win_rate > 0.3
    assert "whether it is filled settles the outcome" in report.warnings()[0]


def test_id_like_profile_columns_are_excluded_unless_kept():
    df = _snapshots(seed=2)
    n = df["lead_id"].str[1:].astype(int)
    df = df.assign(
        crm_id=df["lead_id"].str.lower(),
        account_number=n.astype(float),
        employees=(n % 37).astype(float),
    )
    cols = ["crm_id", "account_number", "employees"]
    report = audit_leakage(df, cols, [], threshold=0.95, allow_leaky=False, profile=cols)
    assert set(report.id_like) == {"crm_id", "account_number"}
    assert report.excluded == ["crm_id", "account_number"]
    kept = audit_leakage(
        df, cols, [], threshold=0.95, allow_leaky=False, profile=cols, keep=["account_number"]
    )
    assert kept.excluded == ["crm_id"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A simulated CRM with an undeclared post-outcome status, a missingness leak and a
    record id in its leads table."""
    from leadscore.crm import load_dataset
    from leadscore.features.batch import build_training_set
    from leadscore.simulation import SimulationConfig, simulate
    from leadscore.simulation.leaks import plant_leaks

    path = tmp_path_factory.mktemp("planted") / "crm"
    simulate(SimulationConfig(n_leads=4_000, seed=11), path)
    columns = plant_leaks(path)
    ds = load_dataset(path)
    return ds, build_training_set(ds), columns


def test_planted_leaks_are_excluded_from_the_model_and_the_learned_points(planted):
    from leadscore.rules.config import ProfileRule, load_rules
    from leadscore.training.report import compare

    ds, (df, spec, _), columns = planted
    result = fit_models(df, spec, FAST)
    assert set(columns.values()) <= set(result.leakage.excluded)
    assert not set(columns.values()) & set(result.scorer.features)
    assert set(result.leakage.flagged) == set(columns.values())  # honest columns stay
    assert result.leakage.id_like.keys() == {"record_id"}
    assert "sector" in result.leakage.missing
    assert result.scorer.info["leakage"]["excluded"] == result.leakage.excluded
    rules = load_rules("conf/rules.yaml")
    rules = rules.model_copy(  # marketing scores the post-outcome status too
        update={
            "profile": {**rules.profile, "account_status": ProfileRule(values={"customer": 50})}
        }
    )
    comp = compare(ds, result.scorer, rules, FAST, training_set=df, bootstrap=20)
    used = set(comp.learned_rules.profile)
    assert used and not used & set(columns.values())
    assert any("the rules score account_status" in w for w in comp.warnings)
    from leadscore.training.report_page import render_html

    page = render_html(comp, "x.csv")
    assert "Columns left out (leakage audit)" in page
    for column in columns.values():
        assert f"<td>{column}</td>" in page


def test_a_strong_column_below_the_threshold_is_listed_not_excluded(small_set):
    """A call's duration, known only after the outcome, reaches AUC ~0.82 alone: under the
    0.95 threshold, so kept, but listed in the audit, the warnings and the report."""
    df, spec, _ = small_set
    rng = np.random.default_rng(1)
    strong = df.copy()
    strong["call_minutes"] = strong["label"] * 1.3 + rng.normal(0, 1.0, len(strong))
    spec = FeatureSpec(
        **{**spec.model_dump(), "numeric_profile": [*spec.numeric_profile, "call_minutes"]}
    )
    result = fit_models(strong, spec, FAST)
    audit = result.leakage
    assert 0.8 <= audit.single_feature_auc["call_minutes"] < 0.95
    assert audit.strong == ["call_minutes"] and "call_minutes" not in audit.excluded
    assert "call_minutes" in result.scorer.features
    assert any("call_minutes" in w and "known before the outcome" in w for w in result.warnings)
    assert audit.to_dict()["strong"] == ["call_minutes"]
    honest = fit_models(*small_set[:2], FAST).leakage
    assert honest.strong == []


def test_a_lead_status_column_is_never_a_feature_even_when_leaks_are_allowed():
    """Sales' status of the lead (what it did after our hand-off) copied into the leads
    table: excluded whatever its AUC, and also with allow_leaky."""
    df = _snapshots(seed=4)
    rng = np.random.default_rng(4)
    status = rng.choice(["Working - Contacted", "Qualified", "Unqualified"], len(df))
    df = df.assign(
        crm_stage=pd.Categorical(status), region=pd.Categorical(rng.choice(["n", "s"], len(df)))
    )
    cols = ["crm_stage", "region"]
    for allow in (False, True):
        report = audit_leakage(df, cols, [], threshold=0.95, allow_leaky=allow, profile=cols)
        assert report.excluded == ["crm_stage"] and set(report.status_like) == {"crm_stage"}
        assert report.warnings()[0].endswith("excluded even with --allow-leaky")
