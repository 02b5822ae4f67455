"""The readout on constructed experiments: a known effect is estimated and covered, an
A/A test finds no difference, the verdicts say what the intervals say, and a readout
before any lead has matured is refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import US_PER_DAY, to_us
from leadscore.experiment.page import write_report
from leadscore.experiment.readout import Outcomes, read_out, verdict_of
from leadscore.experiment.records import Experiment

START = to_us(pd.Timestamp("2026-01-05", tz="UTC"))


def _experiment(**kw) -> Experiment:
    base = dict(name="exp-1", started_us=START, share=0.5, line=0.3, rules_rate=0.2,
                matched_leads=100, planned_leads=4000, horizon_days=90.0)  # fmt: skip
    return Experiment(**{**base, **kw})


def _outcomes(n_per_arm: int, wins_model: int, wins_rules: int, days: float = 100.0):
    """n leads per arm created evenly over `days` from the start, the given numbers of
    wins in each arm (spread evenly), every lead handed off at the rules' 20 %."""
    n = 2 * n_per_arm
    created = START + (np.arange(n) * (days * US_PER_DAY / n)).astype(np.int64)
    model = np.arange(n) % 2 == 0
    won = np.zeros(n, dtype=np.int64)
    for arm, wins in ((model, wins_model), (~model, wins_rules)):
        idx = np.flatnonzero(arm)
        won[idx[np.linspace(0, len(idx) - 1, wins).astype(int)]] = 1 if wins else 0
    return Outcomes(
        created_us=created,
        model=model,
        handed_off=np.arange(n) % 5 == 0,
        matured=np.ones(n, dtype=bool),
        won=won,
        revenue=won * 1000.0,
    )


AS_OF = pd.Timestamp("2026-09-01", tz="UTC")


def test_a_known_effect_is_estimated_and_covered():
    data = _outcomes(3000, wins_model=450, wins_rules=300)  # 15 vs 10 per 100 leads
    r = read_out(_experiment(), data, AS_OF)
    assert r.effect == pytest.approx(5.0)
    assert r.low < r.fixed_low < r.effect < r.fixed_high < r.high  # the sequence is wider
    assert r.decision == "switch" and r.verdict.startswith("the model's hand-offs win 5.0 more")
    rules, model = r.arms
    assert (rules.arm, rules.leads, rules.wins, rules.wins_per_100) == ("rules", 3000, 300, 10.0)
    assert (model.matured, model.wins, model.revenue_per_lead) == (3000, 450, 150.0)
    assert rules.handoff_rate == pytest.approx(model.handoff_rate, abs=0.01)
    out = r.as_json()
    assert {"effect", "low", "high"} <= out.keys() and out["arms"]["model"]["wins"] == 450
    # the order of the leads does not change a thing
    order = np.random.default_rng(0).permutation(6000)
    shuffled = Outcomes(*(getattr(data, f)[order] for f in data.__dataclass_fields__))
    again = read_out(_experiment(), shuffled, AS_OF)
    assert (again.effect, again.low, again.high) == (r.effect, r.low, r.high)


def test_an_a_a_experiment_finds_no_difference():
    r = read_out(_experiment(aa=True), _outcomes(2000, 240, 240), AS_OF)
    assert r.effect == 0.0 and r.low < 0 < r.high
    assert r.decision == "no difference"


def test_the_rules_doing_better_and_not_yet_sure():
    worse = read_out(_experiment(), _outcomes(3000, 240, 390), AS_OF)
    assert worse.decision == "keep the rules" and "fewer deals per 100 leads" in worse.verdict
    small = read_out(_experiment(), _outcomes(300, 33, 30), AS_OF)
    assert small.decision == "not yet sure" and small.low < small.effect < small.high
    assert small.weeks_to_go > 0 and "more weeks to tell a difference of 1" in small.verdict
    stopped = read_out(
        _experiment(stopped_us=START + 50 * US_PER_DAY), _outcomes(300, 33, 30), AS_OF
    )
    assert "its intake has stopped" in stopped.verdict and stopped.weeks_to_go is None


def test_weeks_to_go_counts_the_horizon_of_the_last_lead_needed():
    r = read_out(_experiment(), _outcomes(300, 33, 30), AS_OF, detect=2.0)
    # the needed leads are not all assigned yet: at least the 90-day horizon after them
    assert r.weeks_to_go >= 90 / 7
    assert verdict_of(0.5, -1.0, 2.0, False, 1.0, 0.0)[1].endswith("would show by now")


def test_a_readout_before_any_lead_has_matured_is_refused():
    data = _outcomes(100, 10, 10)
    young = Outcomes(**{**data.__dict__, "matured": np.zeros(200, dtype=bool)})
    with pytest.raises(LeadscoreError, match="no matured lead in either arm yet.*first matures at"):
        read_out(_experiment(), young, AS_OF)
    one_arm = Outcomes(**{**data.__dict__, "matured": data.model})
    with pytest.raises(LeadscoreError, match="in one arm yet"):
        read_out(_experiment(), one_arm, AS_OF)
    empty = Outcomes(*(np.zeros(0, dtype=v.dtype) for v in data.__dict__.values()))
    with pytest.raises(LeadscoreError, match="no lead created since it started"):
        read_out(_experiment(), empty, AS_OF)


def test_the_page_and_its_json(tmp_path):
    # a readout at a time with microseconds: the weekly reads' times differ in format
    r = read_out(_experiment(), _outcomes(3000, 450, 300), AS_OF + pd.Timedelta(microseconds=7))
    page, side = write_report(r, tmp_path / "exp.html")
    html = page.read_text()
    assert 'data-decision="switch"' in html and 'data-section="arms"' in html
    assert "anytime-valid" in html and "fixed-horizon" in html and "<svg" in html
    doc = json.loads(side.read_text())
    assert doc["effect"] == pytest.approx(5.0) and doc["low"] < 5.0 < doc["high"]


def test_a_readout_of_a_day_before_the_stop_sees_the_experiment_running():
    stop = START + 200 * US_PER_DAY
    early = pd.Timestamp(START + 150 * US_PER_DAY, unit="us", tz="UTC")
    data = _outcomes(300, 33, 30, days=100.0)
    r = read_out(_experiment(stopped_us=stop), data, early)
    assert r.leads_per_week > 0 and r.weeks_to_go is not None
    assert "intake has stopped" not in r.verdict


def test_the_weekly_path_ends_with_the_readout_and_every_read_holds_its_estimate():
    r = read_out(_experiment(), _outcomes(3000, 450, 300, days=100.0), AS_OF)
    path = r.path
    assert len(path) > 10 and path[-1]["at"] == AS_OF.isoformat()
    assert (path[-1]["effect"], path[-1]["low"]) == (r.effect, r.low)
    assert all(p["low"] <= p["effect"] <= p["high"] for p in path)
    assert [p["matured"] for p in path] == sorted(p["matured"] for p in path)


def test_unmatched_hand_off_rates_and_a_lopsided_split_are_warned_of():
    data = _outcomes(3000, 450, 300)
    assert read_out(_experiment(), data, AS_OF).warnings == []  # 20 % in both arms
    more = Outcomes(
        **{**data.__dict__, "handed_off": data.handed_off | (data.model & (data.won == 1))}
    )
    (warned,) = read_out(_experiment(), more, AS_OF).warnings
    assert warned.startswith("the arms' hand-off rates differ: model")
    lopsided = read_out(_experiment(share=0.3), data, AS_OF).warnings
    assert any("are leads missing from the export?" in w for w in lopsided)
