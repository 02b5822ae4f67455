"""The online store's three adapters, for real: SQLite, PostgreSQL (a throwaway cluster) and
Redis (a throwaway redis-server): the same events applied once, held, handed off once and
delivered; concurrent workers applying the same events; a store that goes down refuses
with StoreUnavailable, applies nothing, and takes the CRM's retry when it is back."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from leadscore.crm.errors import StoreUnavailable
from leadscore.crm.times import to_us
from leadscore.handoff.delivery import StreamDelivery
from leadscore.handoff.outbox import StoreOutbox
from leadscore.scoring.model_ref import ModelRef
from leadscore.stream.processor import EventProcessor
from leadscore.stream.stores import open_store
from tests.handoff.test_delivery import Receiver

MODEL = ModelRef("lead-scoring", "7")


def _lead(lead_id, at):
    return {"event_id": f"{lead_id}-new", "type": "lead", "lead_id": lead_id, "occurred_at": at,
            "created_at": at, "source": "partner",
            "profile": {"job_role": "c_level", "company_size": "1000+", "industry": "software"}}  # fmt: skip


def _acts(lead_id, kinds, t0, n):
    return [
        {"event_id": f"{lead_id}-a{i}", "type": "activity", "lead_id": lead_id,
         "occurred_at": str(np.datetime64(t0 + (i + 1) * 60_000_000, "us")) + "Z",
         "activity_type": kinds[i % len(kinds)]}
        for i in range(n)
    ]  # fmt: skip


def _hot(ruled):
    rules = ruled.rules.config.activities
    return sorted((t for t in rules if rules[t].points > 0), key=lambda t: -rules[t].points)[:4]


START = "2026-11-30T09:00:00Z"
LATER = to_us("2026-11-30T12:00:00Z")


def test_every_store_applies_once_holds_and_hands_off_once(backend, ruled):
    kind, url, _ = backend
    proc = EventProcessor(open_store(url), ruled, MODEL)
    acts = _acts("L1", _hot(ruled), to_us(START), 8)
    held = proc.process(acts[:2], None, LATER)  # before their lead: held
    assert (held.held, held.accepted) == (2, 0) and proc.store.held_count("L1") == 2
    out = proc.process([_lead("L1", START), *acts[2:]], None, LATER)
    assert out.accepted == 9 and proc.store.held_count("L1") == 0  # the 2 held, 7 new
    assert len(out.handoffs) == 1 and out.scores[0]["handoff"]
    again = proc.process([_lead("L1", START), *acts], None, LATER)
    assert (again.accepted, again.duplicates, again.handoffs) == (0, 9, [])
    assert len(proc.store.read("L1")["activities"]) == 8
    assert proc.store.outbox_size() == 1
    rows = proc.store.history_rows(100)
    assert [r["lead_id"] for r in rows] == ["L1"]
    proc.store.history_done(rows)
    assert proc.store.history_rows(100) == []
    # the batch's outbox adapter stages into the same outbox: the same crossing is kept once
    box = StoreOutbox(proc.store)
    assert box.stage(out.handoffs, 100) == 0
    with Receiver() as up:
        from leadscore.handoff.delivery import WebhookSender

        delivery = StreamDelivery(proc.store, WebhookSender(up.url, "s", max_attempts=1))
        assert delivery.run_once() == 1
        assert delivery.run_once() == 0
    assert len(up.received) == 1 and proc.store.outbox_size() == 0
    assert box.stage(out.handoffs, 100) == 0  # delivered ids are remembered


def test_concurrent_workers_apply_the_same_events_once(backend, ruled):
    kind, url, _ = backend
    EventProcessor(open_store(url), ruled, MODEL).process([_lead("C1", START)], None, LATER)
    acts = _acts("C1", ["page_view", "email_open"], to_us(START), 30)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        proc = EventProcessor(open_store(url), ruled, MODEL)  # a worker: its own connection
        rng = np.random.default_rng(seed)
        try:
            for i in rng.permutation(len(acts)):
                proc.process([acts[i]], None, LATER)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    state = open_store(url).read("C1")
    assert len(state["activities"]) == 30


def test_a_store_down_refuses_and_takes_the_retry(backend, ruled, tmp_path):
    kind, url, server = backend
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'not-yet' / 'state.sqlite'}"
        with pytest.raises(StoreUnavailable, match="the online store .* is unavailable"):
            EventProcessor(open_store(url), ruled, MODEL)
        (tmp_path / "not-yet").mkdir()
        proc = EventProcessor(open_store(url), ruled, MODEL)
        proc.process([_lead("D1", START)], None, LATER)
        return
    proc = EventProcessor(open_store(url), ruled, MODEL)
    proc.process([_lead("D1", START)], None, LATER)
    events = _acts("D1", ["page_view"], to_us(START), 3)
    (server.stop if kind == "postgresql" else server.kill)()
    try:
        with pytest.raises(StoreUnavailable) as caught:
            proc.process(events, None, LATER)
        assert "leadscore@" not in str(caught.value) or "***" in str(caught.value)
    finally:
        server.start()
    deadline = time.monotonic() + 20
    while True:  # the CRM's retry, with the same event ids
        try:
            out = proc.process(events, None, LATER)
            break
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert (out.accepted, out.duplicates) == (3, 0)
    assert len(proc.store.read("D1")["activities"]) == 3
