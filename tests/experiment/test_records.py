"""The experiments' records in the score history's store (a DuckDB file or a SQLAlchemy
URL): start, stop, list, the hand-offs; each refusal one clear line."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import to_us
from leadscore.experiment.records import Experiment, ExperimentStore

T0 = to_us(pd.Timestamp("2026-01-05", tz="UTC"))


def _experiment(name="exp-1", **kw) -> Experiment:
    base = dict(name=name, started_us=T0, share=0.5, line=0.25, rules_rate=0.18,
                matched_leads=400, planned_leads=5000, horizon_days=90.0)  # fmt: skip
    return Experiment(**{**base, **kw})


@pytest.fixture(params=["duckdb", "sqlite-url"])
def store(request, tmp_path):
    if request.param == "duckdb":
        return ExperimentStore(tmp_path / "score_history.duckdb")
    return ExperimentStore(f"sqlite:///{tmp_path / 'history.sqlite'}")


def test_start_stop_and_list(store):
    assert store.list() == []
    e = store.start(_experiment())
    assert store.list() == [e] and store.get("exp-1").running
    stopped = store.stop("exp-1", pd.Timestamp("2026-03-01", tz="UTC"))
    assert not stopped.running and store.get("exp-1") == stopped
    assert stopped.as_json()["stopped_at"].startswith("2026-03-01")
    later = store.start(_experiment("exp-2", started_us=stopped.stopped_us))
    assert [x.name for x in store.list()] == ["exp-1", "exp-2"] and later.running


def test_refusals_are_one_clear_line(store):
    store.start(_experiment())
    for action, message in (
        (lambda: store.start(_experiment()), "exp-1' exists already"),
        (lambda: store.start(_experiment("exp-2", started_us=T0 + 1)), "still running"),
        (lambda: store.get("nope"), r"no experiment 'nope' .*\(experiments there: exp-1\)"),
        (lambda: store.stop("exp-1", pd.Timestamp("2025-01-01", tz="UTC")), "cannot stop before"),
        (lambda: store.start(_experiment("bad name!")), "experiment name 'bad name!'"),
    ):
        with pytest.raises(LeadscoreError, match=message) as caught:
            action()
        assert "\n" not in str(caught.value)
    store.stop("exp-1", pd.Timestamp("2026-02-01", tz="UTC"))
    with pytest.raises(LeadscoreError, match="stopped already"):
        store.stop("exp-1", pd.Timestamp("2026-02-02", tz="UTC"))
    with pytest.raises(LeadscoreError, match="took leads until after"):
        store.start(_experiment("exp-3", started_us=T0 + 5))  # overlaps exp-1's intake


def test_handoffs_are_kept_once_per_event(store):
    store.start(_experiment())
    events = [
        {"experiment": "exp-1", "arm": "model", "lead_id": "L1", "event_id": "e1",
         "type": "lead.handoff", "as_of": "2026-01-06T00:00:00+00:00"},
        {"experiment": "exp-1", "arm": "rules", "lead_id": "L2", "event_id": "e2",
         "type": "lead.review", "as_of": "2026-01-07T00:00:00+00:00"},
        {"experiment": None, "arm": None, "lead_id": "L3", "event_id": "e3",
         "type": "lead.handoff", "as_of": "2026-01-07T00:00:00+00:00"},
        {"experiment": "exp-1", "arm": "rules", "lead_id": "L2", "event_id": "e4",
         "type": "lead.grade_changed", "as_of": "2026-01-08T00:00:00+00:00"},
    ]  # fmt: skip
    assert store.record_handoffs(events) == 2
    assert store.record_handoffs(events) == 0  # a re-run writes nothing twice
    kept = store.handoffs("exp-1").sort_values("lead_id")
    assert kept["lead_id"].tolist() == ["L1", "L2"] and kept["arm"].tolist() == ["model", "rules"]
    assert store.handoffs("exp-2").empty


def test_a_store_that_is_not_a_database_is_refused(tmp_path):
    bad = tmp_path / "score_history.duckdb"
    bad.write_text("not a database")
    with pytest.raises(LeadscoreError, match="not a readable score history"):
        ExperimentStore(bad).list()
    with pytest.raises(LeadscoreError, match="not a usable database URL"):
        ExperimentStore("nosuchdialect://x/y").list()


def test_the_store_on_postgresql():
    """The production store for real: a fresh PostgreSQL cluster (skipped without one)."""
    from tests.postgres import postgres_cluster

    with postgres_cluster("experiments") as url:
        store = ExperimentStore(url)
        assert store.list() == []
        store.start(_experiment())
        with pytest.raises(LeadscoreError, match="exists already"):
            store.start(_experiment())
        with pytest.raises(LeadscoreError, match="still running"):
            store.start(_experiment("exp-2", started_us=T0 + 1))
        events = [{"experiment": "exp-1", "arm": "model", "lead_id": "L1", "event_id": "e1",
                   "type": "lead.handoff", "as_of": "2026-01-06T00:00:00+00:00"}]  # fmt: skip
        assert store.record_handoffs(events) == 1 and store.record_handoffs(events) == 0
        stopped = store.stop("exp-1", pd.Timestamp("2026-03-01", tz="UTC"))
        assert ExperimentStore(url).list() == [stopped]
        assert store.handoffs("exp-1")["lead_id"].tolist() == ["L1"]
    assert "hunter2" not in str(
        pytest.raises(
            LeadscoreError, ExperimentStore("postgresql+psycopg://ls:hunter2@127.0.0.1:9/x").list
        ).value
    )
