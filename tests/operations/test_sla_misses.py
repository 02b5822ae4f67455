from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm import load_dataset
from leadscore.handoff.events import HandoffLine
from leadscore.handoff.sla import SlaConfig
from leadscore.jobs import Recorded, ScoreRequest, score
from leadscore.jobs.loop import LoopRequest, handoff_times, kpis
from leadscore.operations.sla_misses import batch_sla_misses
from tests.conftest import write_dataset

LEADS = """\
lead_id,created_at,source
L1,2025-01-01T08:00:00Z,website
L2,2025-01-01T08:00:00Z,website
L3,2025-01-01T08:00:00Z,partner
"""
# L1 called 3 minutes after its hand-off; L2 e-mailed 2 hours after it; L3 called on day 3.
ACTIVITIES = """\
lead_id,occurred_at,activity_type
L1,2025-01-02T09:03:00Z,call
L2,2025-01-02T11:00:00Z,sales_email
L3,2025-01-04T12:00:00Z,call
"""
HISTORY = pd.DataFrame(
    {
        "lead_id": ["L1", "L2", "L3", "L1", "L2", "L3"],
        "as_of": pd.to_datetime(["2025-01-01T09:00Z"] * 3 + ["2025-01-02T09:00Z"] * 3),
        "grade": ["B", "B", "B", "A", "A", "B"],
        "mql": [False, False, False, False, False, True],
    }
)


@pytest.fixture
def crm(tmp_path):
    return load_dataset(write_dataset(tmp_path / "crm", leads=LEADS, activities=ACTIVITIES))


def test_the_daily_run_finds_the_hand_offs_that_missed_the_sla(crm):
    line = HandoffLine()  # MQL or grade A
    day3 = pd.Timestamp("2025-01-03T10:00:00Z")
    missed = batch_sla_misses(crm, HISTORY, line, day3, SlaConfig())
    # L1 (grade A) was touched within 5 minutes; L2 (grade A) after 2 hours: missed; L3
    # (an MQL of grade B, a day to go) was due on day 3 at 09:00 and is still untouched.
    assert list(missed["lead_id"]) == ["L2", "L3"]  # most overdue first
    by_lead = missed.set_index("lead_id")
    assert by_lead.loc["L2", "touched_late"] and not by_lead.loc["L3", "touched_late"]
    assert by_lead.loc["L3", "new"] and not by_lead.loc["L2", "new"]
    assert by_lead.loc["L3", "due_at"] == pd.Timestamp("2025-01-03T09:00:00Z")


def test_what_happens_after_the_run_is_not_known_to_it(crm):
    line = HandoffLine()
    day2 = pd.Timestamp("2025-01-02T10:00:00Z")
    missed = batch_sla_misses(crm, HISTORY, line, day2, SlaConfig())
    # at 10:00 on day 2, L2's e-mail (11:00) has not happened: missed, not touched yet;
    # L3's day is still running: not a miss yet
    assert list(missed["lead_id"]) == ["L2"] and not missed["touched_late"].iloc[0]
    assert batch_sla_misses(crm, HISTORY.iloc[:0], line, day2, SlaConfig()).empty


def test_the_score_job_reports_its_sla_misses(tmp_path, status_sim_path, ruled, trained):
    folder = ruled.save(tmp_path / "scorer")
    when = trained.test["as_of"].max()
    history = str(tmp_path / "history.duckdb")
    for day in (when - pd.Timedelta(days=1), when):
        done = score(
            ScoreRequest(data=status_sim_path, out=tmp_path / f"s{day.day}.parquet",
                         model=str(folder), as_of=day.isoformat(), history=history,
                         reasons=False, sla_otherwise="1h"),
            Recorded(),
        )  # fmt: skip
    missed = done.sla_misses
    assert {"lead_id", "due_at", "late_minutes", "touched_late", "new"} <= set(missed.columns)
    assert len(missed) and (missed["due_at"] <= when).all() and (missed["late_minutes"] >= 0).all()

    # the same history gives `kpis` its hand-offs: each lead's first score above the line
    handoffs = handoff_times(history, "A", True)
    result = kpis(LoopRequest(data=status_sim_path, history=history))
    overall = result.table.set_index("source").loc["all"]
    assert overall["handoffs"] == handoffs["lead_id"].nunique() < overall["leads"]
    assert "score history" in result.loop.handoffs_from
    by_grade = kpis(LoopRequest(data=status_sim_path, history=history), by="grade").table
    assert set(by_grade["grade"]) <= {"A", "B", "C", "D", "all"}


def test_a_lead_sales_was_already_working_keeps_its_sla(tmp_path):
    leads = LEADS + "L4,2024-12-01T08:00:00Z,partner\nL5,2024-12-01T08:00:00Z,partner\n"
    # L4 was called 2 days before its hand-off (sales is on it), L5 12 days before (gone cold)
    acts = ACTIVITIES + "L4,2024-12-31T09:00:00Z,call\nL5,2024-12-21T09:00:00Z,call\n"
    crm = load_dataset(write_dataset(tmp_path / "crm", leads=leads, activities=acts))
    history = pd.DataFrame(
        {
            "lead_id": ["L4", "L5"],
            "as_of": pd.to_datetime(["2025-01-02T09:00Z"] * 2),
            "grade": ["B", "B"],
            "mql": [True, True],
        }
    )
    missed = batch_sla_misses(
        crm, history, HandoffLine(), pd.Timestamp("2025-01-04T00:00Z"), SlaConfig()
    )
    assert list(missed["lead_id"]) == ["L5"]
