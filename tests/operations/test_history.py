"""The score history (leadscore.operations.history): storage in DuckDB and SQL, and the trend rule."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.operations.history import ScoreHistory, trends


def _run(when: str, probs: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": list(probs),
            "as_of": pd.Timestamp(when, tz="UTC"),
            "probability": list(probs.values()),
            "score": [round(100 * p) for p in probs.values()],
            "grade": "C",
            "rule_score": 50,
            "rule_grade": "B",
            "mql": False,
            "trend": "steady",
            "model_name": "m",
            "model_version": "1",
            "feature_set_version": "v",
        }
    )


@pytest.fixture(params=["duckdb", "sqlalchemy"])
def history(request, tmp_path):
    if request.param == "duckdb":
        return ScoreHistory(tmp_path / "scores.duckdb")
    return ScoreHistory(f"sqlite:///{tmp_path / 'scores.sqlite'}")


def test_runs_append_and_a_rerun_replaces(history):
    assert history.read().empty  # nothing stored yet: an empty frame, not an error
    history.write_run(_run("2025-01-01", {"a": 0.1, "b": 0.2}))
    history.write_run(_run("2025-01-02", {"a": 0.3}))
    history.write_run(_run("2025-01-02", {"a": 0.4, "c": 0.5}))  # the same as_of again
    stored = history.read()
    assert len(stored) == 4
    assert stored.groupby("as_of").size().tolist() == [2, 2]
    assert history.lead("a")["probability"].tolist() == [0.1, 0.4]
    assert len(history.read(before=pd.Timestamp("2025-01-02", tz="UTC"))) == 2


def test_a_run_has_one_as_of(history):
    two = pd.concat([_run("2025-01-01", {"a": 0.1}), _run("2025-01-02", {"b": 0.1})])
    with pytest.raises(ValueError):
        history.write_run(two)


def test_trend_rule():
    earlier = pd.concat(
        [
            _run("2025-01-01", {"up": 0.10, "flat": 0.20, "down": 0.30, "noisy": 0.1, "new": 0.2}),
            _run("2025-01-08", {"up": 0.10, "flat": 0.21, "down": 0.30, "noisy": 0.5}),
            _run("2025-01-15", {"up": 0.11, "flat": 0.20, "down": 0.29, "noisy": 0.1}),
        ]
    )
    now = pd.DataFrame(
        {
            "lead_id": ["up", "flat", "down", "noisy", "new", "never"],
            "probability": [0.25, 0.205, 0.12, 0.3, 0.9, 0.5],
        }
    )
    got = dict(zip(now["lead_id"], trends(now, earlier), strict=True))
    assert got == {
        "up": "improving",
        "flat": "steady",
        "down": "declining",
        # moved as much as "up", but its own scores wobble that much: steady
        "noisy": "steady",
        "new": "not enough history",  # one earlier score
        "never": "not enough history",
    }


def test_trend_uses_the_last_runs_only():
    old = [_run(f"2024-0{m}-01", {"a": 0.9}) for m in range(1, 8)]
    recent = [_run(f"2025-01-0{d}", {"a": 0.1}) for d in (1, 2, 3)]
    now = pd.DataFrame({"lead_id": ["a"], "probability": [0.1]})
    assert trends(now, pd.concat(old + recent)).tolist() == ["steady"]


def test_a_run_reads_only_the_runs_before_it_that_trends_need(history):
    for day in range(1, 6):
        history.write_run(_run(f"2025-01-0{day}", {"a": 0.1 * day, "b": 0.2}))
    got = history.read(["a"], before=pd.Timestamp("2025-01-05", tz="UTC"), last_runs=3)
    assert got["as_of"].dt.day.tolist() == [2, 3, 4] and set(got["lead_id"]) == {"a"}
    assert len(history.read(last_runs=2)) == 4  # the two latest runs, both leads
