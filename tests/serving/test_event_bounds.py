"""POST /events under a real CRM's mistakes, on the real server: an event past a bound is a
413 or a 422 naming the event, the field and the limit; a date in the future is refused
naming its field; a stale deal never reopens a lead; events held for a lead that never
comes are dropped after LEADSCORE_HELD_DAYS, counted in /metrics and shown when it comes."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.serving.conftest import API_KEY

HELD_S = 2.0  # how long events wait for their lead here


@pytest.fixture(scope="module")
def bounded(registry, tmp_path_factory):
    from leadscore.serving.process import Server

    root, uri = registry
    folder = tmp_path_factory.mktemp("bounded_server")
    env = {
        "MLFLOW_TRACKING_URI": uri,
        "LEADSCORE_API_KEYS": API_KEY,
        "BENTOML_HOME": str(folder / "bentoml"),
        "LEADSCORE_STATE_URL": f"sqlite:///{folder / 'state.sqlite'}",
        "LEADSCORE_MAX_PROFILE_KEYS": "5",
        "LEADSCORE_HELD_DAYS": str(HELD_S / 86_400),
    }
    with Server(env=env, cwd=root, log_path=folder / "server.log", workers=1) as running:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        client = httpx.Client(base_url=running.base, headers=headers, timeout=60)
        try:
            yield client
        finally:
            client.close()


def _lead(lead_id, **extra):
    return {"event_id": f"{lead_id}-new", "type": "lead", "lead_id": lead_id,
            "occurred_at": "2026-11-30T09:00:00Z", "created_at": "2026-11-30T09:00:00Z",
            "source": "website"} | extra  # fmt: skip


def _post(api, events):
    return api.post("/events", json={"events": events})


def test_bounds_and_future_dates_are_refused_naming_the_field(bounded):
    too_many = _lead("B1", profile={f"k{i}": i for i in range(6)})
    r = _post(bounded, [too_many])
    assert r.status_code == 413, r.text
    assert r.json()["field"] == "events[0].profile" and "at most 5" in r.json()["error"]
    r = _post(bounded, [_lead("B1", profile={"a": 1}), _lead("B1", event_id="u", created_at=None,
              occurred_at="2026-11-30T09:01:00Z", profile={f"k{i}": i for i in range(5)})])  # fmt: skip
    assert r.status_code == 422 and r.json()["field"] == "events[1].profile"
    assert "would have 6 profile fields; at most 5" in r.json()["error"]
    r = _post(bounded, [_lead("B2", created_at="2098-01-01T00:00:00Z")])
    assert r.status_code == 422 and r.json()["field"] == "events[0].created_at"
    deal = {"event_id": "d", "type": "deal", "lead_id": "B2", "deal_id": "D",
            "occurred_at": "2026-11-30T10:00:00Z", "status": "won",
            "created_at": "2098-01-01T00:00:00Z", "closed_at": "2099-01-01T00:00:00Z"}  # fmt: skip
    r = _post(bounded, [_lead("B2"), deal])
    assert r.status_code == 422 and r.json()["field"] == "events[1].created_at"
    assert bounded.get("/leads/B1").status_code == 404  # nothing of any of them applied
    assert bounded.get("/leads/B2").status_code == 404


def test_a_stale_deal_does_not_reopen_the_lead(bounded):
    won = {"event_id": "w", "type": "deal", "lead_id": "S1", "deal_id": "D",
           "occurred_at": "2026-11-30T11:40:00Z", "status": "won",
           "created_at": "2026-11-30T10:00:00Z", "closed_at": "2026-11-30T11:40:00Z"}  # fmt: skip
    stale = won | {"event_id": "o", "occurred_at": "2026-11-30T11:00:00Z", "status": "open",
                   "closed_at": None}  # fmt: skip
    r = _post(bounded, [_lead("S1"), won, stale])
    assert r.status_code == 200 and r.json()["scores"][0]["open"] is False
    assert bounded.get("/leads/S1").json()["open"] is False


def _dropped(api) -> float:
    text = api.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("leadscore_held_events_dropped_total")
    )


def test_events_held_too_long_are_dropped_counted_and_shown(bounded):
    act = {"event_id": "g1", "type": "activity", "lead_id": "GONE",
           "occurred_at": "2026-11-30T09:30:00Z", "activity_type": "page_view"}  # fmt: skip
    assert _post(bounded, [act]).json()["held"] == 1
    deadline = time.monotonic() + 10 * HELD_S + 60
    while _dropped(bounded) < 1:  # the upkeep drops it after HELD_S
        assert time.monotonic() < deadline, "the held event was never dropped"
        time.sleep(0.2)
    missing = bounded.get("/leads/GONE")
    assert missing.status_code == 404 and "1 held events dropped" in missing.json()["error"]
    r = _post(bounded, [_lead("GONE")])
    assert r.status_code == 200 and r.json()["accepted"] == 1  # the dropped one is not applied
    got = bounded.get("/leads/GONE").json()
    assert got["held_dropped"] == 1 and got["activities_kept"] == 0
