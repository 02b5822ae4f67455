"""Events in, leads rescored, hot leads handed off: the stream's one code path.

`EventProcessor.process` checks a request's events (shapes, bounds, no time in the future),
then in one store run (all or nothing): skips the events applied before (by `event_id`),
holds the events of leads not yet known (applied when their `lead` event comes; at most
`Bounds.max_held`, dropped and counted after `Bounds.held_days` by `upkeep`), applies the
rest to each lead's state (last writer wins by `occurred_at` for each fact: an event that
arrives late never undoes a newer one, `leadscore.stream.state`), folds
old activities, rescores every lead touched with the endpoint's scorer (one vectorised call,
`LeadScorer.payload_batch` with the folded totals), keeps the score in the lead's state and
queues it for the score history, and stages a hand-off event in the outbox for each lead
that crossed the hand-off line (`leadscore.handoff.events`: the batch's event format and crossing id).
`process_many` does the same for several requests at once (a worker's concurrent requests,
`leadscore.serving.batching.EventBatcher`): one store run, each lead rescored once, and
per request its own answer or its own mistake. A new type of event is one function in
`leadscore.stream.state` and one line in `_apply_one`.

The as_of of a rescore: the request's `as_of` when it gives one (a replay, a backfill),
else the server's clock, or the newest of the lead's events in the request when that is
later (a CRM clock a little ahead: at most `skew_s`; further ahead is refused).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leadscore.crm.errors import LeadscoreError, PayloadError
from leadscore.crm.times import US_PER_SECOND
from leadscore.features.carried import Carried
from leadscore.handoff.events import HandoffLine, crossing_id, handoff_event
from leadscore.handoff.outbox import batch_key
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.score_row import stored_row
from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.trend import trend_of
from leadscore.stream.bounds import Bounds
from leadscore.stream.events import normalized_events
from leadscore.stream.state import (
    StateLimits,
    apply_activity,
    apply_deal,
    apply_lead,
    exact_from_us,
    fold_old,
    is_open,
    known,
    payload,
    record_score,
)
from leadscore.stream.store import LeadStore

SKEW_S = 300  # how far ahead of the server's clock an event may be dated
# the times of an event that must not be in the future: (normalized name, request field)
TIMES = (("occurred_us", "occurred_at"), ("created_us", "created_at"), ("closed_us", "closed_at"))
REFUSED_KEPT = 20  # held events that could not be applied, kept per lead
LIMITS_KEY = "limits"


@dataclass
class Applied:
    """What one request did: events applied, duplicates skipped, events held, one result
    per lead touched (the /score fields, `handoff`), and the hand-off events staged."""

    accepted: int = 0
    duplicates: int = 0
    held: int = 0
    scores: list[dict[str, Any]] = field(default_factory=list)
    handoffs: list[dict[str, Any]] = field(default_factory=list)


def _named(exc: PayloadError, where: tuple[int, int]) -> PayloadError:
    """An event's mistake named `events[i].<field>` within its request, which `request`
    tells (its index among the requests of one run)."""
    k, i = where
    named = type(exc)(f"events[{i}].{exc.field}", exc.problem)
    named.request = k
    return named


def _creates(event: Mapping[str, Any]) -> bool:
    """A `lead` event that can create its lead (it carries `created_at`)."""
    return event["type"] == "lead" and event.get("created_us") is not None


def limits_for(scorer: LeadScorer, store: LeadStore, bounds: Bounds | None = None) -> StateLimits:
    """What the store must keep for this model: rows for its longest window, decayed sums
    for its and its rules' half-lives. A store that already folded activities for less is
    refused (its totals cannot be unfolded): a LeadscoreError saying what to do."""
    spec = scorer.spec
    retention = float(max([*spec.windows_days, spec.active_days_window, 1]))
    half_lives = [float(spec.decay_half_life_days)]
    if scorer.rules is not None:
        half_lives.append(float(scorer.rules.config.half_life_days))
    wanted = {"retention_days": retention, "half_lives": sorted(set(half_lives))}
    stored = store.meta(LIMITS_KEY)
    if stored is None:
        store.set_meta(LIMITS_KEY, wanted)
        stored = wanted
    short = stored["retention_days"] < retention or set(wanted["half_lives"]) - set(
        stored["half_lives"]
    )
    if short:
        raise LeadscoreError(
            f"the online store {store.url.split('@')[-1]} keeps activities as rows for "
            f"{stored['retention_days']:g} days and decayed totals for half-lives of "
            f"{stored['half_lives']} days; this model needs {retention:g} days and "
            f"{wanted['half_lives']}: serve it with a new store (--state) and replay the "
            "events into it"
        )
    return StateLimits(
        retention_days=float(stored["retention_days"]),
        half_lives=tuple(stored["half_lives"]),
        max_deals=(bounds if bounds is not None else Bounds()).max_deals,
    )


def _iso(us: int) -> str:
    return str(np.datetime64(int(us), "us")) + "Z"


class EventProcessor:
    """Applies the CRM's events to the store and rescores (build once per worker)."""

    def __init__(
        self,
        store: LeadStore,
        scorer: LeadScorer,
        model: ModelRef,
        line: HandoffLine | None = None,
        *,
        skew_s: float = SKEW_S,
        reasons: int = 3,
        bounds: Bounds | None = None,
    ) -> None:
        self.store, self.scorer, self.model = store, scorer, model
        self.line = line if line is not None else HandoffLine()
        self.bounds = bounds if bounds is not None else Bounds()
        self.limits = limits_for(scorer, store, self.bounds)
        self.sales = frozenset(scorer.spec.sales_touch_types)
        self.skew_us = int(skew_s * US_PER_SECOND)
        self.reasons = reasons

    # --- POST /events --------------------------------------------------------------

    def process(
        self, events: Sequence[Mapping[str, Any]], as_of_us: int | None, now_us: int
    ) -> Applied:
        """Apply a request's events (PayloadError: nothing applied) and rescore."""
        (result,) = self.process_many([events], as_of_us, now_us)
        if isinstance(result, PayloadError):
            raise result
        return result

    def process_many(
        self, requests: Sequence[Sequence[Mapping[str, Any]]], as_of_us: int | None, now_us: int
    ) -> list[Applied | PayloadError]:
        """Several requests' events (concurrent requests of a worker, same as_of) applied in
        one store run and rescored in one scorer call, each lead once: per request, what it
        did, or its own PayloadError (its positions its own; nothing of it applied, the
        others applied without it), as if they had come as one request (an event whose lead
        comes in the same run is applied at once, not held)."""
        results: list[Applied | PayloadError | None] = [None] * len(requests)
        norms: dict[int, list[dict[str, Any]]] = {}
        for k, events in enumerate(requests):
            try:
                norm = normalized_events(events, self.bounds)
                self._refuse_future(norm, as_of_us, now_us)
                norms[k] = norm
            except PayloadError as exc:
                results[k] = exc
        live = list(norms)
        while live:
            try:
                applied = self._run([norms[k] for k in live], as_of_us, now_us)
            except PayloadError as exc:
                k = getattr(exc, "request", None)
                if k is None and len(live) > 1:  # not one request's (a rescore's): each alone
                    for j in live:
                        results[j] = self.process_many([requests[j]], as_of_us, now_us)[0]
                    break
                results[live[k or 0]] = exc
                del live[k or 0]
                continue
            for k, one in zip(live, applied, strict=True):
                results[k] = one
            break
        return results  # type: ignore[return-value]  (every entry was set)

    def _run(self, norms: list[list[dict[str, Any]]], as_of_us, now_us) -> list[Applied]:
        merged = [e for norm in norms for e in norm]
        # each event's (request, position in it): a mistake names both
        position = {id(e): (k, i) for k, norm in enumerate(norms) for i, e in enumerate(norm)}
        lead_ids = sorted({e["lead_id"] for e in merged})
        event_ids = list(dict.fromkeys(e["event_id"] for e in merged))
        return self.store.run(
            lead_ids,
            event_ids,
            lambda txn: self._apply(txn, merged, position, len(norms), lead_ids, as_of_us, now_us),
        )

    def _refuse_future(self, norm, as_of_us: int | None, now_us: int) -> None:
        """Every time an event gives (when it happened, when its lead or deal was created or
        closed) is at or before the request's as_of, or at most `skew_s` ahead of the
        server's clock: a lead created or a deal won in 2098 is the CRM's mistake."""
        latest = as_of_us if as_of_us is not None else now_us + self.skew_us
        problem = (
            "after as_of"
            if as_of_us is not None
            else f"more than {self.skew_us // US_PER_SECOND} s ahead of the server's clock"
        )
        for i, e in enumerate(norm):
            for name, field_name in TIMES:
                value = e.get(name)
                if value is not None and value > latest:
                    raise PayloadError(f"events[{i}].{field_name}", problem)

    def _apply(self, txn, merged, position, n, lead_ids, as_of_us, now_us) -> list[Applied]:
        seen = txn.seen()
        states = txn.states()
        outs = [Applied() for _ in range(n)]

        def owner(e) -> Applied:
            return outs[position[id(e)][0]]

        fresh: dict[str, list[dict[str, Any]]] = {}
        taken: set[str] = set()
        for e in merged:
            if e["event_id"] in seen or e["event_id"] in taken:
                owner(e).duplicates += 1
                continue
            taken.add(e["event_id"])
            fresh.setdefault(e["lead_id"], []).append(e)
        touched: list[tuple[dict[str, Any], int]] = []
        for lead_id in lead_ids:
            events = fresh.get(lead_id)
            if not events:
                continue
            state = states[lead_id]
            was_known = known(state)
            # the events that create the lead go first, whatever their place in the request
            creating = [] if was_known else [e for e in events if _creates(e)]
            rest = [e for e in events if was_known or not _creates(e)]
            for e in creating:
                state = self._step(lambda s, e=e: apply_lead(s, e, self.bounds), state, e, position)
            if not known(state):
                self._hold(txn, lead_id, rest, position)
                for e in rest:
                    owner(e).held += 1
                continue
            if not was_known:  # events held for this lead, in the order they came
                for e in txn.held(lead_id):
                    try:
                        self._apply_one(state, e)
                    except PayloadError as exc:
                        state["refused"] = (
                            state["refused"]
                            + [{"event_id": e["event_id"], "reason": f"{exc.field}: {exc.problem}"}]
                        )[-REFUSED_KEPT:]
                    owner(creating[0]).accepted += 1  # the request that brought the lead
                    txn.remember([(e["event_id"], lead_id)], now_us)
                state["held_dropped"] = state.get("held_dropped", 0) + txn.dropped(lead_id)
                txn.release(lead_id)
            for e in rest:
                self._step(lambda s, e=e: self._apply_one(s, e), state, e, position)
            fold_old(state, self.limits)
            newest = max(e["occurred_us"] for e in events)
            when = as_of_us if as_of_us is not None else max(now_us, newest)
            touched.append((state, when))
            for e in events:
                owner(e).accepted += 1
            txn.remember([(e["event_id"], lead_id) for e in events], now_us)
        if touched:
            every = Applied()
            self._rescore(txn, touched, now_us, every)
            row_of = {row["lead_id"]: row for row in every.scores}
            leads_of: list[set[str]] = [set() for _ in outs]
            for e in merged:
                leads_of[position[id(e)][0]].add(e["lead_id"])
            for out, mine in zip(outs, leads_of, strict=True):  # the leads its events touched
                out.scores = [row_of[s["lead_id"]] for s, _ in touched if s["lead_id"] in mine]
                out.handoffs = [h for h in every.handoffs if h["lead_id"] in mine]
        for state, _ in touched:
            txn.put(state["lead_id"], state)
        return outs

    def _hold(self, txn, lead_id: str, events: list[dict[str, Any]], position) -> None:
        """Keep a lead's events until its lead event comes, at most `bounds.max_held`."""
        already = len(txn.held(lead_id))
        if already + len(events) > self.bounds.max_held:
            raise _named(
                PayloadError(
                    "lead_id",
                    f"{already} events are already held for lead {lead_id[:256]!r}, which the "
                    f"store does not know yet; at most {self.bounds.max_held} until its lead "
                    "event (LEADSCORE_MAX_HELD): send the lead event first",
                ),
                position[id(events[0])],
            )
        txn.hold(lead_id, events)

    def _step(self, fn, state, event, position):
        """Apply one of the request's own events; its mistake names it in the request."""
        try:
            result = fn(state)
        except PayloadError as exc:
            raise _named(exc, position[id(event)]) from exc
        return state if result is None else result

    def _apply_one(self, state: dict[str, Any], e: Mapping[str, Any]) -> None:
        """One event into a known lead's state (each type its function: a new type of
        event is one more line here and its function in `leadscore.stream.state`)."""
        if e["type"] == "lead":
            apply_lead(state, e, self.bounds)
        elif e["type"] == "activity":
            apply_activity(state, e, self.limits, self.sales)
        else:
            apply_deal(state, e, self.limits)

    # --- upkeep --------------------------------------------------------------------

    def upkeep(self, now_us: int) -> int:
        """Forget applied and delivered ids past their keeping time, and drop the events
        held longer than `bounds.held_days` for a lead that never came (counted per lead:
        `GET /leads/{id}` shows them when it comes); how many were dropped."""
        self.store.purge(now_us)
        return self.store.drop_held(now_us - self.bounds.held_us)

    # --- scoring from states ---------------------------------------------------------

    def score_states(
        self, states: list[dict[str, Any]], as_ofs: list[int], *, reasons: int | None = None
    ) -> list[dict[str, Any]]:
        """The scorer's results for leads' states at their as_ofs (the /score fields), plus
        each lead's trend from its stored scores before that as_of and whether it is open.
        A PayloadError for an as_of the state cannot score exactly."""
        for state, when in zip(states, as_ofs, strict=True):
            exact = exact_from_us(state, self.limits)
            if exact is not None and when < exact:
                raise PayloadError(
                    "as_of",
                    f"before {_iso(exact)}: the lead's activities older than "
                    f"{self.limits.retention_days:g} days before its newest are kept as totals",
                )
            if when < state["created_us"]:
                raise PayloadError("as_of", "before the lead's created_at")
        batch = self.scorer.payload_batch(
            [payload(s) for s in states],
            [_iso(w) for w in as_ofs],
            carried=[Carried.from_json(s["carried"]) for s in states],
        )
        k = self.reasons if reasons is None else reasons
        rows = self.scorer.score(batch, reasons=k, model=self.model).rows()
        for row, state, when in zip(rows, states, as_ofs, strict=True):
            earlier = [s["probability"] for s in state["scores"] if s["as_of_us"] < when]
            row["as_of"] = _iso(when)
            row["trend"] = trend_of(row["probability"], earlier)
            row["open"] = is_open(state, when)
            if self.scorer.rules is None:
                row.update(rule_score=None, rule_grade=None, mql=None)
        return rows

    def _rescore(self, txn, touched, now_us: int, out: Applied) -> None:
        states = [s for s, _ in touched]
        rows = self.score_states(states, [w for _, w in touched])
        history, handoffs = [], []
        for row, (state, when) in zip(rows, touched, strict=True):
            # the lead's own line: its experiment arm's, else the hand-off line
            line = self.line.for_lead(state["lead_id"], state["created_us"])
            above = line.above_one(row["grade"], row.get("mql"), row["probability"])
            entry = {
                "as_of_us": when,
                "probability": row["probability"],
                "score": row["score"],
                "grade": row["grade"],
                "rule_score": row.get("rule_score"),
                "rule_grade": row.get("rule_grade"),
                "mql": row.get("mql"),
                "trend": row["trend"],
                "scored_us": now_us,
                "handoff": False,
            }
            previous = record_score(state, entry)
            was_above = previous is not None and line.above_one(
                previous["grade"], previous.get("mql"), previous.get("probability")
            )
            crossed = row["open"] and above and not was_above
            if crossed:
                handoffs.append(self._handoff(row, state, previous, when, line))
                entry["handoff"] = True
                if state["handoff_us"] is None or when < state["handoff_us"]:
                    state["handoff_us"] = when
            row["handoff"] = crossed
            history.append(self._history_row(row, state, when, now_us))
        txn.record(history)
        if handoffs:
            txn.stage(batch_key(handoffs), handoffs, now_us)
        out.scores, out.handoffs = rows, handoffs

    def _handoff(self, row, state, previous, when, line) -> dict[str, Any]:
        triggers = ["crossed_handoff_line"]
        if previous is not None and previous["grade"] != row["grade"]:
            triggers.append("grade_changed")
        reasons = row.get("reasons") or {"positive": [], "negative": []}
        worded = {
            "reasons_up": [r["text"] for r in reasons["positive"]],
            "reasons_down": [r["text"] for r in reasons["negative"]],
        }
        flat = {
            **row,
            "as_of": _iso(when),
            "model_name": self.model.name,
            "model_version": self.model.version,
        }
        event = handoff_event(flat, triggers, previous["grade"] if previous else None, line, worded)
        event["event_id"] = crossing_id(
            state["lead_id"], previous["as_of_us"] if previous else None
        )
        event["created_at"] = _iso(state["created_us"])
        return event

    def _history_row(self, row, state, when: int, now_us: int) -> dict[str, Any]:
        """A row of the score history (`leadscore.scoring.score_row.STORED`), as JSON."""
        return stored_row(
            {
                **row,
                "as_of_us": when,
                "lead_id": state["lead_id"],
                "as_of": _iso(when),
                "model_name": self.model.name,
                "model_version": self.model.version,
                "feature_set_version": self.scorer.spec.version,
                "scored_at": _iso(now_us),
            }
        )

    # --- GET /leads/{id} ---------------------------------------------------------------

    def lead(self, lead_id: str, as_of_us: int) -> dict[str, Any] | None:
        """A lead's score from its stored state at as_of, its last stored scores and its
        speed to lead; None when the store does not know it."""
        state = self.store.read(lead_id)
        if not known(state):
            return None
        row = self.score_states([state], [as_of_us])[0]
        row["last_scores"] = [
            {**{k: v for k, v in s.items() if k not in ("as_of_us", "scored_us")},
             "as_of": _iso(s["as_of_us"]), "scored_at": _iso(s["scored_us"])}
            for s in state["scores"]
        ]  # fmt: skip
        row["speed_to_lead"] = speed_to_lead(state)
        row["activities_kept"] = len(state["activities"])
        row["activities_folded"] = (
            Carried.from_json(state["carried"]).total() if state["carried"] else 0
        )
        row["approximate"] = bool(state["folded_early"])
        row["refused_events"] = list(state["refused"])
        row["held_dropped"] = int(state.get("held_dropped", 0))
        return row


def speed_to_lead(state: Mapping[str, Any]) -> dict[str, Any]:
    """From the lead's creation: seconds to its first score, to its hand-off and to its
    first sales touch (None: not yet)."""
    created = state["created_us"]

    def since(us: int | None) -> float | None:
        return None if us is None else (us - created) / US_PER_SECOND

    return {
        "created_at": _iso(created),
        "first_scored_at": None
        if state["first_scored_us"] is None
        else _iso(state["first_scored_us"]),
        "handed_off_at": None if state["handoff_us"] is None else _iso(state["handoff_us"]),
        "first_sales_touch_at": None
        if state["first_touch_us"] is None
        else _iso(state["first_touch_us"]),
        "seconds_to_first_score": since(state["first_scored_us"]),
        "seconds_to_handoff": since(state["handoff_us"]),
        "seconds_to_first_sales_touch": since(state["first_touch_us"]),
    }
