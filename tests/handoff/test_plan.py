from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.handoff.kpis import lead_facts
from leadscore.handoff.plan import make_plan


@pytest.fixture(scope="module")
def loop(status_sim):
    return lead_facts(status_sim, end=status_sim.data_end - pd.Timedelta(days=90))


@pytest.mark.parametrize("wins", [1, 37, 250])
def test_leads_needed_times_lead_to_won_sums_to_the_target(loop, wins):
    plan = make_plan(loop, wins, 90)
    for mix in (plan.levers, plan.fewest):
        assert (mix["leads_needed"] * mix["lead_to_won"]).sum() == pytest.approx(wins)
    assert plan.fewest["leads_needed"].sum() <= plan.levers["leads_needed"].sum()
    t = plan.totals
    assert t["leads_needed_low"] <= t["leads_needed"] <= t["leads_needed_high"]
    assert t["shortfall_wins"] == pytest.approx(max(0.0, wins - t["run_rate_wins"]))


def test_todays_mix_keeps_each_levers_share_and_the_stages_shrink(loop):
    plan = make_plan(loop, 100, 90)
    levers = plan.levers
    share = levers["leads"] / levers["leads"].sum()
    assert (levers["leads_needed"] / levers["leads_needed"].sum()).to_numpy() == pytest.approx(
        share.to_numpy()
    )
    assert (levers["handoffs_needed"] <= levers["leads_needed"] + 1e-9).all()
    assert (levers["opportunities_needed"] <= levers["handoffs_needed"] + 1e-9).all()
    assert (levers["accepted_needed"] <= levers["handoffs_needed"] + 1e-9).all()


def test_the_fewest_leads_mix_fills_the_best_levers_up_to_their_cap(loop):
    plan = make_plan(loop, 60, 90, max_growth=1.5)
    f = plan.fewest.sort_values("lead_to_won", ascending=False)
    cap = 1.5 * plan.levers.set_index("source")["run_rate_leads"]
    used = f[f["leads_needed"] > 0]
    assert (used["leads_needed"].to_numpy() <= cap[used["source"]].to_numpy() + 1e-6).all()
    # the best levers are used first: a worse lever is only used once the better are full
    best = f.iloc[0]
    assert best["leads_needed"] == pytest.approx(cap[best["source"]])


def test_a_target_beyond_every_cap_is_said(loop):
    plan = make_plan(loop, 10_000, 30, max_growth=1.0)
    assert plan.notes and "out of reach" in plan.notes[0]
    assert (plan.fewest["leads_needed"] * plan.fewest["lead_to_won"]).sum() == pytest.approx(10_000)


def test_a_plan_needs_a_target_and_a_win(loop):
    from dataclasses import replace

    with pytest.raises(LeadscoreError, match="above 0"):
        make_plan(loop, 0, 90)
    early = replace(loop, facts=loop.facts.assign(won=False))  # a window with no win
    with pytest.raises(LeadscoreError, match="no rate to plan from"):
        make_plan(early, 10, 90)


def test_with_costs_the_plan_has_a_budget_and_without_none(loop, tmp_path):
    from leadscore.handoff.costs import load_costs

    (tmp_path / "costs.csv").write_text(
        "source,period_start,period_end,spend\nwebsite,2024-01-01,2027-12-31,100000\n"
        "partner,2024-01-01,2027-12-31,50000\n"
    )
    plan = make_plan(loop, 50, 90, costs=load_costs(tmp_path / "costs.csv"))
    levers = plan.levers.set_index("source")
    site = levers.loc["website"]
    assert site["budget"] == pytest.approx(site["leads_needed"] * site["cost_per_lead"])
    assert pd.isna(levers.loc["social", "budget"])  # no spend row: unknown, not zero
    assert plan.totals["budget"] == pytest.approx(levers["budget"].sum())
    assert any("no spend for" in n for n in plan.notes)
    bare = make_plan(loop, 50, 90)
    assert "budget" not in bare.totals and "budget" not in bare.levers
