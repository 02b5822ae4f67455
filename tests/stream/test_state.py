"""A lead's state and the events applied to it (`leadscore.stream.state`), pure: each fact
replaced only by a later event, and states stored before facts had stamps still updated."""

from __future__ import annotations

from leadscore.stream.state import StateLimits, apply_deal, apply_lead

LIMITS = StateLimits(retention_days=90.0, half_lives=(30.0,))


def _lead(eid, t, **extra):
    return {"event_id": eid, "lead_id": "L", "occurred_us": t} | extra


def _deal(eid, t, status, closed=None):
    return {"event_id": eid, "lead_id": "L", "occurred_us": t, "deal_id": "D", "status": status,
            "created_us": 5, "closed_us": closed}  # fmt: skip


def test_each_fact_is_replaced_only_by_a_later_event():
    state = apply_lead(None, _lead("c", 0, created_us=0, source="web", profile={"role": "a"}))
    apply_lead(state, _lead("u2", 20, profile={"role": "c"}))
    apply_lead(state, _lead("u1", 10, profile={"role": "b", "size": 5}))  # late: role stays
    assert state["profile"] == {"role": "c", "size": 5}
    apply_lead(state, _lead("u3", 20, profile={"role": "d"}))  # same time: larger id wins
    apply_lead(state, _lead("u0", 20, profile={"role": "z"}))
    assert state["profile"]["role"] == "d"
    apply_lead(state, _lead("c-early", -1, created_us=0, source="partner"))
    assert state["source"] == "partner"  # the earliest creating event is the first touch
    apply_deal(state, _deal("won", 50, "won", closed=50), LIMITS)
    apply_deal(state, _deal("open", 30, "open"), LIMITS)
    assert state["deals"]["D"]["status"] == "won"


def test_a_state_stored_before_stamps_is_updated_and_keeps_its_source():
    legacy = {"lead_id": "L", "created_us": 0, "source": "web", "profile": {"role": "a"},
              "activities": [], "carried": None, "folded_early": 0, "scores": [],
              "first_scored_us": None, "handoff_us": None, "first_touch_us": None,
              "refused": [],
              "deals": {"D": {"created_us": 5, "closed_us": None, "status": "open",
                              "amount": None}}}  # fmt: skip
    apply_lead(legacy, _lead("u", 10, created_us=0, source="partner", profile={"role": "b"}))
    apply_deal(legacy, _deal("won", 50, "won", closed=50), LIMITS)
    assert legacy["profile"] == {"role": "b"} and legacy["source"] == "web"
    assert legacy["deals"]["D"]["status"] == "won" and legacy["deals"]["D"]["at"] == [50, "won"]
