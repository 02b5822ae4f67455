"""Hand-off events: which leads, their triggers, their stable ids, and their reasons as the
scoring call gave them (delivery: test_delivery.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import to_us
from leadscore.handoff.events import HandoffLine, crossing_id, handoff_events, summarize

SECRET = "s3cret-for-tests"


def _scores(rows):
    """A run's rows: (lead_id, grade, mql) plus the columns an event reads."""
    frame = pd.DataFrame(rows, columns=["lead_id", "grade", "mql"])
    n = len(frame)
    return frame.assign(
        as_of=pd.Timestamp("2026-06-01", tz="UTC"),
        probability=0.5,
        score=50,
        rule_score=pd.array([40] * n, dtype="Int64"),
        rule_grade="B",
        mql=pd.array(frame["mql"], dtype="boolean"),
        reasons_up="Visited pricing 3 times; Industry: software",
        reasons_down="",
        model_name="lead-scoring",
        model_version="3",
        trend="steady",
    )


def _reasons(scores):
    """The run's reasons as the scoring call gives them: lists (a reason may hold '; ')."""
    n = len(scores)
    return {
        "reasons_up": [["Visited pricing 3 times", "Industry: software; services"]] * n,
        "reasons_down": [[]] * n,
    }


def _handoffs(scores, previous, line=None):
    args = (scores, previous) if line is None else (scores, previous, line)
    return handoff_events(*args, reasons=_reasons(scores))


def test_crossings_and_grade_changes_against_each_leads_last_score():
    previous = pd.DataFrame(
        [("a", "B", False), ("b", "A", False), ("c", "C", True), ("d", "C", False)],
        columns=["lead_id", "grade", "mql"],
    )
    now = _scores(
        [
            ("a", "A", False),  # crossed (grade A) and changed grade
            ("b", "A", False),  # was above, still above: nothing
            ("c", "C", True),  # MQL both times: nothing
            ("d", "C", True),  # became an MQL: crossed
            ("e", "B", False),  # new, below the line: nothing
            ("f", "A", False),  # new, above: handed off
            ("g", "D", None),  # new, no rules: nothing
        ]
    )
    events = {e["lead_id"]: e for e in _handoffs(now, previous)}
    assert set(events) == {"a", "d", "f"}
    assert events["a"]["triggers"] == ["crossed_handoff_line", "grade_changed"]
    assert events["a"]["previous_grade"] == "B" and events["f"]["previous_grade"] is None
    assert events["d"]["type"] == "lead.handoff"
    assert events["a"]["reasons_up"] == ["Visited pricing 3 times", "Industry: software; services"]
    assert events["a"]["reasons_down"] == []
    assert summarize(events.values()) == {
        "crossed_handoff_line": 3,
        "review": 0,
        "grade_up": 1,
        "grade_down": 0,
    }

    # Grades only: the MQL flag no longer counts; a grade drop is an event of its own.
    line = HandoffLine(mql=False, grades="AB")
    graded = {e["lead_id"]: e for e in _handoffs(now, previous, line)}
    assert set(graded) == {"a", "e", "f"}
    assert graded["a"]["triggers"] == ["grade_changed"]  # B was already above A-or-B
    assert graded["e"]["type"] == "lead.handoff"
    # Ids: stable for the same run; a grade change's differs for another model version, a
    # crossing's is the crossing's (the lead and its last score below the line), whoever saw it.
    again = _handoffs(now, previous, line)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in graded.values()]
    other = {
        e["lead_id"]: e["event_id"]
        for e in _handoffs(now.assign(model_version="4"), previous, line)
    }
    assert other["a"] != graded["a"]["event_id"]  # a grade change
    assert other["e"] == graded["e"]["event_id"] == crossing_id("e", None)


def test_a_crossing_is_named_by_the_last_score_below_the_line():
    when = pd.Timestamp("2026-05-01T08:00:00", tz="UTC")
    previous = pd.DataFrame(
        [("a", "B", False, when), ("b", "C", False, when + pd.Timedelta(days=1))],
        columns=["lead_id", "grade", "mql", "as_of"],
    )
    now = _scores([("a", "A", False), ("b", "A", False)])
    ids = {e["lead_id"]: e["event_id"] for e in _handoffs(now, previous)}
    assert ids["a"] == crossing_id("a", to_us(when))
    assert ids["b"] == crossing_id("b", to_us(when + pd.Timedelta(days=1)))
    later = _handoffs(now.assign(as_of=pd.Timestamp("2026-07-01", tz="UTC")), previous)
    assert {e["event_id"] for e in later} == set(ids.values())  # the same crossings


def test_a_bad_line_is_refused():
    with pytest.raises(LeadscoreError, match="E not in A-D"):
        HandoffLine(grades="AE")
    with pytest.raises(LeadscoreError, match="needs the MQL flag or at least one grade"):
        HandoffLine(mql=False, grades="")


def _events(n: int, as_of="2026-06-01"):
    """n first crossings (new leads above the line), leads named by the day: a lead's first
    crossing has one id whatever the day (`crossing_id`)."""
    rows = [(f"L{i}-{as_of}", "A", True) for i in range(n)]
    return _handoffs(_scores(rows).assign(as_of=pd.Timestamp(as_of, tz="UTC")), pd.DataFrame())


def test_a_crossing_with_too_wide_an_interval_goes_to_review_under_the_same_id():
    """`review` (the Venn-Abers interval wider than the model's review width) turns the
    hand-off into a review event: same crossing, same id, the interval in the body."""
    now = _scores([("a", "A", False), ("b", "A", False)]).assign(
        p_low=[0.45, 0.20], p_high=[0.55, 0.70], review=[False, True]
    )
    events = {e["lead_id"]: e for e in _handoffs(now, pd.DataFrame())}
    assert events["a"]["type"] == "lead.handoff" and events["b"]["type"] == "lead.review"
    assert events["b"]["review"] is True and events["b"]["p_high"] == 0.70
    assert events["b"]["event_id"] == crossing_id("b", None)
    assert summarize(events.values())["review"] == 1
    # A scores file of a model without intervals: no review, empty interval.
    plain = {e["lead_id"]: e for e in _handoffs(_scores([("c", "A", False)]), pd.DataFrame())}
    assert plain["c"]["type"] == "lead.handoff" and plain["c"]["p_low"] is None
