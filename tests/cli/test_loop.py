from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from tests.conftest import LEADS, write_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def scorer_folder(trained, tmp_path_factory):
    return trained.scorer.save(tmp_path_factory.mktemp("loop-scorer") / "scorer")


def test_kpis_json_has_one_row_per_lever_with_the_four_rates(
    status_sim_path, scorer_folder, tmp_path
):
    costs = tmp_path / "costs.csv"
    costs.write_text("source,period_start,period_end,spend\nwebsite,2025-01-01,2026-06-30,50000\n")
    result = runner.invoke(
        app,
        [
            "kpis",
            "--data",
            str(status_sim_path),
            "--model",
            str(scorer_folder),
            "--costs",
            str(costs),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    rows = body["rows"]
    assert {r["source"] for r in rows} >= {"website", "partner", "trade_show"}
    for row in rows:
        for key in ("source", "processing_rate", "acceptance_rate", "opportunity_rate", "win_rate"):
            assert key in row
        assert (
            0 <= row["acceptance_rate_low"] <= row["acceptance_rate"] <= row["acceptance_rate_high"]
        )
    assert body["overall"]["leads"] == sum(r["leads"] for r in rows)
    website = next(r for r in rows if r["source"] == "website")
    partner = next(r for r in rows if r["source"] == "partner")
    assert website["cost_per_lead"] > 0 and partner["cost_per_lead"] is None  # no spend: unknown
    assert body["rejections"]["findings"][0].startswith("sales rejected")
    assert body["rejections"]["by_grade"]


def test_kpis_prints_the_processing_line_and_the_rejections(status_sim_path):
    result = runner.invoke(app, ["kpis", "--data", str(status_sim_path), "--sla", "1h"])
    assert result.exit_code == 0, result.output
    assert "hand-offs: every lead, at its creation" in result.output
    assert "rejected leads" in result.output and "- sales rejected" in result.output
    assert "SLA grade A: 5m, otherwise: 1h" in result.output


def test_plan_json_levers_sum_to_the_target(status_sim_path):
    result = runner.invoke(app, ["plan", "--data", str(status_sim_path), "--wins", "120", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    for levers in (body["levers"], body["fewest_leads"]["levers"]):
        assert sum(r["leads_needed"] * r["lead_to_won"] for r in levers) == pytest.approx(120)
        assert all({"source", "leads_needed", "lead_to_won"} <= set(r) for r in levers)
    assert "budget" not in body["totals"] and "budget" not in body["levers"][0]
    assert "90 days before the data's end" in body["notes"][0]


def test_a_bad_status_row_is_one_line_naming_file_column_and_row(tmp_path):
    folder = write_dataset(
        tmp_path / "crm",
        leads=LEADS,
        lead_status="lead_id,changed_at,status,reason\nL1,2025-01-02,Working,too busy\n",
    )
    result = runner.invoke(app, ["kpis", "--data", str(folder)])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in result.output
    assert line.startswith("error: lead_status.csv, column 'reason', row 1: a reason on a status")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["plan", "--wins", "10", "--period", "90"], "give a unit"),
        (["kpis", "--sla", "soon"], "--sla 'soon': not a duration"),
        (["kpis", "--by", "grade"], "--by grade needs"),
    ],
)
def test_option_mistakes_are_one_line(status_sim_path, args, said):
    result = runner.invoke(app, [args[0], "--data", str(status_sim_path), *args[1:]])
    assert result.exit_code == 1 and said in result.output


def test_a_lever_below_the_processing_line_is_flagged_first(tmp_path):
    from tests.handoff.test_kpis import ACTIVITIES, DEALS, STATUS
    from tests.handoff.test_kpis import LEADS as LOOP_LEADS

    folder = write_dataset(
        tmp_path / "crm", leads=LOOP_LEADS, activities=ACTIVITIES, deals=DEALS, lead_status=STATUS
    )
    result = runner.invoke(app, ["kpis", "--data", str(folder)], terminal_width=250)
    assert result.exit_code == 0, result.output
    flagged = [line for line in result.output.splitlines() if "below the 80% line" in line]
    assert any(
        line.startswith("source partner: sales worked 50% of its hand-offs") for line in flagged
    )
    assert "(the interval reaches the line)" in flagged[0]
