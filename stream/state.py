"""A lead's state in the online store, and the CRM's events applied to it (pure: no I/O).

What the features and rules need of a lead, bounded: its profile, its deals, its activities
of the last `retention_days` before its newest one as rows, and older activities folded into
totals (`leadscore.features.carried`), plus its last scores (trend, hand-off, `GET /leads`) and the
times speed to lead is measured with. A score at `as_of` from this state equals the score
from the lead's whole history whenever `as_of` is at least `retention_days` after the
folded activities' reference time (`exact_from_us`): always for a score at or after the
lead's newest activity. The retention is at least the longest window of every feature.

Events (`POST /events`, `leadscore.stream.events`): `lead` creates or updates a lead (profile fields
merged; the first-touch `source` and `created_at` are set once), `activity` adds an
activity, `deal` opens or updates a deal (by `deal_id`). An event of a lead the store does
not know yet (an update, an activity, a deal) is held and applied when its lead arrives.

Events come out of order (retries, several CRM workers, a slow integration), so each fact
is kept with the time it became true, its stamp `[occurred_us, event_id]`: a profile field
(a removed one keeps its stamp, so an older value does not come back), a deal's version, the
first-touch source. An event replaces a fact only when its stamp is later (last writer wins
by `occurred_at`, ties by event id): the state after any arrival order is the state after
the events in time order. Activities are facts of their own, placed in time order.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from leadscore.crm.errors import PayloadError
from leadscore.crm.times import US_PER_DAY
from leadscore.features.carried import Carried
from leadscore.stream.bounds import Bounds

SCORES_KEPT = 10  # the last scores a lead's state keeps (trend, hand-off, GET /leads)


@dataclass(frozen=True)
class StateLimits:
    """What a lead's state keeps."""

    retention_days: float  # activity rows kept behind the lead's newest activity
    half_lives: tuple[float, ...]  # decay half-lives whose sums are kept for folded rows
    max_activities: int = 10_000  # rows kept; beyond, the oldest are folded early
    max_deals: int = 200

    @property
    def retention_us(self) -> int:
        return int(round(self.retention_days * US_PER_DAY))


def new_state(lead_id: str) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "created_us": None,
        "source": None,
        "profile": {},
        "activities": [],  # [t_us, activity_type, value, campaign], by time
        "deals": {},  # deal_id -> {created_us, closed_us, status, amount}
        "carried": None,  # leadscore.features.carried.Carried as JSON
        "folded_early": 0,  # rows folded before their time (the max_activities bound)
        "scores": [],  # the last SCORES_KEPT scores, by as_of
        "first_scored_us": None,
        "handoff_us": None,  # the first crossing of the hand-off line
        "first_touch_us": None,  # the first sales touch
        "refused": [],  # held events that could not be applied when their lead came
        "profile_at": {},  # field -> the stamp of its value (or of its removal)
        "source_at": None,  # the stamp of the event that gave the first-touch source
        "held_dropped": 0,  # events held for the lead too long before it came: dropped
    }


def stamp(event: Mapping[str, Any]) -> tuple[int, str]:
    """When an event's facts became true: its occurred_at, ties broken by its event id."""
    return (int(event["occurred_us"]), str(event["event_id"]))


def _newer(event_stamp: tuple[int, str], stored: list | None) -> bool:
    return stored is None or event_stamp > (int(stored[0]), str(stored[1]))


def known(state: Mapping[str, Any] | None) -> bool:
    """The store has the lead itself (a `lead` event), not only events held for it."""
    return state is not None and state.get("created_us") is not None


def apply_lead(
    state: dict[str, Any] | None, event: Mapping[str, Any], bounds: Bounds | None = None
) -> dict[str, Any]:
    """A `lead` event: creation, or an update of the profile (keys given replace the stored
    ones; a null removes one), each field only when the event is later than the field's
    stored stamp. `created_at` is set once (a different one later is refused: the
    activities were checked against it); the first-touch `source` is the one of the
    earliest event that carries `created_at` and a source (a later touch is not the first).
    A profile beyond `bounds.max_profile_keys` fields is refused, naming the limit."""
    bounds = bounds if bounds is not None else Bounds()
    state = state if state is not None else new_state(event["lead_id"])
    at = stamp(event)
    created = event.get("created_us")
    if state["created_us"] is None:
        if created is None:
            raise PayloadError("created_at", "missing: the lead's first event creates it")
        state["created_us"] = created
    elif created is not None and created != state["created_us"]:
        raise PayloadError(
            "created_at", "differs from the lead's stored created_at (a lead is created once)"
        )
    if created is not None and event.get("source") is not None:
        first = state.get("source_at")
        # a state stored before stamps (a source, no stamp) keeps its source
        earlier = state["source"] is None if first is None else at < (int(first[0]), str(first[1]))
        if earlier:
            state["source"], state["source_at"] = event["source"], list(at)
    profile, stamps = state["profile"], state.setdefault("profile_at", {})
    for key, value in (event.get("profile") or {}).items():
        if not _newer(at, stamps.get(key)):
            continue  # a later value (or removal) of this field stands
        stamps[key] = list(at)
        if value is None:
            profile.pop(key, None)
        else:
            profile[key] = value
    if len(profile) > bounds.max_profile_keys:
        raise PayloadError(
            "profile",
            f"the lead would have {len(profile)} profile fields; at most "
            f"{bounds.max_profile_keys} (LEADSCORE_MAX_PROFILE_KEYS): remove some with null",
        )
    _forget_old_removals(state, bounds)
    return state


def _forget_old_removals(state: dict[str, Any], bounds: Bounds) -> None:
    """Removed fields keep their stamps, at most `max_profile_keys` of them (the oldest
    go first: only an event older than such a removal could bring its value back)."""
    stamps, profile = state["profile_at"], state["profile"]
    removed = [k for k in stamps if k not in profile]
    extra = len(removed) - bounds.max_profile_keys
    if extra > 0:
        removed.sort(key=lambda k: (int(stamps[k][0]), str(stamps[k][1])))
        for key in removed[:extra]:
            del stamps[key]


def apply_activity(
    state: dict[str, Any], event: Mapping[str, Any], limits: StateLimits, sales: frozenset[str]
) -> None:
    """An `activity` event into a known lead's state: a row, or straight into the folded
    totals when it is older than what the state keeps as rows."""
    t = event["occurred_us"]
    if t < state["created_us"]:
        raise PayloadError("occurred_at", "before the lead's created_at")
    kind = event["activity_type"]
    carried = Carried.from_json(state["carried"])
    if carried is not None and t <= carried.ref_us:
        state["carried"] = carried.fold([kind], [t], limits.half_lives).to_json()
    else:
        rows = state["activities"]
        row = [t, kind, event.get("value"), event.get("campaign")]
        rows.insert(bisect.bisect_right([r[0] for r in rows], t), row)
    if kind in sales and (state["first_touch_us"] is None or t < state["first_touch_us"]):
        state["first_touch_us"] = t


def apply_deal(state: dict[str, Any], event: Mapping[str, Any], limits: StateLimits) -> None:
    """A `deal` event: the deal's version at the event's time replaces the stored one when
    it is later (a stale `open` arriving after `won` leaves the deal won)."""
    deals = state["deals"]
    deal_id = event["deal_id"]
    if deal_id not in deals and len(deals) >= limits.max_deals:
        raise PayloadError(
            "deal_id",
            f"the lead has {len(deals)} deals; at most {limits.max_deals} (LEADSCORE_MAX_DEALS)",
        )
    if event["created_us"] < state["created_us"]:
        raise PayloadError("created_at", "before the lead's created_at")
    at = stamp(event)
    if deal_id in deals and not _newer(at, deals[deal_id].get("at")):
        return  # a later version of this deal stands
    deals[deal_id] = {
        "created_us": event["created_us"],
        "closed_us": event.get("closed_us"),
        "status": event["status"],
        "amount": event.get("amount"),
        "at": list(at),
    }


def fold_old(state: dict[str, Any], limits: StateLimits) -> None:
    """Fold the rows older than `retention_days` before the newest activity, and the oldest
    beyond `max_activities` (those make the lead's windowed counts approximate: counted)."""
    rows = state["activities"]
    if not rows:
        return
    carried = Carried.from_json(state["carried"])
    cut = rows[-1][0] - limits.retention_us
    ref = max(cut, carried.ref_us if carried is not None else cut)
    n_old = bisect.bisect_left([r[0] for r in rows], ref + 1)  # rows at or before ref
    extra = max(0, len(rows) - n_old - limits.max_activities)
    n = n_old + extra
    if not n:
        return
    if extra:
        ref = max(ref, rows[n - 1][0])
        state["folded_early"] += extra
    old, state["activities"] = rows[:n], rows[n:]
    carried = (carried.moved_to(ref) if carried is not None else Carried(ref)).fold(
        [r[1] for r in old], [r[0] for r in old], limits.half_lives
    )
    state["carried"] = carried.to_json()


def exact_from_us(state: Mapping[str, Any], limits: StateLimits) -> int | None:
    """The earliest as_of at which the state scores the lead exactly (None: any)."""
    carried = state.get("carried")
    return None if not carried else int(carried["ref_us"]) + limits.retention_us


def is_open(state: Mapping[str, Any], as_of_us: int) -> bool:
    """Open at as_of, as `leadscore.features.labels` defines it for the batch: created at or before
    it, and no won or lost deal closed at or before it."""
    if state["created_us"] is None or state["created_us"] > as_of_us:
        return False
    return not any(
        d["status"] in ("won", "lost") and d["closed_us"] is not None and d["closed_us"] <= as_of_us
        for d in state["deals"].values()
    )


def payload(state: Mapping[str, Any]) -> dict[str, Any]:
    """The lead as the scorer reads a request's payload (times as ISO-8601 UTC text)."""
    rows = state["activities"]
    stamps = _iso([r[0] for r in rows])
    deals = list(state["deals"].items())
    created = _iso([state["created_us"]] + [d["created_us"] for _, d in deals])
    closed = _iso([d["closed_us"] for _, d in deals if d["closed_us"] is not None])
    closed_it = iter(closed)
    return {
        "lead_id": state["lead_id"],
        "created_at": created[0],
        "source": state["source"],
        "profile": state["profile"],
        "activities": [
            {"activity_type": r[1], "occurred_at": s, "value": r[2], "campaign": r[3]}
            for r, s in zip(rows, stamps, strict=True)
        ],
        "deals": [
            {
                "deal_id": deal_id,
                "created_at": c,
                "closed_at": next(closed_it) if d["closed_us"] is not None else None,
                "status": d["status"],
                "amount": d["amount"],
            }
            for (deal_id, d), c in zip(deals, created[1:], strict=True)
        ],
    }


def record_score(state: dict[str, Any], score: dict[str, Any]) -> dict[str, Any] | None:
    """Keep a score (its as_of replaces a score at the same as_of); the previous score,
    the latest before its as_of, or None."""
    scores = state["scores"]
    when = score["as_of_us"]
    before = [s for s in scores if s["as_of_us"] < when]
    previous = before[-1] if before else None
    kept = [s for s in scores if s["as_of_us"] != when] + [
        score
    ]  # kept as given: the caller may mark it
    kept.sort(key=lambda s: s["as_of_us"])
    state["scores"] = kept[-SCORES_KEPT:]
    if state["first_scored_us"] is None or when < state["first_scored_us"]:
        state["first_scored_us"] = when
    return previous


def _iso(us: list[int]) -> list[str]:
    """µs since the epoch as ISO-8601 UTC text (what the featurizer parses in bulk)."""
    if not us:
        return []
    return [s + "Z" for s in np.array(us, dtype="datetime64[us]").astype(str).tolist()]
