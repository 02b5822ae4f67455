"""The CRM's events (`POST /events`), checked and put in the store's form.

An event: `event_id` (the CRM's, unique: a retry sends the same), `type` (`lead`, `activity`
or `deal`), `lead_id`, `occurred_at` (when it happened in the CRM), and by type:
- `lead`: `created_at` (on the lead's first event), `source` (first touch), `profile`;
- `activity`: `activity_type`, optional `value` (a number) and `campaign`;
- `deal`: `deal_id`, `status` (open, won, lost), `created_at`, `closed_at` (null while open;
  required when won or lost), optional `amount`.

Times are ISO-8601 (UTC when they have no offset), as `/score` reads them. A mistake is a
PayloadError naming `events[i].<field>`; one mistake refuses the whole request. A profile
bigger than `leadscore.stream.bounds.Bounds` allows is a LimitError (413) naming the limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from leadscore.crm.errors import PayloadError
from leadscore.features.online import payload_time
from leadscore.stream.bounds import Bounds, LimitError

TYPES = ("lead", "activity", "deal")
STATUSES = ("open", "won", "lost")
MAX_TEXT = 1024


def normalized_events(
    events: Sequence[Mapping[str, Any]], bounds: Bounds | None = None
) -> list[dict[str, Any]]:
    """Each event checked, its times in µs since the epoch; PayloadError (LimitError for a
    bound) on the first mistake (`field` is `events[i].<name>`)."""
    bounds = bounds if bounds is not None else Bounds()
    out = []
    for i, event in enumerate(events):
        try:
            out.append(_normalized(event, bounds))
        except PayloadError as exc:
            raise type(exc)(f"events[{i}].{exc.field}", exc.problem) from exc
    return out


def _normalized(event: Mapping[str, Any], bounds: Bounds) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise PayloadError("event", "expected an object")
    event_id = _text(event.get("event_id"), "event_id", required=True)
    kind = event.get("type")
    if kind not in TYPES:
        raise PayloadError("type", f"expected one of {', '.join(TYPES)}, got {str(kind)[:40]!r}")
    out: dict[str, Any] = {
        "event_id": event_id,
        "type": kind,
        "lead_id": _text(event.get("lead_id"), "lead_id", required=True),
        "occurred_us": payload_time(event.get("occurred_at"), "occurred_at"),
    }
    if kind == "lead":
        created = event.get("created_at")
        out["created_us"] = None if created in (None, "") else payload_time(created, "created_at")
        out["source"] = _text(event.get("source"), "source")
        profile = event.get("profile") or {}
        if not isinstance(profile, Mapping):
            raise PayloadError("profile", "expected an object")
        if len(profile) > bounds.max_profile_keys:
            raise LimitError(
                "profile",
                f"{len(profile)} fields; at most {bounds.max_profile_keys} per lead "
                "(LEADSCORE_MAX_PROFILE_KEYS)",
            )
        for key, value in profile.items():
            _text(key, "profile")
            if len(key) > bounds.max_key_chars:
                raise PayloadError(
                    f"profile.{key[:40]}",
                    f"a field name of {len(key)} characters; at most {bounds.max_key_chars}",
                )
            if not (value is None or isinstance(value, str | int | float | bool)):
                raise PayloadError(f"profile.{key}", "expected text, a number or null")
            if isinstance(value, float) and not math.isfinite(value):
                raise PayloadError(f"profile.{key}", "expected a finite number")
            if isinstance(value, str):
                _text(value, f"profile.{key}", limit=bounds.max_value_chars)
        out["profile"] = dict(profile)
    elif kind == "activity":
        out["activity_type"] = _text(event.get("activity_type"), "activity_type", required=True)
        out["value"] = _number(event.get("value"), "value")
        out["campaign"] = _text(event.get("campaign"), "campaign")
    else:
        out["deal_id"] = _text(event.get("deal_id"), "deal_id", required=True)
        status = event.get("status")
        if status not in STATUSES:
            raise PayloadError("status", f"expected open, won or lost, got {str(status)[:40]!r}")
        out["status"] = status
        out["created_us"] = payload_time(event.get("created_at"), "created_at")
        closed = event.get("closed_at")
        out["closed_us"] = None if closed in (None, "") else payload_time(closed, "closed_at")
        if status != "open" and out["closed_us"] is None:
            raise PayloadError("closed_at", f"missing: a {status} deal has closed")
        if out["closed_us"] is not None and out["closed_us"] < out["created_us"]:
            raise PayloadError("closed_at", "before the deal's created_at")
        out["amount"] = _number(event.get("amount"), "amount")
    return out


def _text(value: Any, field: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise PayloadError(field, "missing or empty")
        return None
    if not isinstance(value, str):
        raise PayloadError(field, f"expected text, got {type(value).__name__}")
    if len(value) > limit:
        raise PayloadError(field, f"{len(value)} characters; at most {limit}")
    if "\x00" in value:  # no database stores it as text
        raise PayloadError(field, "contains a NUL character")
    return value


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(field, f"expected a finite number, got {str(value)[:40]!r}")
    return float(value)
