"""Each arm's hand-off line: the model's matched to the rules' rate; leads outside the
experiment keep the ordinary line; one lead and many leads decide alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.experiment.assignment import MODEL, RULES, in_model_arm
from leadscore.experiment.policy import ExperimentLine, matched_line, per_lead_extremes
from leadscore.experiment.records import Experiment
from leadscore.handoff.events import HandoffLine

START = 1_700_000_000_000_000


def _experiment(**kw) -> Experiment:
    base = dict(name="exp-1", started_us=START, share=0.5, line=0.3, rules_rate=0.2,
                matched_leads=100, planned_leads=1000, horizon_days=90.0)  # fmt: skip
    return Experiment(**{**base, **kw})


def test_the_matched_line_hands_off_as_many_leads_as_the_rules():
    rng = np.random.default_rng(0)
    p = rng.beta(2, 8, 300)
    mql = rng.random(300) < 0.17
    m = matched_line(p, mql)
    assert m.rules_rate == pytest.approx(mql.mean())
    assert (p >= m.line).sum() == mql.sum()  # no ties: exactly as many
    assert m.model_rate == pytest.approx(m.rules_rate) and m.leads == 300
    # the row order does not move the line
    order = rng.permutation(300)
    assert matched_line(p[order], mql[order]).line == m.line


def test_tied_probabilities_go_together_and_never_beyond_the_nearer_share():
    p = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.1])
    mql = np.array([1, 1, 0, 0, 0, 0], dtype=bool)  # the rules hand off 2 of 6
    m = matched_line(p, mql)
    assert m.line == 0.9 and m.model_rate == pytest.approx(1 / 6)  # 1/6 is nearer than 4/6
    assert matched_line(p, np.zeros(6, dtype=bool)).model_rate == 0.0
    with pytest.raises(LeadscoreError, match="no scored leads"):
        matched_line(np.zeros(0), np.zeros(0, dtype=bool))


def test_per_lead_extremes_take_each_lead_s_highest_score_and_any_mql():
    history = pd.DataFrame(
        {"lead_id": ["a", "a", "b"], "probability": [0.1, 0.4, 0.2],
         "mql": pd.array([False, True, None], dtype="boolean")}
    )  # fmt: skip
    p, mql = per_lead_extremes(history)
    assert p.tolist() == [0.4, 0.2] and mql.tolist() == [True, False]


def test_each_arm_decides_by_its_own_policy_and_outsiders_by_the_line():
    ids = [f"L{i}" for i in range(200)]
    created = pd.Series([START - 1] * 50 + [START + 10] * 150, index=ids)  # 50 before it
    rng = np.random.default_rng(1)
    rows = pd.DataFrame(
        {"lead_id": ids, "probability": rng.random(200),
         "grade": rng.choice(list("ABCD"), 200), "mql": rng.random(200) < 0.3}
    )  # fmt: skip
    base = HandoffLine()
    line = ExperimentLine(base, [_experiment()], created)
    above = line.above_rows(rows)
    model = in_model_arm("exp-1", ids, 0.5)
    inside = np.arange(200) >= 50
    expected = np.where(
        inside,
        np.where(model, rows["probability"] >= 0.3, rows["mql"]),
        base.above_rows(rows),
    )
    assert np.array_equal(above, expected)
    # one lead at a time (the stream) decides as the batch does, and names its arm
    for i in range(200):
        one = line.for_lead(ids[i], int(created.iloc[i]))
        r = rows.iloc[i]
        assert one.above_one(r["grade"], r["mql"], r["probability"]) == above[i]
        fields = one.arm_fields(ids[i])
        assert fields == line.arm_fields(ids[i])
        if inside[i]:
            assert fields == {"experiment": "exp-1", "arm": MODEL if model[i] else RULES}
        else:
            assert fields == {"experiment": None, "arm": None}


def test_an_a_a_experiment_hands_off_by_the_rules_in_both_arms():
    ids = [f"L{i}" for i in range(100)]
    created = pd.Series([START] * 100, index=ids)
    rows = pd.DataFrame({"lead_id": ids, "probability": np.linspace(0, 1, 100),
                         "grade": "D", "mql": np.arange(100) % 3 == 0})  # fmt: skip
    line = ExperimentLine(HandoffLine(), [_experiment(aa=True)], created)
    assert np.array_equal(line.above_rows(rows), rows["mql"].to_numpy())


def test_a_stopped_experiment_takes_no_new_leads_but_keeps_its_own():
    e = _experiment(stopped_us=START + 100)
    assert e.enrols(START) and e.enrols(START + 99)
    assert not e.enrols(START + 100) and not e.enrols(START - 1)
    line = ExperimentLine(HandoffLine(), [e])
    assert line.for_lead("x", START + 100).enrolled is None
    assert line.for_lead("x", START + 5).enrolled[0].name == "exp-1"
    with pytest.raises(LeadscoreError, match="creation time"):
        line.above_rows(pd.DataFrame({"lead_id": ["x"], "probability": [0.5],
                                      "grade": ["A"], "mql": [True]}))  # fmt: skip


def test_the_history_shows_each_arm_s_hand_offs():
    from leadscore.experiment.policy import handed_off_in_history

    ids = [f"L{i}" for i in range(60)]
    model = in_model_arm("exp-1", ids, 0.5)
    history = pd.DataFrame(
        {"lead_id": ids * 2, "probability": [0.1] * 60 + [0.5] * 60,
         "mql": pd.array([False] * 60 + [i % 2 == 0 for i in range(60)], dtype="boolean")}
    )  # fmt: skip
    handed = handed_off_in_history(history, _experiment())
    expected = {i for i, m, k in zip(ids, model, range(60), strict=True) if m or k % 2 == 0}
    assert handed == expected
    aa = handed_off_in_history(history, _experiment(aa=True))
    assert aa == {i for k, i in enumerate(ids) if k % 2 == 0}
    assert handed_off_in_history(history.iloc[:0], _experiment()) == set()


def test_a_failed_re_read_keeps_the_last_experiments(monkeypatch):
    import leadscore.experiment.policy as policy

    calls = []

    def source():
        calls.append(1)
        if len(calls) > 1:
            raise LeadscoreError("store down")
        return [_experiment()]

    line = ExperimentLine(HandoffLine(), source)
    assert [e.name for e in line.experiments] == ["exp-1"]
    assert [e.name for e in line.experiments] == ["exp-1"] and len(calls) == 1  # cached
    line.refresh()
    assert len(calls) == 1  # not stale yet
    monkeypatch.setattr(policy, "REFRESH_S", 0.0)  # stale at once
    line.refresh()
    assert [e.name for e in line.experiments] == ["exp-1"] and len(calls) == 2
    never = ExperimentLine(HandoffLine(), lambda: (_ for _ in ()).throw(LeadscoreError("down")))
    with pytest.raises(LeadscoreError, match="down"):
        _ = never.experiments


def test_disagreements_are_scores_where_the_two_policies_differ():
    from leadscore.experiment.policy import disagreed

    history = pd.DataFrame(
        {"lead_id": ["a", "a", "b", "c", "d"], "probability": [0.1, 0.5, 0.5, 0.1, 0.2],
         "mql": pd.array([False, False, True, True, None], dtype="boolean")}
    )  # fmt: skip
    # line 0.3: a disagrees at its second score (model yes, rules no), c (rules yes, model
    # no); b agrees (both yes), d agrees (both no, no MQL flag)
    assert disagreed(history, _experiment()) == {"a", "c"}
    assert disagreed(history.iloc[:0], _experiment()) == set()
    with pytest.raises(LeadscoreError, match="experiment design 'x'"):
        _experiment(design="x")
