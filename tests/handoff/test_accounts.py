"""The account hand-off line: crossings against the previous run, one id per crossing."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.handoff.accounts import AccountLine, account_events
from leadscore.scoring.score_row import ACCOUNT_COLUMNS

NOW = pd.Timestamp("2025-06-02", tz="UTC")
BEFORE = pd.Timestamp("2025-06-01", tz="UTC")


def scores(grades, review=None):
    n = len(grades)
    frame = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "as_of": [NOW] * n,
            "probability": [0.5] * n,
            "score": [50] * n,
            "grade": grades,
            "p_low": [0.45] * n,
            "p_high": [0.55] * n,
            "review": review or [False] * n,
            "contacts": [2] * n,
            "active_contacts": [1] * n,
            "reasons_up": [""] * n,
            "reasons_down": [""] * n,
            "model_name": ["m"] * n,
            "model_version": ["1"] * n,
        }
    )[ACCOUNT_COLUMNS]
    return frame, {"reasons_up": [["up"]] * n, "reasons_down": [[]] * n}


def test_crossings_against_the_previous_run():
    now, reasons = scores(["A", "A", "B", "A"], review=[False, False, False, True])
    previous = pd.DataFrame({"account_id": ["A0", "A1", "A2"], "grade": ["B", "A", "A"]})
    events = account_events(now, previous, BEFORE, AccountLine("A"), reasons=reasons)
    # A0 crossed; A1 stayed above; A2 fell; A3 is new and above, its interval too wide
    assert [e["account_id"] for e in events] == ["A0", "A3"]
    assert [e["type"] for e in events] == ["account.handoff", "account.review"]
    assert events[0]["reasons_up"] == ["up"]
    again = account_events(now, previous, BEFORE, AccountLine("A"), reasons=reasons)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]
    first = account_events(now, None, None, AccountLine("A"), reasons=reasons)  # no previous run
    assert len(first) == 3 and first[0]["event_id"] != events[0]["event_id"]


def test_no_line_no_events_and_bad_grades():
    frame, reasons = scores(["A"])
    assert account_events(frame, None, None, AccountLine(""), reasons=reasons) == []
    with pytest.raises(LeadscoreError, match="not in A-D"):
        AccountLine("AZ")
