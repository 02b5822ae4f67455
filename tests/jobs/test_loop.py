"""The hand-off loop in the monitor (the same tables as `leadscore kpis`), and the daily
batch's SLA misses."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from leadscore.jobs.loop import LoopRequest, kpis
from leadscore.jobs.monitor import LOOP_DAYS, MonitorRequest, monitor


@pytest.fixture(scope="module")
def scorer_folder(trained, tmp_path_factory):
    return trained.scorer.save(tmp_path_factory.mktemp("scorer") / "scorer")


def test_the_monitor_shows_the_loop_of_its_last_days(
    status_sim_path, status_sim, scorer_folder, tmp_path
):
    done = monitor(
        MonitorRequest(
            data=status_sim_path,
            model=str(scorer_folder),
            out=tmp_path / "m.html",
            log_mlflow=False,
        )
    )
    summary = json.loads(done.json_path.read_text())
    loop = summary["loop"]
    start, end = pd.Timestamp(loop["from"]), pd.Timestamp(loop["to"])
    assert end - start == pd.Timedelta(days=LOOP_DAYS)
    same = kpis(
        LoopRequest(data=status_sim_path, start=loop["from"], end=loop["to"]), dataset=status_sim
    )
    expected = same.table.set_index("source")
    for row in loop["rows"]:
        assert row["acceptance_rate"] == pytest.approx(
            expected.loc[row["source"], "acceptance_rate"]
        )
        assert row["processing_rate"] == pytest.approx(
            expected.loc[row["source"], "processing_rate"]
        )
    html = done.html_path.read_text()
    assert 'data-section="loop"' in html and "Rejected leads" in html


def test_a_monitor_without_status_has_no_loop(small_sim_path, scorer_folder, tmp_path):
    done = monitor(
        MonitorRequest(
            data=small_sim_path, model=str(scorer_folder), out=tmp_path / "m.html", log_mlflow=False
        )
    )
    assert "loop" not in json.loads(done.json_path.read_text())
    assert "id='loop'" not in done.html_path.read_text()
