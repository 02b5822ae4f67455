"""What we write and print, against hostile data and secrets: CSV cells a spreadsheet would
run, URLs with credentials, console markup in data values (real CLI processes)."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm.csv_out import csv_ready, neutralised
from leadscore.operations.pipeline import write_scores
from tests.cli.test_cli import _leadscore
from tests.conftest import ACTIVITIES, DEALS, LEADS, write_dataset
from tests.handoff.test_delivery import Receiver
from tests.handoff.test_events import SECRET

PAYLOADS = ['=HYPERLINK("http://x","click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
            "\t=1", "\r=1", "  =1+1"]  # fmt: skip


def test_csv_cells_a_spreadsheet_would_run_are_text(tmp_path):
    for value in PAYLOADS:
        assert neutralised(value) == "'" + value
    for value in ("L1", "web site", "a=b", "", 3, -2.5, None):
        assert neutralised(value) == value  # numbers stay numbers, a negative one too
    frame = pd.DataFrame(
        {
            "lead_id": PAYLOADS,
            "as_of": pd.to_datetime(["2026-03-01 09:30:49", "2026-03-01 09:30:49.123"] * 3
                                    + ["2026-03-01"], utc=True, format="ISO8601"),
            "probability": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "score": range(7),
        }
    )  # fmt: skip
    ready = csv_ready(frame)
    assert all(v.startswith("'") for v in ready["lead_id"])
    assert ready["probability"].tolist() == frame["probability"].tolist()
    # one time format in a column: never `:49+00:00` next to `:49.123000+00:00`
    assert ready["as_of"].str.len().nunique() == 1
    assert ready["as_of"].iloc[0] == "2026-03-01T09:30:49.000000+00:00"
    # the scores file: CSV neutralised, Parquet raw
    scores = frame.assign(trend="steady")
    csv_text = write_scores(scores, tmp_path / "s.csv").read_text()
    assert "'=HYPERLINK" in csv_text and "\n=HYPERLINK" not in csv_text
    raw = pd.read_parquet(write_scores(scores, tmp_path / "s.parquet"))
    assert raw["lead_id"].tolist() == PAYLOADS


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    return trained.scorer.save(tmp_path_factory.mktemp("scorer") / "scorer")


def test_no_secret_is_printed(tmp_path, small_sim_path, saved, trained):
    when = trained.test["as_of"].max().isoformat()
    common = ["score", "--data", str(small_sim_path), "--model", str(saved), "--as-of", when]
    # a history database that refuses: one line, exit 1, the password nowhere
    refused = _leadscore(
        *common, "--out", str(tmp_path / "a.csv"),
        "--history", "postgresql+psycopg://ls:hunter2@127.0.0.1:9/scores", cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    assert "hunter2" not in refused.stdout + refused.stderr and "Traceback" not in refused.stderr
    assert "***@127.0.0.1:9" in refused.stderr
    # a webhook URL with a user, a password and a token: kept, and delivered, never shown
    env = {"LEADSCORE_WEBHOOK_SECRET": SECRET}
    with Receiver(script=[400]) as receiver:
        url = receiver.url.replace("http://", "http://hook-user:pw-9931@") + "?token=tok-5521"
        for name in ("b.csv", "c.csv"):  # refused (kept in the outbox), then delivered
            run = _leadscore(
                *common, "--out", str(tmp_path / name), "--no-history", "--webhook", url,
                "--outbox", str(tmp_path / "outbox.jsonl"), cwd=tmp_path, env=env,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr
            shown = run.stdout + run.stderr
            for secret in ("hook-user", "pw-9931", "tok-5521"):
                assert secret not in shown
    assert "***@127.0.0.1" in shown and "token=***" in shown
    # a URL that does not parse is refused in one line, masked
    bad = _leadscore(
        *common, "--out", str(tmp_path / "d.csv"), "--no-history",
        "--webhook", "http://u:pw-7@[::1?token=t-8", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "pw-7" not in bad.stderr and "t-8" not in bad.stderr
    assert not (tmp_path / "d.csv").exists()


def test_console_markup_in_data_is_printed_as_it_is(tmp_path):
    leads = LEADS.replace("website", "[/x]").replace("partner", "[red]p[/red]")
    data = write_dataset(tmp_path / "crm", leads=leads, activities=ACTIVITIES, deals=DEALS)
    checked = _leadscore("validate", str(data), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "MarkupError" not in checked.stderr and "[red]p[/red]" in checked.stdout
    history = tmp_path / "h.duckdb"
    missing = _leadscore("history", "[red]L2[/red]", "--history", str(history), cwd=tmp_path)
    assert missing.returncode == 1 and "'[red]L2[/red]'" in missing.stderr
