"""Online engine: the same features for one lead payload, in plain Python and NumPy.

No DuckDB or pandas per call. The payload is what the CRM sends:

    {"lead_id": ..., "created_at": ..., "source": ..., "profile": {...},
     "activities": [{"activity_type": ..., "occurred_at": ...}, ...],
     "deals": [{"created_at": ..., "closed_at": ..., "status": ...}, ...]}

Only rows with a timestamp `<= as_of` count, exactly as in the batch engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import Any

import numpy as np

from leadscore.crm.errors import PayloadError
from leadscore.crm.times import US_PER_DAY, times_us, to_us
from leadscore.features.carried import Carried
from leadscore.features.definitions import (
    FeatureSpec,
    Primitives,
    assemble_features,
)

_TYPE = itemgetter("activity_type")
_OCCURRED = itemgetter("occurred_at")
_VALUE = methodcaller("get", "value")


_INT_MIN = np.iinfo(np.int64).min
_INT_MAX = np.iinfo(np.int64).max
# Timestamps a request may carry: CRM data lives after 1970 and before 2200; outside that
# the day arithmetic has no meaning (and a year 0001 or 9999 is a client's bug).
MIN_US = 0
MAX_US = to_us("2200-01-01T00:00:00+00:00")
TIME_RANGE = "a timestamp from 1970-01-01 to 2199-12-31"
DEAL_STATUSES = (None, "open", "won", "lost")


@dataclass
class OnlineBatch:
    """Features of n leads: profile columns and the behaviour matrix (spec order)."""

    categorical: dict[str, list[str | None]]
    numeric: dict[str, np.ndarray]
    behaviour: np.ndarray  # (n, len(spec.behaviour_names))
    # The parsed as_ofs and activities (None for a model without history, which never
    # reads them), so that other consumers of the same payloads (rules) do not parse again.
    as_of_us: np.ndarray | None = None
    events: PayloadEvents | None = None

    def column(self, name: str, spec: FeatureSpec) -> list:
        """One feature's values for every lead of the batch (what `row` holds of each)."""
        if name in self.categorical:
            return list(self.categorical[name])
        if name in self.numeric:
            return [float(v) for v in self.numeric[name]]
        return self.behaviour[:, spec.behaviour_index[name]].tolist()

    def row(self, i: int, spec: FeatureSpec) -> dict[str, Any]:
        """Feature name -> value for lead i."""
        out: dict[str, Any] = {c: self.categorical[c][i] for c in spec.categorical}
        out.update((c, float(self.numeric[c][i])) for c in spec.numeric_profile)
        out.update(zip(spec.behaviour_names, self.behaviour[i].tolist(), strict=True))
        return out


class OnlineFeaturizer:
    """Computes `spec.feature_names` for leads from their payloads; build once, call per
    request. One vectorised pass serves one lead or a batch."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        # One lookup per activity gives both its type index (-1: not in the spec) and whether
        # it is a sales touch: code = 2 * (index + 1) + is_sales (0: no type at all).
        touches = set(spec.sales_touch_types)
        self.codes = {t: 2 * (i + 1) + (t in touches) for i, t in enumerate(spec.activity_types)}
        self.codes.update({t: 1 for t in touches if t not in self.codes})
        self.sales_mask = spec.sales_mask
        self.windows_us = np.array([w * US_PER_DAY for w in spec.windows_days], dtype=np.int64)
        self.active_us = spec.active_days_window * US_PER_DAY
        self.half_life_us = spec.decay_half_life_days * US_PER_DAY

    def features(
        self, lead: Mapping[str, Any], as_of: Any, *, strict: bool = False
    ) -> dict[str, Any]:
        """Feature name -> value (text or None for categoricals, float for the rest).

        With `strict`, a lead created or an event dated after `as_of` is a PayloadError
        (a request's mistake) instead of being left out.
        """
        try:
            return self.batch([lead], [as_of], strict=strict).row(0, self.spec)
        except PayloadError as exc:
            raise PayloadError(exc.field, exc.problem) from exc

    def batch(
        self,
        leads: Sequence[Mapping[str, Any]],
        as_ofs: Sequence[Any],
        *,
        strict: bool = False,
        carried: Sequence[Carried | None] | None = None,
    ) -> OnlineBatch:
        """Features of many leads, each at its own as_of; `carried`: per lead, its folded
        older activities (`leadscore.features.carried`), or None."""
        spec = self.spec
        categorical: dict[str, list[str | None]] = {c: [] for c in spec.categorical}
        numeric: dict[str, list[float]] = {c: [] for c in spec.numeric_profile}
        for i, lead in enumerate(leads):
            profile = lead.get("profile") or {}
            if not isinstance(profile, Mapping):
                raise PayloadError("profile", "expected an object", i)
            for col in spec.categorical:
                categorical[col].append(
                    _category(lead.get("source") if col == "source" else profile.get(col), col)
                )
            for col in spec.numeric_profile:
                try:
                    numeric[col].append(_number(profile.get(col), f"profile.{col}"))
                except PayloadError as exc:
                    raise PayloadError(exc.field, exc.problem, i) from exc
        numbers = {c: np.asarray(v, dtype=np.float64) for c, v in numeric.items()}
        if not spec.history:
            return OnlineBatch(categorical, numbers, np.zeros((len(leads), 0)))
        as_of_us = payload_as_ofs(as_ofs)
        events = payload_events(leads, as_of_us, strict=strict)
        prims = self.primitives(leads, as_of_us, events, carried)
        return OnlineBatch(categorical, numbers, assemble_features(prims, spec), as_of_us, events)

    def primitives(
        self,
        leads: Sequence[Mapping[str, Any]],
        as_of_us: np.ndarray,
        events: PayloadEvents,
        carried: Sequence[Carried | None] | None = None,
    ) -> Primitives:
        """Aggregates of n leads (arrays of length n), from all their activities at once
        (`events`: `payload_events` of these leads) and, per lead, its folded older ones
        (`carried`: every folded activity older than every window at that lead's as_of)."""
        n = len(leads)
        n_types, width = len(self.spec.activity_types), len(self.windows_us) + 1
        created, t, lead_idx = events.created_us, events.t, events.lead
        code = np.fromiter(
            map(self.codes.get, events.kinds, repeat(0)), dtype=np.int64, count=len(t)
        )
        if (code == 0).any():
            events.check_kinds()
        past = t <= as_of_us[lead_idx]
        t, code, lead_idx = t[past], code[past], lead_idx[past]
        tidx, sales = code // 2 - 1, (code & 1).astype(bool)
        age = as_of_us[lead_idx] - t
        known = tidx >= 0
        kl, kt = lead_idx[known], tidx[known]

        # Bucket = index of the smallest window holding the event (the last: older than
        # every window); counts per window are cumulative sums over buckets.
        bucket = np.searchsorted(self.windows_us, age, side="right")
        per_type = np.bincount(
            (kl * n_types + kt) * width + bucket[known], minlength=n * n_types * width
        )
        type_counts = np.cumsum(per_type.reshape(n, n_types, width), axis=2, dtype=np.float64)
        all_counts = np.cumsum(
            np.bincount(lead_idx * width + bucket, minlength=n * width).reshape(n, width),
            axis=1,
            dtype=np.float64,
        )

        last_type = np.full(n * n_types, _INT_MIN)
        np.maximum.at(last_type, kl * n_types + kt, t[known])
        type_last = np.where(last_type == _INT_MIN, np.nan, last_type).reshape(n, n_types)
        last = np.full(n, _INT_MIN)
        np.maximum.at(last, lead_idx, t)
        first = np.full(n, _INT_MAX)
        np.minimum.at(first, lead_idx[sales], t[sales])

        recent = age < self.active_us
        day_keys = np.unique(lead_idx[recent] * 10_000_000 + t[recent] // US_PER_DAY)
        active_days = np.bincount(day_keys // 10_000_000, minlength=n)
        engaged = known.copy()
        engaged[known] = ~self.sales_mask[kt]
        decay = np.power(2.0, (t[engaged] - as_of_us[lead_idx[engaged]]) / self.half_life_us)
        # float even when no event is weighted (bincount of nothing gives integers)
        decayed = np.bincount(lead_idx[engaged], weights=decay, minlength=n).astype(np.float64)

        opens = np.empty(n)
        for i, lead in enumerate(leads):
            try:
                opens[i] = self._open_deals(lead.get("deals") or (), int(as_of_us[i]))
            except PayloadError as exc:
                raise PayloadError(exc.field, exc.problem, i) from exc
        prims = Primitives(
            created_us=created.astype(np.float64),
            as_of_us=as_of_us.astype(np.float64),
            type_counts=type_counts,
            type_last_us=type_last,
            all_counts=all_counts,
            last_us=np.where(last == _INT_MIN, np.nan, last),
            active_days=active_days,
            decayed=decayed,
            first_touch_us=np.where(first == _INT_MAX, np.nan, first),
            open_deals=opens,
        )
        if carried is not None:
            self._add_carried(prims, carried, as_of_us)
        return prims

    def _add_carried(
        self, p: Primitives, carried: Sequence[Carried | None], as_of_us: np.ndarray
    ) -> None:
        """Folded activities into the primitives: they are older than every window, so
        they count to date only, and they can move a last or first time and the decay."""
        spec = self.spec
        types, touches = spec.activity_types, spec.sales_touch_types
        engaged = [t for t, sales in zip(types, spec.sales_mask, strict=True) if not sales]
        for i, c in enumerate(carried):
            if c is None or not c.types:
                continue
            p.type_counts[i, :, -1] += c.counts(types)
            p.all_counts[i, -1] += c.total()
            p.type_last_us[i] = np.fmax(p.type_last_us[i], c.type_last(types))
            p.last_us[i] = np.fmax(p.last_us[i], c.last())
            p.first_touch_us[i] = np.fmin(p.first_touch_us[i], c.first(touches))
            p.decayed[i] += c.sums_for(engaged, spec.decay_half_life_days, int(as_of_us[i])).sum()

    @staticmethod
    def _open_deals(deals: Sequence[Mapping[str, Any]], as_of_us: int) -> int:
        if not isinstance(deals, Sequence) or isinstance(deals, str | bytes):
            raise PayloadError("deals", "expected a list of objects")
        n = 0
        for i, d in enumerate(deals):
            if not isinstance(d, Mapping):
                raise PayloadError(f"deals[{i}]", "expected an object")
            status = d.get("status")
            if not isinstance(status, str | None) or status not in DEAL_STATUSES:
                raise PayloadError(
                    f"deals[{i}].status",
                    f"unknown deal status ({str(status)[:40]!r}); expected open, won or lost",
                )
            created = _time(d.get("created_at"), f"deals[{i}].created_at")
            closed = d.get("closed_at")
            closed_us = _time(closed, f"deals[{i}].closed_at") if closed not in (None, "") else None
            if created <= as_of_us and (closed_us is None or closed_us > as_of_us):
                n += 1
        return n


@dataclass
class PayloadEvents:
    """The activities of a batch of lead payloads as flat arrays (payload order)."""

    created_us: np.ndarray  # (leads,) creation time of each lead
    lead: np.ndarray  # (activities,) position of the activity's lead in the batch
    t: np.ndarray  # (activities,) occurred_at, µs since the epoch
    kinds: list[Any]  # (activities,) activity_type as sent
    counts: np.ndarray  # (leads,) activities per lead

    def check_kinds(self) -> None:
        """PayloadError for the first activity without a usable activity_type."""
        _check_kinds(self.kinds, self.counts)


def _check_kinds(kinds: list[Any], counts: np.ndarray) -> None:
    for j, kind in enumerate(kinds):
        if not isinstance(kind, str) or not kind.strip():
            lead, k = _position(counts, j)
            problem = (
                "missing or empty"
                if kind is None or isinstance(kind, str)
                else f"expected text, got {type(kind).__name__}"
            )
            raise PayloadError(f"activities[{k}].activity_type", problem, lead)


def payload_events(
    leads: Sequence[Mapping[str, Any]], as_of_us: np.ndarray, *, strict: bool = False
) -> PayloadEvents:
    """Parse and check the creation times and activities of lead payloads, once for every
    consumer (features, rules). With `strict`, a lead created or an activity dated after
    its as_of is a PayloadError; otherwise later activities are kept (callers drop them)."""
    n = len(leads)
    created = np.empty(n, dtype=np.int64)
    kinds: list[Any] = []
    stamps: list[Any] = []
    values: list[Any] = []
    counts = np.empty(n, dtype=np.int64)
    for i, lead in enumerate(leads):
        try:
            created[i] = _time(lead.get("created_at"), "created_at")
        except PayloadError as exc:
            raise PayloadError(exc.field, exc.problem, i) from exc
        if strict and created[i] > as_of_us[i]:
            raise PayloadError("created_at", "after as_of", i)
        acts = lead.get("activities") or ()
        try:
            kinds.extend(map(_TYPE, acts))
            stamps.extend(map(_OCCURRED, acts))
            values.extend(map(_VALUE, acts))
        except (KeyError, TypeError):
            _locate_bad_activity(acts, i)
        counts[i] = len(acts)
    _check_values(values, counts)
    if set(map(type, kinds)) - {str}:  # an object or a list as activity_type
        _check_kinds(kinds, counts)
    try:
        t = times_us(stamps)
    except (TypeError, ValueError, OverflowError):
        _locate_bad_time(leads)
        raise
    if len(t) and (t.min() < MIN_US or t.max() >= MAX_US):
        _locate_bad_time(leads)
    lead_idx = np.repeat(np.arange(n), counts)
    if strict:
        past = t <= as_of_us[lead_idx]
        if not past.all():
            lead, k = _position(counts, int(np.argmin(past)))
            raise PayloadError(f"activities[{k}].occurred_at", "after as_of", lead)
    return PayloadEvents(created, lead_idx, t, kinds, counts)


def _check_values(values: list[Any], counts: np.ndarray) -> None:
    """Activity values are finite numbers or absent (NaN, Infinity and 1e999 are refused)."""
    kinds = set(map(type, values))
    if kinds <= {type(None)}:
        return
    if kinds <= {type(None), int, float}:
        numbers = np.array([v for v in values if v is not None], dtype=np.float64)
        if np.isfinite(numbers).all():
            return
    for j, v in enumerate(values):
        ok = v is None or (type(v) in (int, float) and math.isfinite(v))
        if not ok:
            lead, k = _position(counts, j)
            raise PayloadError(
                f"activities[{k}].value", f"expected a finite number, got {str(v)[:40]!r}", lead
            )


def lead_as_ofs(leads: Sequence[Mapping[str, Any]], as_of: Any) -> list[Any]:
    """One as_of per lead from a call's `as_of`: a list or tuple holds one per lead (merged
    requests), None means each lead's own `as_of` field, anything else is for every lead."""
    if isinstance(as_of, list | tuple):
        if len(as_of) != len(leads):
            raise ValueError(f"{len(as_of)} as_of values for {len(leads)} leads")
        return list(as_of)
    if as_of is None:
        return [lead.get("as_of") for lead in leads]
    return [as_of] * len(leads)


def payload_as_ofs(as_ofs: Sequence[Any]) -> np.ndarray:
    """Each lead's as_of in µs (a PayloadError names the lead)."""
    out = np.empty(len(as_ofs), dtype=np.int64)
    for i, when in enumerate(as_ofs):
        try:
            out[i] = _time(when, "as_of")
        except PayloadError as exc:
            raise PayloadError(exc.field, exc.problem, i) from exc
    return out


def _position(counts: np.ndarray, j: int) -> tuple[int, int]:
    """(lead, activity within the lead) of the j-th activity of a batch."""
    ends = np.cumsum(counts)
    lead = int(np.searchsorted(ends, j, side="right"))
    return lead, j - int(ends[lead] - counts[lead])


def _locate_bad_activity(acts: Any, lead: int) -> None:
    if not isinstance(acts, Sequence) or isinstance(acts, str | bytes):
        raise PayloadError("activities", "expected a list of activities", lead)
    for k, a in enumerate(acts):
        if not isinstance(a, Mapping):
            raise PayloadError(f"activities[{k}]", "expected an object", lead)
        for key in ("activity_type", "occurred_at"):
            if key not in a:
                raise PayloadError(f"activities[{k}].{key}", "missing", lead)
    raise PayloadError("activities", "malformed", lead)


def _locate_bad_time(leads: Sequence[Mapping[str, Any]]) -> None:
    for i, lead in enumerate(leads):
        for k, a in enumerate(lead.get("activities") or ()):
            try:
                _time(a["occurred_at"], f"activities[{k}].occurred_at")
            except PayloadError as exc:
                raise PayloadError(exc.field, exc.problem, i) from exc


def payload_time(value: Any, field: str) -> int:
    """A payload timestamp in µs: ISO-8601 text (or a datetime), within 1970-2199; a
    PayloadError naming `field` otherwise (an epoch number is refused like any non-ISO text)."""
    return _time(value, field)


def _time(value: Any, field: str) -> int:
    if value is None or value == "":
        raise PayloadError(field, "missing timestamp")
    if isinstance(value, str) and len(value) > 64:
        raise PayloadError(field, f"not an ISO-8601 timestamp ({value[:20]!r}... is too long)")
    try:
        us = to_us(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(field, f"not an ISO-8601 timestamp ({value!r})") from exc
    if not MIN_US <= us < MAX_US:
        raise PayloadError(field, f"out of range ({value!r}); expected {TIME_RANGE}")
    return us


def _category(value: Any, field: str) -> str | None:
    if value is None:
        return "unknown" if field == "source" else None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value).strip()
    if not text:
        return "unknown" if field == "source" else None
    return text


def _number(value: Any, field: str) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise PayloadError(field, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(field, f"expected a number, got {str(value)[:40]!r}") from exc
    if not math.isfinite(number):
        raise PayloadError(field, f"expected a finite number, got {value!r}")
    return number
