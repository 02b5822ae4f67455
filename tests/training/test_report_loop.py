"""The marketing report on a CRM with sales' lead status: the funnel's accepted stage and the
hand-off loop's tables (the same as `leadscore kpis`)."""

from __future__ import annotations

import pytest

from leadscore.jobs.loop import LoopRequest, kpis
from leadscore.rules.config import load_rules
from leadscore.training.report import compare
from leadscore.training.report_page import write_report
from tests.training.conftest import FAST
from tests.training.test_report import _num, _table


@pytest.fixture(scope="module")
def with_status(status_sim, status_sim_path, small_set, trained, tmp_path_factory):
    comp = compare(
        status_sim,
        trained.scorer,
        load_rules("conf/rules.yaml"),
        FAST,
        training_set=small_set[0],  # the same leads, activities and deals as small_sim
        bootstrap=20,
        learned=False,
    )
    costs = tmp_path_factory.mktemp("costs") / "costs.csv"
    costs.write_text("source,period_start,period_end,spend\nwebsite,2025-01-01,2026-06-30,80000\n")
    comp.loop = kpis(
        LoopRequest(data=status_sim_path, costs=costs), dataset=status_sim, scorer=trained.scorer
    )
    html_path, _ = write_report(comp, tmp_path_factory.mktemp("loop") / "compare.html")
    return comp, html_path.read_text()


def test_the_funnel_gains_the_accepted_stage(with_status):
    comp, html = with_status
    funnel = _table(html, "funnel").set_index("source")
    assert {"lead to accepted", "mql to accepted", "accepted to opportunity"} <= set(funnel.columns)
    per_lead = comp.rows.groupby("lead_id")["accepted"].max()
    assert _num(funnel.loc["all sources", "lead to accepted"]) == pytest.approx(
        per_lead.mean(), abs=5e-4
    )
    assert "lead &rarr; MQL &rarr; accepted &rarr; opportunity" in html


def test_the_loop_tables_are_those_of_kpis(with_status):
    comp, html = with_status
    shown = _table(html, "loop").set_index("source")
    table = comp.loop.table.set_index("source")
    for source in ("website", "partner", "all"):
        rate = table.loc[source, "acceptance_rate"]
        assert shown.loc[source, "accepted"].startswith(f"{rate:.1%} (")
    assert (
        _table(html, "rejections_by_reason")["rejected"].map(_num).sum()
        == (comp.loop.loop.facts["decision"] == "rejected").sum()
    )
    assert comp.loop.rejections.findings[0] in html.replace("&#39;", "'")
    # with costs: what each lever's leads cost, absent where no spend is known
    assert _num(shown.loc["website", "cost per lead"]) > 0
    assert shown.loc["partner", "cost per lead"] == "–"


def test_a_crm_without_status_has_no_loop_section_nor_accepted_stage(
    small_sim, small_set, trained, tmp_path
):
    comp = compare(
        small_sim,
        trained.scorer,
        None,
        FAST,
        training_set=small_set[0],
        bootstrap=20,
        learned=False,
    )
    assert "accepted" not in comp.rows and "lead_to_accepted" not in comp.funnel
    html_path, _ = write_report(comp, tmp_path / "compare.html")
    assert "id='loop'" not in html_path.read_text()
