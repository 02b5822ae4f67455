"""The do-not-trust banners: each sign, with its number, and none on a healthy model."""

from __future__ import annotations

import numpy as np

from leadscore.training.trust import does_not_beat_rules, untrusted_model


def test_a_healthy_model_gets_no_banner():
    assert untrusted_model(500, 120, np.linspace(0.01, 0.9, 1_000)) == []


def test_each_sign_is_named_with_its_number():
    lines = untrusted_model(17, 1, np.r_[np.full(500, 0.04), np.full(500, 0.06)])
    assert len(lines) == 3
    assert "17 won leads in the train period" in lines[0]
    assert "1 tree " in lines[1]
    assert "2 distinct probabilities" in lines[2]


def test_the_rules_stay_when_the_difference_reaches_zero():
    assert does_not_beat_rules([0.05, 0.01, 0.09]) is None
    line = does_not_beat_rules([0.01, -0.02, 0.04])
    assert "does not beat the points rules" in line and "keep the rules" in line
    assert "keep the rules" in does_not_beat_rules([-0.03, -0.06, 0.0])
    assert does_not_beat_rules([np.nan, np.nan, np.nan]) is None  # no rules to compare


def test_the_verdict_rests_on_the_same_day_difference_and_lead_age_is_said_first():
    import pandas as pd

    from leadscore.training.backtest import Backtest
    from leadscore.training.report import _verdict_difference, below_lead_age

    here = {"roc_auc": [0.08, 0.05, 0.11], "same_day_auc": [0.01, -0.02, 0.04]}
    assert _verdict_difference(here, None) == ([0.01, -0.02, 0.04], "here", "same-day ROC AUC")
    backtest = Backtest(
        origins=[{}, {}], rows=pd.DataFrame(), pooled={}, difference=[0.07, 0.04, 0.1],
        asked=2, same_day_difference=[0.03, 0.01, 0.05],
    )  # fmt: skip
    basis = _verdict_difference(here, backtest)
    assert basis == ([0.03, 0.01, 0.05], "pooled over 2 backtest origins", "same-day ROC AUC")
    # no day with both outcomes: the pooled figure, said as such
    nan = float("nan")
    assert (
        _verdict_difference({"roc_auc": [0.08, 0.05, 0.11], "same_day_auc": [nan] * 3}, None)[2]
        == "ROC AUC"
    )
    headline = pd.DataFrame(
        {"scorer": ["model", "rules", "learned", "lead_age"], "roc_auc": [0.8, 0.7, 0.62, 0.75]}
    )
    lines = below_lead_age(headline)
    assert len(lines) == 2 and lines[0].startswith("the points rules rank")
    assert "learned points" in lines[1] and "0.620 against 0.750" in lines[1]
    assert below_lead_age(headline[headline["scorer"] != "lead_age"]) == []
