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
