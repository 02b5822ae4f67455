from __future__ import annotations

import pytest

from leadscore.handoff.kpis import lead_facts
from leadscore.handoff.rejections import analyse_rejections, scored_at


@pytest.fixture(scope="module")
def analysed(status_sim, trained):
    loop = lead_facts(status_sim)
    decided = loop.facts[loop.facts["decision"].notna()]
    scored = scored_at(status_sim, trained.scorer, decided["lead_id"], decided["decided_at"])
    return loop, scored, analyse_rejections(loop, scored, trained.scorer.spec.horizon_days)


def test_findings_come_first_and_name_levers_reasons_and_grades(analysed):
    _, _, rj = analysed
    assert rj.findings[0].startswith("sales rejected ") and "mostly '" in rj.findings[0]
    assert any("rejected grade-A leads" in f and "the model expected" in f for f in rj.findings)
    assert any(f.startswith("rejected leads won ") for f in rj.findings)


def test_tables_add_up(analysed):
    loop, _, rj = analysed
    facts = loop.facts
    rejected = facts[facts["decision"] == "rejected"]
    assert rj.by_reason["rejected"].sum() == len(rejected)
    overall = rj.by_lever.set_index("source").loc["all"]
    assert overall["rejected"] == len(rejected)
    assert (
        overall["rejection_rate_low"] <= overall["rejection_rate"] <= overall["rejection_rate_high"]
    )
    assert rj.by_grade["decided"].sum() == facts["decision"].notna().sum()
    # sales was wrong about these: every one was rejected first and won
    won_anyway = set(rj.won_anyway["lead_id"])
    assert won_anyway == set(rejected.loc[rejected["won"], "lead_id"]) and won_anyway


def test_expected_and_observed_wins_use_matured_decisions_only(analysed, status_sim):
    _, scored, rj = analysed
    groups = rj.groups.set_index("group")
    rejected = groups.loc["rejected"]
    assert 0 < rejected["matured"] < rejected["leads"]  # the recent ones are left out
    assert rejected["observed_wins"] <= rejected["won_by_data_end"]
    assert rejected["expected_wins"] == pytest.approx(
        scored.loc[
            scored["matured"]
            & scored["lead_id"].isin(
                lead_facts(status_sim).facts.query("decision == 'rejected'")["lead_id"]
            ),
            "probability",
        ].sum()
    )
    # the model scored each lead before sales decided: never at or after the decision
    facts = lead_facts(status_sim).facts.set_index("lead_id")
    assert (
        scored["as_of"].to_numpy() < facts.loc[scored["lead_id"], "decided_at"].to_numpy()
    ).all()


def test_without_a_model_the_grades_are_left_out_and_said(status_sim):
    rj = analyse_rejections(lead_facts(status_sim))
    assert rj.by_grade.empty and rj.groups.empty
    assert "no model given" in rj.notes[0]
    assert any("won all the same" in f for f in rj.findings)


def test_without_a_status_table_there_is_nothing_to_analyse(small_sim):
    rj = analyse_rejections(lead_facts(small_sim))
    assert rj.by_reason.empty and "no lead_status table" in rj.findings[0]
