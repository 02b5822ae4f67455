"""`leadscore.client.Client`: chunks, retries what is safe to retry, names refusals."""

from __future__ import annotations

import json

import httpx
import pytest

from leadscore.client import Client, ScoringError
from leadscore.crm.errors import LeadscoreError


def _mock(responses: list):
    """A transport answering from a script: each item a status and JSON body, or an
    exception to raise; records the requests."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses.pop(0)
        if isinstance(item, Exception):
            raise item
        status, body = item
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler), seen


def _scores(request: httpx.Request) -> dict:
    leads = json.loads(request.content)["leads"]
    return {"as_of": "x", "scores": [{"lead_id": lead["lead_id"]} for lead in leads]}


def test_large_batches_are_chunked_in_order():
    calls = []

    def handler(request):
        calls.append(len(json.loads(request.content)["leads"]))
        assert request.headers["Authorization"] == "Bearer k"
        return httpx.Response(200, json=_scores(request))

    leads = [{"lead_id": f"L{i}"} for i in range(2_500)]
    with Client("http://scorer", "k", transport=httpx.MockTransport(handler)) as client:
        scores = client.score(leads, as_of="2026-01-01T00:00:00Z")
    assert calls == [1_000, 1_000, 500]
    assert [s["lead_id"] for s in scores] == [lead["lead_id"] for lead in leads]


def test_503_and_connection_errors_are_retried_then_succeed():
    ok = (200, {"as_of": "x", "scores": [{"lead_id": "a"}]})
    transport, seen = _mock([(503, {"error": "loading", "field": "model"}),
                             httpx.ConnectError("refused"), ok])  # fmt: skip
    with Client("http://scorer", "k", transport=transport, backoff=0) as client:
        assert client.score([{"lead_id": "a"}])[0]["lead_id"] == "a"
    assert len(seen) == 3


def test_a_refusal_is_raised_at_once_with_its_field():
    transport, seen = _mock([(422, {"error": "after as_of", "field": "leads[0].created_at"})])
    client = Client("http://scorer", "k", transport=transport, backoff=0)
    with client, pytest.raises(ScoringError) as info:
        client.score([{"lead_id": "a"}])
    assert info.value.status == 422 and info.value.field == "leads[0].created_at"
    assert len(seen) == 1  # a 4xx is not retried


def test_giving_up_says_so():
    transport, seen = _mock([httpx.ConnectError("refused")] * 3)
    client = Client("http://scorer", "k", transport=transport, backoff=0, retries=2)
    with client, pytest.raises(LeadscoreError, match="unreachable after 3 attempts"):
        client.score([{"lead_id": "a"}])
    transport, _ = _mock([(503, {"error": "loading", "field": "model"})] * 2)
    client = Client("http://scorer", "k", transport=transport, backoff=0, retries=1)
    with client, pytest.raises(ScoringError, match="503"):
        client.metadata()


def test_events_are_chunked_summed_and_a_429_is_retried_after_its_retry_after(monkeypatch):
    """A full backlog (429 with Retry-After) is waited out as the server says, then the same
    events are sent again (applied once by event_id); the chunks' answers are summed."""
    import leadscore.client as client_module

    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    calls = []

    def handler(request):
        events = json.loads(request.content)["events"]
        calls.append([e["event_id"] for e in events])
        if len(calls) == 1:
            return httpx.Response(429, json={"error": "busy", "field": "events"},
                                  headers={"Retry-After": "3"})  # fmt: skip
        return httpx.Response(200, json={"accepted": len(events), "duplicates": 0, "held": 0,
                                         "scores": [{"lead_id": events[0]["lead_id"]}]})  # fmt: skip

    events = [{"event_id": f"e{i}", "lead_id": f"L{i}"} for i in range(3)]
    with Client("http://scorer", "k", batch_size=2, backoff=0.1,
                transport=httpx.MockTransport(handler)) as client:  # fmt: skip
        applied = client.events(events)
    assert calls == [["e0", "e1"], ["e0", "e1"], ["e2"]] and slept == [3.0]
    assert applied["accepted"] == 3 and [s["lead_id"] for s in applied["scores"]] == ["L0", "L2"]
    refusing = httpx.MockTransport(
        lambda r: httpx.Response(422, json={"error": "bad", "field": "events[0].occurred_at"})
    )
    with (
        Client("http://scorer", "k", transport=refusing) as client,
        pytest.raises(ScoringError, match=r"422 .*events\[0\]\.occurred_at: bad"),
    ):
        client.events(events)
