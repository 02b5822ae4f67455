"""The stream's one code path (`leadscore.stream.processor`) on the embedded store: events applied
once, held until their lead comes, rescored as `leadscore score` scores, handed off once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import PayloadError
from leadscore.crm.payloads import dataset_events
from leadscore.crm.times import to_us
from leadscore.operations.pipeline import score_pipeline
from leadscore.scoring.model_ref import ModelRef
from leadscore.stream.processor import EventProcessor
from leadscore.stream.stores import open_store

MODEL = ModelRef("lead-scoring", "7")


def _processor(tmp_path, scorer, name="state.sqlite"):
    return EventProcessor(open_store(f"sqlite:///{tmp_path / name}"), scorer, MODEL)


def _replay(proc, events, per_request=200):
    for i in range(0, len(events), per_request):
        part = events[i : i + per_request]
        proc.process(part, max(to_us(e["occurred_at"]) for e in part), 0)


def test_replaying_an_export_scores_as_the_batch_does(tmp_path, small_sim, ruled):
    """The events of a share of the export's leads (parity is the subject, not volume:
    benchmarks/events.py replays at scale), then every open one of them, stream vs batch."""
    when = small_sim.data_end - pd.Timedelta(days=120)
    leads = set(small_sim.leads["lead_id"].iloc[::5])
    events = [e for e in dataset_events(small_sim, until=when) if e["lead_id"] in leads]
    proc = _processor(tmp_path, ruled)
    _replay(proc, events)
    batch = score_pipeline(small_sim, ruled, MODEL, when).frame
    batch = batch[batch["lead_id"].isin(leads)].set_index("lead_id")
    assert len(batch) > 100
    stream = {lead_id: proc.lead(lead_id, to_us(when)) for lead_id in batch.index}
    got = pd.DataFrame.from_dict(stream, orient="index")
    np.testing.assert_allclose(
        got["probability"].to_numpy(float), batch["probability"].to_numpy(float), rtol=1e-9
    )
    assert (got["grade"].to_numpy() == batch["grade"].to_numpy()).all()
    assert (got["rule_score"].to_numpy(int) == batch["rule_score"].to_numpy(int)).all()
    assert got["open"].all()
    folded = got["activities_folded"].sum()
    assert folded > 0  # old activities were folded into totals, and still scored exactly


T0 = "2026-03-02T09:00:00Z"
NOON = "2026-03-02T12:00:00Z"


def _lead(event_id="e-lead", lead_id="L1", at=T0, **profile):
    return {"event_id": event_id, "type": "lead", "lead_id": lead_id, "occurred_at": at,
            "created_at": at, "source": "website", "profile": profile}  # fmt: skip


def _act(event_id, kind, at, lead_id="L1"):
    return {"event_id": event_id, "type": "activity", "lead_id": lead_id, "occurred_at": at,
            "activity_type": kind}  # fmt: skip


def _us(text):
    return to_us(text)


@pytest.fixture
def proc(tmp_path, ruled):
    return _processor(tmp_path, ruled)


def test_duplicates_and_retries_change_nothing(proc, ruled):
    kind = ruled.spec.activity_types[0]
    events = [_lead(), _act("a1", kind, "2026-03-02T10:00:00Z")]
    first = proc.process(events, _us("2026-03-02T11:00:00Z"), 0)
    assert (first.accepted, first.duplicates) == (2, 0) and len(first.scores) == 1
    state = proc.store.read("L1")
    again = proc.process(events, _us("2026-03-02T11:00:00Z"), 0)  # the CRM's retry
    assert (again.accepted, again.duplicates, again.scores) == (0, 2, [])
    assert proc.store.read("L1")["activities"] == state["activities"]
    inside = proc.process([_act("a2", kind, "2026-03-02T10:30:00Z")] * 2, None, _us(NOON))
    assert (inside.accepted, inside.duplicates) == (1, 1)
    assert len(proc.store.read("L1")["activities"]) == 2


def test_an_activity_before_its_lead_is_held_then_applied(proc, ruled):
    kind = ruled.spec.activity_types[0]
    held = proc.process([_act("a1", kind, "2026-03-02T10:00:00Z", "L2")], None, _us(NOON))
    assert (held.accepted, held.held, held.scores) == (0, 1, [])
    assert proc.store.read("L2") is None and proc.store.held_count("L2") == 1
    assert proc.lead("L2", _us(NOON)) is None
    again = proc.process([_act("a1", kind, "2026-03-02T10:00:00Z", "L2")], None, _us(NOON))
    assert again.duplicates == 1  # a held event is known too
    came = proc.process(
        [_lead("e-L2", "L2", "2026-03-02T09:30:00Z")], None, _us("2026-03-02T12:00:00Z")
    )
    assert came.accepted == 2 and proc.store.held_count("L2") == 0
    assert len(proc.store.read("L2")["activities"]) == 1
    # a held event its lead contradicts (dated before the lead's creation) is kept as refused
    proc.process([_act("a0", kind, "2026-03-01T08:00:00Z", "L3")], None, _us(NOON))
    proc.process([_lead("e-L3", "L3", "2026-03-02T09:00:00Z")], None, _us(NOON))
    refused = proc.lead("L3", _us("2026-03-03T00:00:00Z"))["refused_events"]
    assert refused == [{"event_id": "a0", "reason": "occurred_at: before the lead's created_at"}]


def test_a_mistake_refuses_the_whole_request(proc, ruled):
    kind = ruled.spec.activity_types[0]
    bad = [_lead(), _act("a1", kind, "2026-03-02T10:00:00Z"), _act("a2", kind, "not a time")]
    with pytest.raises(PayloadError, match=r"events\[2\]\.occurred_at"):
        proc.process(bad, None, _us(T0))
    early = [_lead(), _act("a1", kind, "2026-03-01T10:00:00Z")]
    with pytest.raises(
        PayloadError, match=r"events\[1\]\.occurred_at: before the lead's created_at"
    ):
        proc.process(early, None, _us(T0))
    assert proc.store.read("L1") is None  # nothing of either request was applied
    with pytest.raises(PayloadError, match="ahead of the server's clock"):
        proc.process([_lead(at="2026-03-02T10:00:00Z")], None, _us(T0))
    with pytest.raises(PayloadError, match=r"events\[0\]\.occurred_at: after as_of"):
        proc.process([_lead()], _us("2026-03-02T08:00:00Z"), _us(T0))
    with pytest.raises(PayloadError, match=r"events\[0\]\.type"):
        proc.process([{**_lead(), "type": "visit"}], None, _us(T0))


def test_a_crossing_is_handed_off_once(proc, ruled):
    """A lead rising above the line is handed off at the event that lifts it, once; its
    event id is the crossing's (`leadscore.handoff.events.crossing_id`)."""
    from leadscore.handoff.events import crossing_id

    rules = ruled.rules.config.activities
    hot = sorted((t for t in rules if rules[t].points > 0), key=lambda t: -rules[t].points)[:4]
    start = _us(T0)
    out = proc.process([_lead(job_role="director")], None, start)
    assert out.scores[0]["handoff"] is False and not out.handoffs  # not an MQL yet
    handed, before, previous = [], None, start
    for n in range(40):
        at = str(np.datetime64(start + (n + 1) * 3_600_000_000, "us")) + "Z"
        out = proc.process([_act(f"h{n}", hot[n % len(hot)], at)], None, _us(at))
        if out.handoffs:
            before = previous  # the as_of of its last score below the line
        previous = _us(at)
        handed += out.handoffs
    assert len(handed) == 1  # it crossed once and stayed above
    event = handed[0]
    assert event["type"] == "lead.handoff" and event["mql"] is True
    assert event["event_id"] == crossing_id("L1", before)
    assert proc.store.outbox_size() == 1
    speed = proc.lead("L1", _us(event["as_of"]))["speed_to_lead"]
    assert speed["seconds_to_first_score"] == 0 and speed["seconds_to_handoff"] > 0


def test_an_as_of_before_the_folded_totals_is_refused(proc, ruled):
    kind = ruled.spec.activity_types[0]
    proc.process([_lead(at="2025-01-01T00:00:00Z")], None, _us("2025-01-01T00:00:00Z"))
    proc.process([_act("old", kind, "2025-01-02T00:00:00Z")], None, _us("2025-01-02T00:00:00Z"))
    proc.process([_act("new", kind, "2026-01-02T00:00:00Z")], None, _us("2026-01-02T00:00:00Z"))
    state = proc.store.read("L1")
    assert state["carried"] is not None and len(state["activities"]) == 1
    with pytest.raises(PayloadError, match="kept as totals"):
        proc.lead("L1", _us("2025-06-01T00:00:00Z"))
    assert proc.lead("L1", _us("2026-01-03T00:00:00Z"))["activities_folded"] == 1


def test_dates_in_the_future_are_refused_naming_the_event_and_field(proc):
    """A lead created, or a deal created or closed, after as_of (or ahead of the clock) is
    the CRM's mistake, named like an activity's time: never stored, never scored."""
    now = _us(NOON)
    future = {**_lead(at="2026-03-02T11:00:00Z"), "created_at": "2098-01-01T00:00:00Z"}
    with pytest.raises(PayloadError, match=r"events\[0\]\.created_at: more than 300 s ahead"):
        proc.process([future], None, now)
    deal = {"event_id": "d", "type": "deal", "lead_id": "L1", "deal_id": "D",
            "occurred_at": "2026-03-02T11:00:00Z", "status": "won",
            "created_at": "2098-01-01T00:00:00Z", "closed_at": "2099-01-01T00:00:00Z"}  # fmt: skip
    with pytest.raises(PayloadError, match=r"events\[1\]\.created_at: more than 300 s ahead"):
        proc.process([_lead(), deal], None, now)
    closing = {**deal, "created_at": "2026-03-02T10:00:00Z"}
    with pytest.raises(PayloadError, match=r"events\[1\]\.closed_at: after as_of"):
        proc.process([_lead(), closing], _us("2026-03-02T11:30:00Z"), now)
    assert proc.store.read("L1") is None
    fine = {**deal, "created_at": "2026-03-02T10:00:00Z", "closed_at": "2026-03-02T11:00:00Z"}
    out = proc.process([_lead(), fine], None, now)
    assert out.accepted == 2 and out.scores[0]["open"] is False


def test_requests_merged_in_one_run_do_what_each_alone_in_turn_does(tmp_path, ruled):
    """`process_many` (a worker's concurrent requests): one store run, each lead rescored
    once, and per request what it would have done alone in turn (an event whose lead comes
    in the same run is applied at once instead of held): its counts, its leads' scores, its
    own mistake (nothing of it applied, the others applied)."""
    kind = ruled.spec.activity_types[0]
    requests = [
        [_lead()],
        [_act("a1", kind, "2026-03-02T10:00:00Z")],
        [_act("a0", kind, "2026-03-01T10:00:00Z")],  # before L1's creation: its own 422
        [_act("a1", kind, "2026-03-02T10:00:00Z"), _act("a2", kind, "2026-03-02T10:30:00Z")],
        [_act("b1", kind, "2026-03-02T10:00:00Z", "L2")],  # held: L2 comes in the next
        [_lead("e-L2", "L2", "2026-03-02T09:30:00Z")],
        [_act("x", kind, "not a time")],
    ]
    merged = _processor(tmp_path, ruled, "merged.sqlite")
    alone = _processor(tmp_path, ruled, "alone.sqlite")
    got = merged.process_many(requests, None, _us(NOON))
    want = []
    for events in requests:
        try:
            want.append(alone.process(events, None, _us(NOON)))
        except PayloadError as exc:
            want.append(exc)
    assert [type(g) for g in got] == [type(w) for w in want]
    assert str(got[2]) == str(want[2]) == "events[0].occurred_at: before the lead's created_at"
    assert str(got[6]) == str(want[6]) and str(got[6]).startswith("events[0].occurred_at")
    for g, w in zip(got[:4], want[:4], strict=True):
        if not isinstance(g, PayloadError):
            assert (g.accepted, g.duplicates, g.held) == (w.accepted, w.duplicates, w.held)
            assert [s["lead_id"] for s in g.scores] == [s["lead_id"] for s in w.scores]
    assert (got[3].accepted, got[3].duplicates) == (1, 1)
    # L2's event and its lead in one run: applied at once instead of held, then released
    assert [(w.accepted, w.held) for w in want[4:6]] == [(0, 1), (2, 0)]
    assert [(g.accepted, g.held) for g in got[4:6]] == [(1, 0), (1, 0)]
    # one rescore per lead: the requests on L1 share its one score, with every event in it
    assert got[0].scores[0] is got[1].scores[0] is got[3].scores[0]
    for lead in ("L1", "L2"):
        a, b = merged.store.read(lead), alone.store.read(lead)
        assert (a["activities"], a["profile"]) == (b["activities"], b["profile"])
    assert len(merged.store.read("L1")["scores"]) == 1  # rescored once
