"""Learned points: a sparse, whole-point scorecard that loads and scores like hand rules."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from leadscore.crm.errors import LeadscoreError
from leadscore.rules.config import check_rules, load_rules
from leadscore.rules.scorecard import suggest_rules
from leadscore.rules.scorer import RuleScorer, batch_rule_inputs
from leadscore.training.splits import time_split


@pytest.fixture(scope="module")
def parts(small_set):
    df, spec, _ = small_set
    split = time_split(df, test_days=60, validation_days=60, horizon_days=spec.horizon_days)
    return df[split.train], df[split.validation], df[split.test]


def _columns(dataset) -> list[str]:
    return ["source", *dataset.profile_columns]


def _items(rules) -> int:
    n = sum(len(r.values or {}) + len(r.at_least or {}) for r in rules.profile.values())
    return n + len(rules.activities) + (rules.inactivity is not None)


def test_suggested_rules_load_score_and_beat_chance(small_sim, parts, tmp_path):
    train, val, test = parts
    s = suggest_rules(
        small_sim, train, val, columns=_columns(small_sim), max_rules=30, mql_share=0.15
    )
    assert 0 < s.nonzero <= 30 and _items(s.rules) <= 30
    path = tmp_path / "rules.suggested.yaml"
    path.write_text(s.rules.to_yaml())
    rules = load_rules(path)
    assert rules == s.rules and check_rules(rules, small_sim) == []
    points = [
        p
        for r in rules.profile.values()
        for p in [*(r.values or {}).values(), *(r.at_least or {}).values()]
    ] + [a.points for a in rules.activities.values()]
    assert all(float(p).is_integer() for p in points) and all(p != 0 for p in points)
    x = batch_rule_inputs(rules, small_sim, test["lead_id"], test["as_of"])
    score = RuleScorer(rules).rule_scores(x)
    assert roc_auc_score(test["label"], score) > 0.6
    # the base is set so that about mql_share of train rows reach the threshold
    x_train = batch_rule_inputs(rules, small_sim, train["lead_id"], train["as_of"])
    share = (RuleScorer(rules).rule_scores(x_train) >= rules.mql_threshold).mean()
    assert 0.08 < share < 0.25


def test_max_rules_keeps_the_scorecard_small(small_sim, parts):
    train, val, _ = parts
    s = suggest_rules(small_sim, train, val, columns=_columns(small_sim), max_rules=4)
    assert s.nonzero <= 4 and _items(s.rules) <= 4
    assert max(p["nonzero"] for p in s.path) > 4  # weaker penalties were tried and refused


def test_no_winners_in_train_is_a_clear_error(small_sim, parts):
    train, val, _ = parts
    with pytest.raises(LeadscoreError, match="won and not-won leads in train"):
        suggest_rules(small_sim, train.assign(label=np.int8(0)), val, columns=_columns(small_sim))


def test_points_stay_on_the_scale_with_a_rare_decisive_item(small_sim_path, tmp_path):
    """A rare value that nearly always wins (honest, one-sided) must not take 200 points and
    send every lead that has it to the cap: items fit the scale, scores spread out."""
    import shutil

    import pandas as pd

    from leadscore.crm import load_dataset
    from leadscore.features.batch import build_training_set

    path = shutil.copytree(small_sim_path, tmp_path / "crm")
    leads = pd.read_parquet(path / "leads.parquet")
    deals = pd.read_parquet(path / "deals.parquet")
    won = set(deals.loc[deals["status"] == "won", "lead_id"])
    rng = np.random.default_rng(4)
    is_won = leads["lead_id"].isin(won).to_numpy()
    leads["referral"] = np.where(is_won & (rng.random(len(leads)) < 0.25), "yes", "no")
    leads.to_parquet(path / "leads.parquet", index=False)
    ds = load_dataset(path)
    df, spec, _ = build_training_set(ds)
    split = time_split(df, test_days=60, validation_days=60, horizon_days=spec.horizon_days)
    train, val, test = df[split.train], df[split.validation], df[split.test]
    s = suggest_rules(ds, train, val, columns=_columns(ds), max_rules=30)
    rules = s.rules
    items = [
        abs(p) for r in rules.profile.values() for p in [*(r.values or {}).values(),
                                                          *(r.at_least or {}).values()]
    ] + [abs(a.max or a.points) for a in rules.activities.values()]  # fmt: skip
    assert rules.profile["referral"].values["yes"] > 0  # it is used ...
    assert max(items) <= 0.5 * (rules.cap - rules.floor)  # ... but within the scale
    x = batch_rule_inputs(rules, ds, test["lead_id"], test["as_of"])
    scores = RuleScorer(rules).rule_scores(x)
    at_ends = np.isin(scores, [rules.floor, rules.cap]).mean()
    assert at_ends < 0.5 and len(np.unique(scores)) >= 20


def test_the_base_counts_ties_and_stays_within_the_scale():
    from leadscore.rules.scorecard import base_for_share

    # 90 % of the rows tie at -73 points: a quantile would set the base at 148 (cap 100)
    # and send every row to the cap.
    raw = np.r_[np.full(900, -73.0), np.full(100, -10.0)]
    base = base_for_share(raw, 75, 0.15, 100)
    assert base == 85 and np.mean(raw + base >= 75) == pytest.approx(0.10)
    assert base_for_share(np.full(50, -200.0), 75, 0.15, 100) == 100  # clipped to the cap
    spread = np.arange(100.0)
    assert np.mean(spread + base_for_share(spread, 75, 0.15, 100) >= 75) == pytest.approx(0.15)


def test_a_numeric_columns_points_are_monotone_in_the_direction_it_learned():
    from leadscore.rules.scorecard import Candidate, _monotone_thresholds, monotone_levels

    # pool adjacent violators, weighted: 0, 12, 9, 20 with the third bin heavy
    fitted = monotone_levels(np.array([0, 12, 9, 20.0]), np.array([10, 10, 30, 5]), True)
    assert fitted.tolist() == pytest.approx([0, 9.75, 9.75, 20])
    assert monotone_levels(np.array([0, -5, 3, -9.0]), np.ones(4), False).tolist() == [
        0, -1, -1, -9
    ]  # fmt: skip
    # increments +12 then -3 (cumulative 0, 12, 9): up and down; made monotone upwards,
    # the heavier bin above the second threshold pulling the middle level down
    cands = [Candidate("threshold", "employees", 10.0), Candidate("threshold", "employees", 50.0)]
    x = {"employees": np.r_[np.full(20, 5.0), np.full(10, 20.0), np.full(30, 80.0), np.nan]}
    points = _monotone_thresholds(cands, np.array([12.0, -3.0]), x)
    levels = np.cumsum(np.r_[0.0, points])
    assert (np.diff(levels) >= 0).all() and levels[-1] > 0
    assert points.tolist() == [10.0, 0.0]  # 0, then 12 and 9 pooled (weights 10 and 30): 9.75
    # already monotone: untouched
    assert _monotone_thresholds(cands, np.array([4.0, 6.0]), x).tolist() == [4.0, 6.0]
