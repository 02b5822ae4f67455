"""Hand-off events: which leads, their triggers, their stable ids, and their reasons as the
scoring call gave them (delivery: test_delivery.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from crm.errors import LeadscoreError
from operations.events import HandoffLine, handoff_events, summarize

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
    assert summarize(events.values()) == {"crossed_handoff_line": 3, "grade_up": 1, "grade_down": 0}

    # Grades only: the MQL flag no longer counts; a grade drop is an event of its own.
    line = HandoffLine(mql=False, grades="AB")
    graded = {e["lead_id"]: e for e in _handoffs(now, previous, line)}
    assert set(graded) == {"a", "e", "f"}
    assert graded["a"]["triggers"] == ["grade_changed"]  # B was already above A-or-B
    assert graded["e"]["type"] == "lead.handoff"
    # Ids: stable for the same run, different for another model version.
    again = _handoffs(now, previous, line)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in graded.values()]
    other = _handoffs(now.assign(model_version="4"), previous, line)
    assert {e["event_id"] for e in other}.isdisjoint(e["event_id"] for e in again)


def test_a_bad_line_is_refused():
    with pytest.raises(LeadscoreError, match="E not in A-D"):
        HandoffLine(grades="AE")
    with pytest.raises(LeadscoreError, match="needs the MQL flag or at least one grade"):
        HandoffLine(mql=False, grades="")


def _events(n: int, as_of="2026-06-01"):
    rows = [(f"L{i}", "A", True) for i in range(n)]
    return _handoffs(_scores(rows).assign(as_of=pd.Timestamp(as_of, tz="UTC")), pd.DataFrame())
