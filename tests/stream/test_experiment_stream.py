"""The event stream decides an experiment's leads by their arm's line and names the arm on
each hand-off, as the batch does (`leadscore.experiment.policy.ExperimentLine`)."""

from __future__ import annotations

import numpy as np

from leadscore.crm.times import to_us
from leadscore.experiment.assignment import arm_of
from leadscore.experiment.policy import ExperimentLine
from leadscore.experiment.records import Experiment, ExperimentStore
from leadscore.handoff.events import HandoffLine
from leadscore.scoring.model_ref import ModelRef
from leadscore.stream.processor import EventProcessor
from leadscore.stream.stores import open_store

MODEL = ModelRef("lead-scoring", "7")
T0 = "2026-03-02T09:00:00Z"


def _lead(lead_id, at=T0):
    return {"event_id": f"lead-{lead_id}", "type": "lead", "lead_id": lead_id,
            "occurred_at": at, "created_at": at, "source": "website",
            "profile": {"job_role": "director"}}  # fmt: skip


def test_the_stream_hands_off_by_the_arm_and_names_it(tmp_path, ruled):
    start = to_us(T0)
    experiment = Experiment(name="live", started_us=start - 1, share=0.5, line=0.0,
                            rules_rate=0.2, matched_leads=10, planned_leads=1000,
                            horizon_days=90.0)  # fmt: skip
    store = ExperimentStore(tmp_path / "score_history.duckdb")  # as `leadscore serve` reads it
    store.start(experiment)
    line = ExperimentLine(HandoffLine(), store.list)
    proc = EventProcessor(open_store(f"sqlite:///{tmp_path / 's.sqlite'}"), ruled, MODEL, line)
    ids = [f"L{i}" for i in range(12)]
    out = proc.process([_lead(i) for i in ids], None, start)
    arms = {i: arm_of("live", i, 0.5) for i in ids}
    assert set(arms.values()) == {"rules", "model"}
    by_lead = {r["lead_id"]: r for r in out.scores}
    handed = {e["lead_id"]: e for e in out.handoffs}
    for lead_id, row in by_lead.items():
        # a line of 0: every model-arm lead is above it at once; rules-arm leads by the MQL
        expect = row["open"] and (arms[lead_id] == "model" or bool(row["mql"]))
        assert (lead_id in handed) == expect
    assert any(arms[i] == "model" for i in handed)
    for lead_id, event in handed.items():
        assert (event["experiment"], event["arm"]) == ("live", arms[lead_id])
    # a lead created before the experiment keeps the ordinary line and no arm
    early = _lead("OLD", at="2026-03-01T09:00:00Z")
    old = proc.process([early], None, start)
    assert all(e["experiment"] is None for e in old.handoffs)
    assert np.all([r["lead_id"] == "OLD" for r in old.scores])


def test_an_experiment_started_later_is_followed_after_a_refresh(tmp_path, ruled, monkeypatch):
    import leadscore.experiment.policy as policy

    start = to_us(T0)
    store = ExperimentStore(tmp_path / "score_history.duckdb")
    line = ExperimentLine(HandoffLine(), store.list)
    proc = EventProcessor(open_store(f"sqlite:///{tmp_path / 's.sqlite'}"), ruled, MODEL, line)
    first = proc.process([_lead("A1")], None, start)
    assert all(e["experiment"] is None for e in first.handoffs) and not line.experiments
    store.start(Experiment(name="later", started_us=start - 1, share=0.999999, line=0.0,
                           rules_rate=0.2, matched_leads=10, planned_leads=1000,
                           horizon_days=90.0))  # fmt: skip
    monkeypatch.setattr(policy, "REFRESH_S", 0.0)
    line.refresh()  # as the service does between requests
    second = proc.process([_lead("A2")], None, start)
    assert [(e["lead_id"], e["experiment"], e["arm"]) for e in second.handoffs] == [
        ("A2", "later", "model")
    ]
