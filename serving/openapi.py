"""The OpenAPI document the CRM integrator reads (`/docs.json`, the Swagger page at `/`).

BentoML writes it from the typed signature of `/score` (`leadscore.serving.schemas`), but it gives
the service a generated README as description, lists error bodies we never send
(`InvalidArgument`, `NotFound`, `InternalServerError`) and knows nothing of our API keys or
of `/metadata`. `patch_spec` fixes those in one place; `OpenApiMiddleware` serves the
patched document.
"""

from __future__ import annotations

import json

from pydantic import TypeAdapter

from leadscore.serving.http import send_json
from leadscore.serving.schemas import (
    EXAMPLE_EVENTS,
    EXAMPLE_REQUEST,
    AccountScoreResponse,
    Error,
    EventsResponse,
    LeadState,
    Metadata,
    ScoreResponse,
)

SPEC_PATH = "/docs.json"
DESCRIPTION = (
    "Predictive lead scoring for the CRM. `POST /score` takes one lead or a batch (with "
    "profile, first-touch source, activities and deals as the CRM knows them at `as_of`) and "
    "returns, per lead, the calibrated probability of a won deal within the horizon, a 0-100 "
    "score, a grade A-D, the top reasons up and down, and marketing's points (rule score, "
    "grade, MQL flag) side by side. `POST /events` takes what happens in the CRM as it happens "
    "(leads, activities, deals; idempotent by event_id), rescores each lead touched from its "
    "stored state and hands hot leads off to the webhook at once; `GET /leads/{lead_id}` "
    "reads a lead's score from that state. `GET /metadata` describes the model being served. "
    "All need an API key: `Authorization: Bearer <key>`. Every refusal is a 4xx (503 while the "
    "model loads) with `{error, field}`, `field` naming what is wrong."
)
_REF = "#/components/schemas/{model}"
BENTOML_ERRORS = ("InvalidArgument", "NotFound", "InternalServerError", "TaskStatusResponse")


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }


SCORE_ERRORS = {
    "400": _error(
        "the body is not JSON, or not of the documented shape (a wrong type, a missing field)"
    ),
    "401": _error("no API key, or not a valid one (field: Authorization)"),
    "413": _error("too big: the body, the number of leads or of activities of a lead"),
    "415": _error("a Content-Type other than application/json"),
    "422": _error(
        "well-formed but wrong: a timestamp that is not ISO-8601 or outside 1970-2199, an "
        "event after as_of, a lead created after as_of, a duplicate lead_id, an unknown deal status"
    ),
    "503": _error("the model is not loaded yet"),
}


EVENTS_ERRORS = {
    "400": SCORE_ERRORS["400"],
    "401": SCORE_ERRORS["401"],
    "413": _error(
        "too big: the body, the number of events, or one event past a bound by itself (more "
        "profile fields than LEADSCORE_MAX_PROFILE_KEYS); the error names the limit"
    ),
    "415": SCORE_ERRORS["415"],
    "422": _error(
        "well-formed but wrong: a time that is not ISO-8601, an event, a lead's or a deal's "
        "creation or a deal's closing after as_of or too far ahead of the server's clock, an "
        "activity before its lead's creation, a won deal without closed_at, a lead whose state "
        "would pass a bound (profile fields, deals, events held for it); nothing of the "
        "request was applied"
    ),
    "429": {
        **_error(
            "the worker's backlog of events is at its bound (LEADSCORE_EVENTS_BACKLOG): nothing "
            "was applied; retry after Retry-After with the same event ids"
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    },
    "503": {
        **_error("the online store is unavailable (nothing was applied): retry after Retry-After"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    },
}


def _body(description: str, model: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


def patch_spec(spec: dict) -> dict:
    """BentoML's document made into the integrator's contract (see the module docstring)."""
    spec = json.loads(json.dumps(spec))  # a copy
    spec["info"] = {**spec.get("info", {}), "title": "leadscore", "description": DESCRIPTION}
    spec["info"].pop("contact", None)
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in BENTOML_ERRORS:
        schemas.pop(name, None)
    for name, schema in (
        ("Error", Error.model_json_schema(ref_template=_REF)),
        ("Metadata", Metadata.model_json_schema(ref_template=_REF)),
        # Returned as a plain dict (no output validation on the hot path); the contract test
        # checks real responses against this schema.
        ("ScoreResponse", TypeAdapter(ScoreResponse).json_schema(ref_template=_REF)),
        ("EventsResponse", TypeAdapter(EventsResponse).json_schema(ref_template=_REF)),
        ("LeadState", TypeAdapter(LeadState).json_schema(ref_template=_REF)),
        ("AccountScoreResponse", TypeAdapter(AccountScoreResponse).json_schema(ref_template=_REF)),
    ):
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    components["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "one of the keys in LEADSCORE_API_KEYS on the server",
        }
    }
    paths = spec.setdefault("paths", {})
    score = paths["/score"]["post"]
    score["summary"] = "Score leads"
    score["security"] = [{"bearerAuth": []}]
    score["responses"] = {
        "200": {
            "description": "one score per lead, in the order of the request",
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="ScoreResponse")}}
            },
        },
        **SCORE_ERRORS,
    }
    media = score["requestBody"]["content"]["application/json"]
    media["example"] = EXAMPLE_REQUEST
    account = paths["/accounts/score"]["post"]
    account["summary"] = "Score an account from its contacts"
    account["security"] = [{"bearerAuth": []}]
    account["responses"] = {
        "200": _body("the account's score, interval, grade and reasons", "AccountScoreResponse"),
        **SCORE_ERRORS,
        "404": _error("the loaded model has no account model (field: model)"),
    }
    events = paths["/events"]["post"]
    events["summary"] = "Events from the CRM, as they happen"
    events["security"] = [{"bearerAuth": []}]
    events["responses"] = {
        "200": _body("what was applied, and one score per lead touched", "EventsResponse"),
        **EVENTS_ERRORS,
    }
    events["requestBody"]["content"]["application/json"]["example"] = EXAMPLE_EVENTS
    paths["/leads/{lead_id}"] = {
        "get": {
            "summary": "A lead's score from its stored state",
            "description": "The lead scored from the online store's state at `as_of` (default "
            "now): probability, grade, reasons, rule score, trend, its last stored scores and "
            "its speed to lead.",
            "operationId": "leadscore__lead",
            "tags": score.get("tags", []),
            "security": [{"bearerAuth": []}],
            "parameters": [
                {
                    "name": "lead_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 1024},
                },
                {
                    "name": "as_of",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "format": "date-time", "maxLength": 64},
                },
            ],  # fmt: skip
            "responses": {
                "200": _body("the lead", "LeadState"),
                "401": SCORE_ERRORS["401"],
                "404": _error("no such lead in the online store (field: lead_id)"),
                "422": _error("an as_of that is not ISO-8601, or before what the state keeps"),
                "503": EVENTS_ERRORS["503"],
            },
        }
    }
    paths["/metadata"] = {
        "get": {
            "summary": "The model being served",
            "description": "Name, version and alias of the model, where it was loaded from "
            "(credentials masked), its feature set, calibration and the rules packed with it.",
            "operationId": "leadscore__metadata",
            "tags": score.get("tags", []),
            "security": [{"bearerAuth": []}],
            "responses": {
                "200": {
                    "description": "the model",
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model="Metadata")}}
                    },
                },
                "401": SCORE_ERRORS["401"],
                "503": SCORE_ERRORS["503"],
            },
        }
    }
    return spec


class OpenApiMiddleware:
    """Serves `patch_spec` of BentoML's `/docs.json` (computed once per worker)."""

    def __init__(self, app) -> None:
        self.app = app
        self.patched: dict | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != SPEC_PATH or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        if self.patched is None:
            status, chunks = 0, []

            async def capture(message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                else:
                    chunks.append(message.get("body", b""))

            await self.app(scope, receive, capture)
            if status != 200:
                await send_json(send, 503, {"error": "no API document yet", "field": "docs"})
                return
            self.patched = patch_spec(json.loads(b"".join(chunks)))
        await send_json(send, 200, self.patched)
