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
