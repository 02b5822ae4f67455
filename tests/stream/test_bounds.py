"""Every per-lead structure of the online store is bounded (`leadscore.stream.bounds`): one
event too big by itself is a LimitError (413), a lead whose state would pass a bound a
PayloadError (422); both name the event, the field and the limit, and nothing is applied."""

from __future__ import annotations

import pytest

from leadscore.crm.errors import PayloadError
from leadscore.crm.times import to_us
from leadscore.scoring.model_ref import ModelRef
from leadscore.stream.bounds import Bounds, LimitError
from leadscore.stream.processor import EventProcessor
from leadscore.stream.state import apply_lead
from leadscore.stream.stores import open_store

MODEL = ModelRef("lead-scoring", "7")
NOW = to_us("2026-11-30T12:00:00Z")
BOUNDS = Bounds(max_profile_keys=3, max_key_chars=10, max_value_chars=8, max_deals=2, max_held=2)


@pytest.fixture
def proc(tmp_path, ruled):
    return EventProcessor(
        open_store(f"sqlite:///{tmp_path / 'state.sqlite'}"), ruled, MODEL, bounds=BOUNDS
    )


def _lead(eid="c", lead_id="L", minute=0, created=True, **profile):
    e = {"event_id": eid, "type": "lead", "lead_id": lead_id,
         "occurred_at": f"2026-11-30T09:{minute:02d}:00Z", "profile": profile}  # fmt: skip
    return e | ({"created_at": "2026-11-30T09:00:00Z", "source": "web"} if created else {})


def _deal(eid, deal_id, lead_id="L"):
    return {"event_id": eid, "type": "deal", "lead_id": lead_id, "deal_id": deal_id,
            "occurred_at": "2026-11-30T10:00:00Z", "status": "open",
            "created_at": "2026-11-30T10:00:00Z"}  # fmt: skip


def test_one_event_too_big_is_a_413_naming_the_limit(proc):
    with pytest.raises(LimitError, match=r"events\[1\]\.profile: 4 fields; at most 3") as caught:
        proc.process([_lead(), _lead("u", minute=1, created=False, a=1, b=2, c=3, d=4)], None, NOW)
    assert caught.value.status == 413
    with pytest.raises(PayloadError, match=r"events\[0\]\.profile\.role: 9 characters; at most 8"):
        proc.process([_lead(role="x" * 9)], None, NOW)
    with pytest.raises(PayloadError, match=r"events\[0\]\.profile\.k{11}: a field name of 11"):
        proc.process([_lead(**{"k" * 11: 1})], None, NOW)
    assert proc.store.read("L") is None  # nothing of any of them applied


def test_a_state_past_a_bound_is_a_422_and_removals_make_room(proc):
    proc.process([_lead(a=1, b=2)], None, NOW)
    with pytest.raises(PayloadError, match=r"events\[0\]\.profile: the lead would have 4 profile"):
        proc.process([_lead("u1", minute=1, created=False, c=3, d=4)], None, NOW)
    assert proc.store.read("L")["profile"] == {"a": 1, "b": 2}
    proc.process([_lead("u2", minute=2, created=False, a=None, c=3, d=4)], None, NOW)
    assert proc.store.read("L")["profile"] == {"b": 2, "c": 3, "d": 4}
    proc.process([_deal("d1", "D1"), _deal("d2", "D2")], None, NOW)
    with pytest.raises(
        PayloadError, match=r"events\[0\]\.deal_id: the lead has 2 deals; at most 2"
    ):
        proc.process([_deal("d3", "D3")], None, NOW)


def test_events_held_for_an_unknown_lead_are_bounded(proc, ruled):
    kind = ruled.spec.activity_types[0]
    acts = [{"event_id": f"h{i}", "type": "activity", "lead_id": "U", "activity_type": kind,
             "occurred_at": f"2026-11-30T10:0{i}:00Z"} for i in range(3)]  # fmt: skip
    proc.process(acts[:2], None, NOW)
    with pytest.raises(PayloadError, match=r"events\[1\]\.lead_id: 2 events are already held"):
        proc.process([_lead("x", "V"), acts[2]], None, NOW)
    assert proc.store.held_count("U") == 2 and proc.store.read("V") is None
    out = proc.process([_lead("cu", "U"), acts[2]], None, NOW)  # the lead came: all applied
    assert out.accepted == 4 and len(proc.store.read("U")["activities"]) == 3


def test_removed_fields_keep_their_stamps_within_the_bound():
    bounds = Bounds(max_profile_keys=2)
    state = apply_lead(None, {"event_id": "c", "lead_id": "L", "occurred_us": 0,
                              "created_us": 0, "profile": {"a": 1, "b": 2}}, bounds)  # fmt: skip
    for t, key in enumerate("abcde", start=1):
        apply_lead(state, {"event_id": f"u{t}", "lead_id": "L", "occurred_us": 10 * t,
                           "profile": {key: None}}, bounds)  # fmt: skip
    assert state["profile"] == {} and sorted(state["profile_at"]) == ["d", "e"]
    # an older value of a field whose removal is still remembered does not come back
    apply_lead(state, {"event_id": "old", "lead_id": "L", "occurred_us": 45,
                       "profile": {"e": 9, "d": 8}}, bounds)  # fmt: skip
    assert state["profile"] == {"d": 8}


@pytest.mark.parametrize("bad", [{"max_profile_keys": 0}, {"max_value_chars": 5000},
                                 {"held_days": 0}, {"max_held": -1}])  # fmt: skip
def test_bounds_out_of_range_are_refused(bad):
    with pytest.raises(ValueError):
        Bounds(**bad)
