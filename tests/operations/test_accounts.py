"""The account rows of a scoring run, and the crossings of the next run against them (the
line itself: tests/handoff/test_accounts.py)."""

from __future__ import annotations

import pandas as pd

from leadscore.handoff.accounts import AccountLine
from leadscore.operations.accounts import account_scores_path
from leadscore.scoring.score_row import ACCOUNT_COLUMNS


def test_the_account_rows_go_next_to_the_lead_rows(tmp_path):
    assert account_scores_path(tmp_path / "s.csv").name == "s.accounts.csv"
    assert account_scores_path(tmp_path / "runs").name == "runs_accounts"


def test_two_runs_on_a_dataset(account_sim, account_fit, ruled):
    """The account rows of a run, and the crossings of the next against it (recomputed at
    the previous as_of with what was known then)."""

    from leadscore.operations.accounts import account_run
    from leadscore.scoring.model_ref import ModelRef

    scorer = ruled.with_parts(accounts=account_fit.scorer)
    model = ModelRef("lead-scoring", "3")
    first_at = account_sim.data_end - pd.Timedelta(days=30)
    line = AccountLine("AB")
    first, first_events = account_run(account_sim, scorer, model, first_at, None, line)
    assert list(first.frame.columns) == ACCOUNT_COLUMNS and len(first.frame) > 100
    above_first = set(first.frame.loc[first.frame["grade"].isin(["A", "B"]), "account_id"])
    assert {e["account_id"] for e in first_events} == above_first
    now, events = account_run(account_sim, scorer, model, account_sim.data_end, first_at, line)
    above_now = set(now.frame.loc[now.frame["grade"].isin(["A", "B"]), "account_id"])
    assert {e["account_id"] for e in events} == above_now - above_first
    assert all(e["model"]["version"] == "3" and e["contacts"] >= 1 for e in events)


def test_the_score_command_writes_account_rows_and_hands_accounts_off(
    tmp_path, account_sim_path, small_sim_path, account_fit, ruled
):
    """`leadscore score` with a model that has an account model: account rows next to the
    lead rows, account crossings in the events file, once per crossing across runs."""
    import json

    from leadscore.cli import app
    from tests.cli.test_cli import runner

    scorer = ruled.with_parts(accounts=account_fit.scorer)
    folder = scorer.save(tmp_path / "model")
    end = pd.Timestamp(account_fit.test["as_of"].max()) + pd.Timedelta(days=60)
    runs = []
    for day in (end - pd.Timedelta(days=7), end, end):  # the last one a re-run
        result = runner.invoke(app, [
            "score", "--data", str(account_sim_path), "--out", str(tmp_path / "scores.csv"),
            "--model", str(folder), "--as-of", day.isoformat(), "--history",
            str(tmp_path / "history.duckdb"), "--account-handoff-grades", "AB",
        ])  # fmt: skip
        assert result.exit_code == 0, result.output[-3000:]
        said = " ".join(result.stdout.split())  # the console wraps long lines
        assert "open accounts" in said and "crossed the account line" in said
        rows = pd.read_csv(tmp_path / "scores.accounts.csv")
        events = [json.loads(line) for line in (tmp_path / "scores.events.jsonl").open()]
        runs.append((rows, [e for e in events if e["type"].startswith("account.")]))
    (first, first_events), (rows, events), (_, again) = runs
    assert list(rows.columns) == ACCOUNT_COLUMNS and rows["account_id"].is_unique
    above_before = set(first.loc[first["grade"].isin(["A", "B"]), "account_id"])
    above = set(rows.loc[rows["grade"].isin(["A", "B"]), "account_id"])
    assert {e["account_id"] for e in events} == above - above_before
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]  # a re-run
    # a model with an account model on leads without accounts: said, no account rows
    other = runner.invoke(app, [
        "score", "--data", str(small_sim_path), "--out", str(tmp_path / "plain.csv"),
        "--model", str(folder), "--no-history",
    ])  # fmt: skip
    assert other.exit_code == 0 and "no account_id" in " ".join(other.output.split())
    assert not (tmp_path / "plain.accounts.csv").exists()
