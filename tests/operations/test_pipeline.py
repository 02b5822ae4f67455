"""Scoring the open pipeline (leadscore.operations.pipeline) and `leadscore score` / `history`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.features.batch import build_scoring_set
from leadscore.operations.history import ScoreHistory
from leadscore.operations.pipeline import score_pipeline, write_scores
from leadscore.operations.runs import score_and_record
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.score_row import COLUMNS
from tests.cli.test_cli import _leadscore
from tests.conftest import write_dataset
from tests.handoff.test_delivery import Receiver
from tests.handoff.test_events import SECRET

LEADS = """lead_id,created_at,source,industry
L1,2025-01-01T00:00:00Z,web,tech
L2,2025-01-05T00:00:00Z,event,retail
L3,2025-02-20T00:00:00Z,web,retail
L4,2025-01-10T00:00:00Z,web,tech
"""
ACTIVITIES = """lead_id,occurred_at,activity_type
L1,2025-01-02T00:00:00Z,email_open
L1,2025-02-10T00:00:00Z,webinar_attendance
L1,2025-03-01T00:00:00Z,demo_request
L2,2025-01-06T00:00:00Z,page_view
L4,2025-01-11T00:00:00Z,page_view
"""
DEALS = """deal_id,lead_id,created_at,closed_at,status,amount
D1,L2,2025-01-20T00:00:00Z,2025-02-01T00:00:00Z,won,1000
D2,L4,2025-01-20T00:00:00Z,2025-03-10T00:00:00Z,lost,
"""


@pytest.fixture
def tiny(tmp_path):
    from leadscore.crm.loading import load_dataset

    return load_dataset(
        write_dataset(tmp_path / "crm", leads=LEADS, activities=ACTIVITIES, deals=DEALS)
    )


def test_open_leads_and_what_is_known_at_as_of(tiny):
    from leadscore.features.batch import feature_spec_for
    from leadscore.features.config import FeatureConfig

    spec = feature_spec_for(tiny, FeatureConfig())
    df = build_scoring_set(tiny, spec, "2025-02-15T00:00:00Z")
    # L2 won on 2025-02-01 (closed: out), L3 is not created yet; L4's deal closes later
    assert sorted(df["lead_id"]) == ["L1", "L4"]
    l1 = df.set_index("lead_id").loc["L1"]
    # L1's demo request on 2025-03-01 is in the future: unseen (its last activity: 02-10)
    assert l1["days_since_last_activity"] == pytest.approx(5.0)
    assert l1["lead_age_days"] == pytest.approx(45.0)
    later = build_scoring_set(tiny, spec, "2025-03-05T00:00:00Z")
    assert sorted(later["lead_id"]) == ["L1", "L3", "L4"]
    assert sorted(build_scoring_set(tiny, spec, "2025-03-20T00:00:00Z")["lead_id"]) == ["L1", "L3"]


def test_scoring_rows_equal_training_rows_at_the_same_time(small_sim, small_set):
    """A lead's scoring row at t is its training snapshot's row at t (one feature engine)."""
    df, spec, _ = small_set
    when = df["as_of"].iloc[len(df) // 2]
    snaps = df[df["as_of"] == when].set_index("lead_id")
    rows = build_scoring_set(small_sim, spec, when).set_index("lead_id")
    common = snaps.index.intersection(rows.index)
    assert len(common) == len(snaps) > 0  # every open snapshot lead at t is in the pipeline
    features = [c for c in snaps.columns if c not in ("as_of", "label")]
    pd.testing.assert_frame_equal(
        rows.loc[common, features], snaps.loc[common, features], check_dtype=False
    )


def test_score_pipeline_columns_and_the_scorer_agree(small_sim, trained, served_rules):
    scorer = trained.scorer.with_parts(rules=served_rules)
    when = trained.test["as_of"].max()
    frame = score_pipeline(small_sim, scorer, ModelRef("lead-scoring", "7"), when).frame
    assert list(frame.columns) == COLUMNS[:-1] and len(frame) > 100
    assert (frame["as_of"] == when).all()
    assert set(frame["grade"]) <= set("ABCD") and set(frame["rule_grade"]) <= set("ABCD")
    assert (frame["model_version"] == "7").all()
    assert (frame["feature_set_version"] == scorer.spec.version).all()
    assert frame["reasons_up"].str.len().gt(0).mean() > 0.9
    without = score_pipeline(small_sim, scorer, ModelRef("m", "1"), when, reasons=False).frame
    np.testing.assert_array_equal(without["probability"], frame["probability"])
    assert without["reasons_up"].isna().all()


def test_score_and_record_trends_and_replacing_a_run(small_sim, trained, tmp_path):
    history = ScoreHistory(tmp_path / "h.duckdb")
    ref = ModelRef("lead-scoring", "1")
    days = pd.date_range(trained.test["as_of"].min(), periods=4, freq="7D")
    recorded = [score_and_record(small_sim, trained.scorer, ref, d, history=history) for d in days]
    runs = [r.scores for r in recorded]
    assert (runs[0]["trend"] == "not enough history").all()
    assert set(runs[-1]["trend"]) <= {"improving", "steady", "declining", "not enough history"}
    assert (runs[-1]["trend"] != "not enough history").any()
    stored = history.read()
    assert len(stored) == sum(len(r) for r in runs)
    again = score_and_record(small_sim, trained.scorer, ref, days[-1], history=history)
    assert len(history.read()) == len(stored)  # replaced, not duplicated
    pd.testing.assert_series_equal(again.scores["trend"], runs[-1]["trend"])
    # The same run's events again, with the same ids (a receiver's idempotency keys).
    assert again.events == recorded[-1].events

    # First run: every lead above the line is new, so handed off; no grade change yet.
    first = recorded[0].events
    above = runs[0]["mql"].fillna(False).astype(bool) | (runs[0]["grade"] == "A")
    assert {e["lead_id"] for e in first} == set(runs[0].loc[above, "lead_id"])
    assert all(e["triggers"] == ["crossed_handoff_line"] for e in first)
    # Later runs: a grade change is exactly a lead whose grade differs from its last run's.
    before = runs[1].set_index("lead_id")["grade"]
    now = runs[2].set_index("lead_id")["grade"]
    common = before.index.intersection(now.index)
    moved = set(common[before[common].to_numpy() != now[common].to_numpy()])
    assert moved and moved == {
        e["lead_id"] for e in recorded[2].events if "grade_changed" in e["triggers"]
    }


def test_write_scores_formats_and_refusals(tmp_path, small_sim, trained):
    frame = score_pipeline(
        small_sim, trained.scorer, ModelRef("m", "1"), trained.test["as_of"].max(), reasons=False
    ).frame
    frame["trend"] = "steady"
    for suffix in (".parquet", ".csv"):
        path = write_scores(frame, tmp_path / f"s{suffix}")
        back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
        assert list(back.columns) == COLUMNS and len(back) == len(frame)
    from leadscore.crm.errors import LeadscoreError

    with pytest.raises(LeadscoreError, match="parquet or .csv"):
        write_scores(frame, tmp_path / "s.xlsx")


def test_score_and_history_commands(tmp_path, small_sim_path, trained, monkeypatch):
    """Three daily runs and the history through the app in process; a mistake through the
    console script (one line, exit 1, no traceback)."""
    from leadscore.cli import app
    from tests.cli.test_cli import runner

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADSCORE_WEBHOOK_SECRET", SECRET)
    folder = trained.scorer.save(tmp_path / "scorer")
    when = trained.test["as_of"].max()
    days = (when - pd.Timedelta(days=14), when - pd.Timedelta(days=7), when)
    with Receiver(script=[503]) as receiver:  # the last run posts its events (one retry)
        for day in days:
            webhook = ["--webhook", receiver.url] if day == when else []
            result = runner.invoke(app, [
                "score", "--data", str(small_sim_path), "--out", str(tmp_path / "scores.csv"),
                "--model", str(folder), "--as-of", day.isoformat(), "--history",
                str(tmp_path / "history.duckdb"), "--outbox", str(tmp_path / "outbox.jsonl"),
                *webhook,
            ])  # fmt: skip
            assert result.exit_code == 0, result.output[-3000:]
    assert "open leads" in result.stdout and "improving" in result.stdout
    assert "hand-off events:" in result.stdout and "events delivered" in result.stdout
    events = [json.loads(line) for line in (tmp_path / "scores.events.jsonl").open()]
    assert events and receiver.delivered_ids() == [e["event_id"] for e in events]
    assert not (tmp_path / "outbox.jsonl").exists()
    scores = pd.read_csv(tmp_path / "scores.csv")
    lead = scores["lead_id"].iloc[0]
    shown = runner.invoke(app, ["history", lead, "--history", str(tmp_path / "history.duckdb")])
    assert shown.exit_code == 0 and shown.stdout.count(str(when.year)) >= 3
    # mistakes: one line, exit 1, no file written
    monkeypatch.delenv("LEADSCORE_WEBHOOK_SECRET")
    for args, message in (
        (["--out", str(tmp_path / "x.xlsx")], ".parquet or .csv"),
        (["--out", str(tmp_path / "y.csv"), "--as-of", "yesterday-ish"], "not an ISO-8601"),
        (["--out", str(tmp_path / "z.csv"), "--webhook", "http://127.0.0.1:9/"], "signing secret"),
        (["--out", str(tmp_path / "w.csv"), "--handoff-grades", "AX"], "X not in A-D"),
    ):
        bad = runner.invoke(app, [
            "score", "--data", str(small_sim_path), "--model", str(folder), "--no-history", *args,
        ])  # fmt: skip
        assert bad.exit_code == 1 and message in bad.output, bad.output
    script = _leadscore(
        "score", "--data", str(small_sim_path), "--model", str(folder), "--no-history",
        "--out", str(tmp_path / "y.csv"), "--as-of", "yesterday-ish", cwd=tmp_path,
    )  # fmt: skip
    assert script.returncode == 1 and "not an ISO-8601" in script.stderr
    assert "Traceback" not in script.stderr
    for name in ("x.xlsx", "y.csv", "z.csv", "w.csv", "z.events.jsonl"):
        assert not (tmp_path / name).exists()
    missing = runner.invoke(
        app, ["history", "no-such-lead", "--history", str(tmp_path / "history.duckdb")]
    )
    assert missing.exit_code == 1 and "no stored score" in missing.output


def test_a_flat_export_is_not_taken_for_an_open_pipeline(tmp_path):
    """Every row of a flat export is decided: nothing is open to score."""
    from leadscore.features.batch import build_training_set
    from leadscore.training.fit import fit_models
    from tests.conftest import flat_export
    from tests.training.conftest import FAST

    ds = flat_export(tmp_path / "flat")
    df, spec, _ = build_training_set(ds)
    result = fit_models(df, spec, FAST)
    # Its leads not won said no (a real export: 36,548 such "open leads", 1,484 "handed off").
    with pytest.raises(LeadscoreError, match="has no open pipeline") as caught:
        score_pipeline(ds, result.scorer, ModelRef("flat", "1"))
    assert "POST /score" in str(caught.value)
    # The model itself trains and scores payloads as ever.
    assert result.metrics["model"]["roc_auc"] > 0.6


PARTITION_WRITER = """
import sys
import pandas as pd
from leadscore.operations.pipeline import write_partition
frames = [pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])]
i = 0
while True:
    write_partition(frames[i % 2], sys.argv[3])
    print(i, flush=True)
    i += 1
"""


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.041])
def test_a_partition_rewritten_and_killed_holds_one_run_whole(tmp_path, small_sim, trained, delay):
    """kill -9 of a real process rewriting the same as_of's partition, at several moments:
    the partition holds the rows of one run, whole, and nothing a reader would take for
    data is left beside them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    frame = score_pipeline(small_sim, trained.scorer, ModelRef("m", "1"), reasons=False).frame
    small, large = frame.head(50), frame
    for name, part in (("small", small), ("large", large)):
        part.to_parquet(tmp_path / f"{name}.parquet")
    out = tmp_path / "scores"
    write_scores(small, out)
    proc = subprocess.Popen(
        [sys.executable, "-c", PARTITION_WRITER, str(tmp_path / "small.parquet"),
         str(tmp_path / "large.parquet"), str(out)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(3):
            assert proc.stdout.readline().strip() != ""
        time.sleep(delay)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    back = pd.read_parquet(out).drop(columns=["as_of"])
    want = small if len(back) == len(small) else large
    pd.testing.assert_frame_equal(
        back.reset_index(drop=True), want.drop(columns=["as_of"]).reset_index(drop=True),
        check_dtype=False, check_categorical=False,
    )  # fmt: skip
    visible = [p.name for p in next(out.iterdir()).iterdir() if not p.name.startswith(".")]
    assert visible == ["part-00000.parquet"]
