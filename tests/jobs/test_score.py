"""The scoring and monitoring jobs in process: a value back, files written, progress
recorded; a mistake refused before anything is written."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.jobs import MonitorRequest, Recorded, ScoreRequest, monitor, score


def test_score_returns_the_run_and_writes_its_files(tmp_path, small_sim_path, ruled, trained):
    folder = ruled.save(tmp_path / "scorer")
    when = trained.test["as_of"].max().isoformat()
    progress = Recorded()
    done = score(
        ScoreRequest(data=small_sim_path, out=tmp_path / "scores.parquet", model=str(folder),
                     as_of=when, history=str(tmp_path / "history.duckdb")),
        progress,
    )  # fmt: skip
    frame = done.run.scores
    assert len(frame) > 0 and set(frame["grade"]) <= set("ABCD")
    assert (
        pd.read_parquet(tmp_path / "scores.parquet")["lead_id"].tolist()
        == frame["lead_id"].tolist()
    )
    assert done.events_path == tmp_path / "scores.events.jsonl" and done.events_path.is_file()
    assert done.delivery is None and done.accounts is None  # no webhook, no accounts
    assert "scoring the open pipeline" in progress.steps
    assert len(done.history.read()) == len(frame)  # the run is recorded


def test_score_refuses_a_mistake_before_writing(tmp_path, small_sim_path, ruled):
    folder = ruled.save(tmp_path / "scorer")
    for request, message in (
        (ScoreRequest(data=small_sim_path, out=tmp_path / "x.xlsx", model=str(folder)),
         ".parquet or .csv"),
        (ScoreRequest(data=small_sim_path, out=tmp_path / "y.csv", model=str(folder),
                      as_of="soon"), "not an ISO-8601"),
        (ScoreRequest(data=small_sim_path, out=tmp_path / "z.csv", model=str(folder),
                      webhook="http://127.0.0.1:9/"), "signing secret"),
    ):  # fmt: skip
        with pytest.raises(LeadscoreError, match=message):
            score(request)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scorer"]


def test_monitor_returns_its_report_and_page(tmp_path, small_sim_path, ruled):
    folder = ruled.save(tmp_path / "scorer")
    done = monitor(
        MonitorRequest(data=small_sim_path, out=tmp_path / "m.html", model=str(folder),
                       log_mlflow=False)
    )  # fmt: skip
    assert done.html_path.is_file() and done.json_path.is_file() and done.run_id is None
    assert done.report.verdict in ("ok", "watch", "retrain")
    with pytest.raises(LeadscoreError, match="HTML file"):
        monitor(MonitorRequest(data=small_sim_path, out=tmp_path / "m.txt", model=str(folder)))
