from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm import DatasetError, load_dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.handoff.costs import COST_COLUMNS, load_costs, spend_between
from leadscore.handoff.kpis import ALL, kpi_table, lead_facts
from leadscore.handoff.sla import SlaConfig, first_touch_after, is_missed, sla_misses
from tests.conftest import write_dataset

# Website: L1 worked in 2 minutes, accepted, won; L2 worked in 3 hours, rejected; L5 came an
# hour before the data's end, not yet worked (its SLA is still open). Partner: L3 never
# worked; L4 worked after 2 days (SLA missed), accepted, lost.
LEADS = """\
lead_id,created_at,source
L1,2025-01-01T10:00:00Z,website
L2,2025-01-02T10:00:00Z,website
L3,2025-01-03T10:00:00Z,partner
L4,2025-01-04T10:00:00Z,partner
L5,2025-03-01T09:00:00Z,website
"""
ACTIVITIES = """\
lead_id,occurred_at,activity_type
L1,2025-01-01T10:02:00Z,call
L2,2025-01-02T13:00:00Z,sales_email
L4,2025-01-06T10:00:00Z,call
L1,2025-03-01T10:00:00Z,page_view
"""
DEALS = """\
deal_id,lead_id,created_at,closed_at,status,amount
D1,L1,2025-01-05,2025-02-01,won,1000
D4,L4,2025-01-07,2025-02-10,lost,500
"""
STATUS = """\
lead_id,changed_at,status,reason
L1,2025-01-01T10:02:00Z,Working - Contacted,
L1,2025-01-05T00:00:00Z,Qualified,
L2,2025-01-03T10:00:00Z,Unqualified,bad timing
L4,2025-01-07T00:00:00Z,OPEN_DEAL,
"""


@pytest.fixture
def loop_data(tmp_path):
    folder = write_dataset(
        tmp_path / "crm", leads=LEADS, activities=ACTIVITIES, deals=DEALS, lead_status=STATUS
    )
    return load_dataset(folder)


def test_the_four_kpis_per_lever_and_overall(loop_data):
    table = kpi_table(lead_facts(loop_data)).set_index("source")
    site, partner, both = table.loc["website"], table.loc["partner"], table.loc[ALL]
    assert (site["leads"], site["handoffs"], site["processing_rate"]) == (3, 3, 2 / 3)
    assert site["processing_within_sla"] == 1.0  # L5's window is still open: not counted
    assert (site["acceptance_rate"], site["opportunity_rate"], site["win_rate"]) == (
        0.5,
        1 / 3,
        1 / 3,
    )
    assert site["revenue"] == 1000
    assert (partner["processing_rate"], partner["processing_within_sla"]) == (0.5, 0.0)
    assert partner["acceptance_rate"] == 1.0 and partner["win_rate"] == 0.0
    # below the 80 % line, but two leads cannot tell for sure: the interval reaches it
    assert partner["below_processing_line"] and not partner["processing_line_sure"]
    assert (both["leads"], both["processing_rate"], both["acceptance_rate"]) == (5, 0.6, 2 / 3)
    for rate in ("processing_rate", "acceptance_rate", "opportunity_rate", "win_rate", "revenue"):
        finite = table[rate].notna()
        assert (table.loc[finite, f"{rate}_low"] <= table.loc[finite, rate]).all()
        assert (table.loc[finite, rate] <= table.loc[finite, f"{rate}_high"]).all()
    assert not set(COST_COLUMNS) & set(table.columns)  # no costs: absent, not zero


def test_kpis_by_month_and_a_window(loop_data):
    by_month = kpi_table(lead_facts(loop_data), by="month").set_index("month")
    assert list(by_month.index) == ["2025-01", "2025-03", ALL]
    assert by_month.loc["2025-01", "leads"] == 4
    january = lead_facts(loop_data, end=pd.Timestamp("2025-02-01", tz="UTC"))
    assert set(january.facts["lead_id"]) == {"L1", "L2", "L3", "L4"}
    with pytest.raises(LeadscoreError, match="no lead was created"):
        lead_facts(
            loop_data,
            start=pd.Timestamp("2030-01-01", tz="UTC"),
            end=pd.Timestamp("2031-01-01", tz="UTC"),
        )
    with pytest.raises(LeadscoreError, match="is not before"):
        lead_facts(loop_data, start=pd.Timestamp("2030-01-01", tz="UTC"))


def test_by_grade_needs_grades(loop_data):
    with pytest.raises(LeadscoreError, match="--by grade needs"):
        kpi_table(lead_facts(loop_data), by="grade")
    grades = pd.Series({"L1": "A", "L2": "A", "L3": "C", "L4": "B", "L5": "A"})
    table = kpi_table(lead_facts(loop_data, grades=grades), by="grade").set_index("grade")
    # grade A's SLA is 5 minutes: L1 kept it; L2 (worked after 3 hours) and L5 (not worked
    # an hour later, at the data's end) missed it
    assert table.loc["A", "processing_within_sla"] == pytest.approx(1 / 3)


def test_without_a_status_table_acceptance_is_unknown_not_zero(tmp_path):
    ds = load_dataset(
        write_dataset(tmp_path / "crm", leads=LEADS, activities=ACTIVITIES, deals=DEALS)
    )
    loop = lead_facts(ds)
    table = kpi_table(loop)
    assert table["acceptance_rate"].isna().all() and table["processing_rate"].notna().all()
    assert any("no lead_status table" in n for n in loop.notes)


def test_sla_misses_as_the_batch_and_the_stream_see_them(loop_data):
    facts = lead_facts(loop_data).facts
    handoffs = facts[["lead_id", "handed_off_at"]]
    touches = loop_data.activities[loop_data.activities["activity_type"] != "page_view"]
    first = first_touch_after(handoffs, touches, loop_data.lead_status)
    now = loop_data.data_end
    missed = sla_misses(handoffs, first, now, SlaConfig())
    assert list(missed["lead_id"]) == ["L3", "L4"]  # most overdue first
    assert list(missed["touched_late"]) == [False, True]
    assert missed.loc[1, "late_minutes"] == pd.Timedelta(days=1) / pd.Timedelta(minutes=1)
    # grade A has 5 minutes: L2's touch after 3 hours is a miss too
    graded = handoffs.assign(grade=["B", "A", "B", "B", "B"])
    assert "L2" in set(sla_misses(graded, first, now, SlaConfig())["lead_id"])
    # one lead at a time, as the stream will ask: not missed before the time is up
    at = pd.Timestamp("2025-01-03T10:00:00Z")
    assert not is_missed(at, "B", None, at + pd.Timedelta(hours=23), SlaConfig())
    assert is_missed(at, "B", None, at + pd.Timedelta(days=1), SlaConfig())
    assert not is_missed(
        at, "A", at + pd.Timedelta(minutes=4), at + pd.Timedelta(days=9), SlaConfig()
    )


def test_a_bad_sla_names_the_setting():
    with pytest.raises(LeadscoreError, match="not a duration"):
        SlaConfig(otherwise="soon")
    with pytest.raises(ValueError, match="grade 'E'"):
        SlaConfig(by_grade={"E": "5m"})


COSTS = """\
source,period_start,period_end,spend
website,2025-01-01,2025-01-10,1000
"""


def test_costs_are_spread_over_their_days_and_absent_where_unknown(loop_data, tmp_path):
    (tmp_path / "costs.csv").write_text(COSTS)
    costs = load_costs(tmp_path / "costs.csv")
    half = spend_between(
        costs, "website", pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2025-01-06", tz="UTC")
    )
    assert half == pytest.approx(500)
    assert np.isnan(
        spend_between(
            costs,
            "partner",
            pd.Timestamp("2025-01-01", tz="UTC"),
            pd.Timestamp("2025-02-01", tz="UTC"),
        )
    )
    table = kpi_table(lead_facts(loop_data), costs=costs).set_index("source")
    site = table.loc["website"]
    assert site["spend"] == pytest.approx(
        1000 * 9.0 / 10 + 1000 * (14 / 24) / 10
    )  # from L1's creation at 10:00
    assert site["cost_per_lead"] == pytest.approx(site["spend"] / 3)
    assert site["cost_per_won"] == pytest.approx(site["spend"])
    assert site["revenue_over_spend"] == pytest.approx(1000 / site["spend"])
    assert np.isnan(table.loc["partner", "spend"]) and np.isnan(
        table.loc["partner", "cost_per_lead"]
    )


def test_costs_in_yaml_read_the_same(tmp_path):
    (tmp_path / "costs.yaml").write_text(
        "costs:\n  - {source: website, period_start: 2025-01-01, period_end: 2025-01-10, spend: 1000}\n"
    )
    (tmp_path / "costs.csv").write_text(COSTS)
    pd.testing.assert_frame_equal(
        load_costs(tmp_path / "costs.yaml"), load_costs(tmp_path / "costs.csv")
    )


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        ("website,2025-01-01,2025-01-10,-5", "spend", "negative spend"),
        ("website,2025-01-10,2025-01-01,5", "period_end", "period_end before period_start"),
        (",2025-01-01,2025-01-10,5", "source", "empty source"),
        ("website,someday,2025-01-10,5", "period_start", ""),
    ],
)
def test_a_bad_cost_row_names_file_column_and_row(tmp_path, row, column, problem):
    (tmp_path / "costs.csv").write_text(COSTS + row + "\n")
    with pytest.raises(DatasetError) as info:
        load_costs(tmp_path / "costs.csv")
    assert (info.value.file, info.value.column, info.value.rows) == ("costs.csv", column, [2])
    assert problem in str(info.value)


def test_a_flat_export_has_no_loop(tmp_path):
    leads = "lead_id,created_at,source,Converted\nL1,2025-01-01,web,1\nL2,2025-01-02,web,0\n"
    ds = load_dataset(
        write_dataset(tmp_path / "flat", leads=leads, dataset="label: {column: Converted}\n")
    )
    with pytest.raises(LeadscoreError, match="needs a history"):
        lead_facts(ds)
