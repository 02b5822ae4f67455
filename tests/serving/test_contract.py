"""The OpenAPI document is the contract, and the server keeps it (schemathesis)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serving.conftest import API_KEY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


OPERATIONS = [
    ("POST", "/score"),
    ("GET", "/metadata"),
    ("POST", "/events"),
    ("POST", "/accounts/score"),
    ("GET", "/leads/{lead_id}"),
]


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("method, path", OPERATIONS, ids=lambda v: str(v).strip("/"))
def test_no_server_error_and_every_response_as_documented(server, method, path, mode):
    """Generated requests, valid (positive) and not (negative), against the real server:
    never a 5xx, always a documented status with a body of the documented schema.
    Bounded: 60 requests per operation and mode, reproducible (derandomized)."""
    schema = schemathesis.openapi.from_url(f"{server['base']}/docs.json")
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {API_KEY}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case):
        case.call_and_validate(base_url=server["base"], headers=headers, checks=CHECKS)

    check()


def test_the_document_describes_the_contract(server):
    spec = httpx.get(f"{server['base']}/docs.json", timeout=30).json()
    assert spec["info"]["title"] == "leadscore" and len(spec["info"]["description"]) < 1_000
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    score = spec["paths"]["/score"]["post"]
    assert set(score["responses"]) == {"200", "400", "401", "413", "415", "422", "503"}
    assert score["security"] == [{"bearerAuth": []}]
    for status in ("400", "401", "413", "415", "422", "503"):
        ref = score["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/Error")
    assert set(spec["components"]["schemas"]["Error"]["required"]) == {"error", "field"}
    lead = spec["components"]["schemas"]["Lead"]
    assert (
        lead["properties"]["lead_id"]["description"] and lead["properties"]["lead_id"]["maxLength"]
    )
    example = score["requestBody"]["content"]["application/json"]["example"]
    assert example["leads"][0]["activities"]
    assert "Sync on purpose" not in score.get("description", "")  # no internal notes
    assert (
        "/metadata" in spec["paths"] and "InternalServerError" not in spec["components"]["schemas"]
    )
    # the documented example is a request the server accepts
    response = httpx.post(
        f"{server['base']}/score",
        json=example,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    events = spec["paths"]["/events"]["post"]
    assert set(events["responses"]) == {"200", "400", "401", "413", "415", "422", "429", "503"}
    assert "Retry-After" in events["responses"]["503"]["headers"]
    assert "Retry-After" in events["responses"]["429"]["headers"]  # the backlog at its bound
    assert spec["paths"]["/leads/{lead_id}"]["get"]["security"] == [{"bearerAuth": []}]
    example = events["requestBody"]["content"]["application/json"]["example"]
    response = httpx.post(
        f"{server['base']}/events",
        json=example,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()  # the fuzzing may have sent the example before: duplicates then
    assert body["accepted"] + body["duplicates"] == 2
