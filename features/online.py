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
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from features.definitions import (
    US_PER_DAY,
    FeatureSpec,
    Primitives,
    assemble_features,
    times_us,
    to_us,
)

_TYPE = itemgetter("activity_type")
_OCCURRED = itemgetter("occurred_at")


class PayloadError(ValueError):
    """A lead payload field is missing or malformed; `field` names it (dotted path)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class OnlineFeaturizer:
    """Computes `spec.feature_names` for one lead at a time; build once, call per request."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        # One lookup per activity gives both its type index (-1: not in the spec) and whether
        # it is a sales touch: code = 2 * (index + 1) + is_sales.
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
        out: dict[str, Any] = {}
        profile = lead.get("profile") or {}
        for col in self.spec.categorical:
            raw = lead.get("source") if col == "source" else profile.get(col)
            out[col] = _category(raw, col)
        for col in self.spec.numeric_profile:
            out[col] = _number(profile.get(col), f"profile.{col}")
        if self.spec.history:
            prims = self.primitives(lead, _time(as_of, "as_of"), strict=strict)
            out.update(
                zip(
                    self.spec.behaviour_names,
                    assemble_features(prims, self.spec)[0].tolist(),
                    strict=True,
                )
            )
        return out

    def primitives(
        self, lead: Mapping[str, Any], as_of_us: int, *, strict: bool = False
    ) -> Primitives:
        """Aggregates of one lead at `as_of_us` (arrays of length 1)."""
        created_us = _time(lead.get("created_at"), "created_at")
        if strict and created_us > as_of_us:
            raise PayloadError("created_at", "after as_of")
        n_types, n_windows = len(self.spec.activity_types), len(self.windows_us)
        acts: Sequence[Mapping[str, Any]] = lead.get("activities") or ()
        try:
            kinds = list(map(_TYPE, acts))
            stamps = list(map(_OCCURRED, acts))
        except KeyError as exc:  # which activity lacks the field, for the error message
            i = next(i for i, a in enumerate(acts) if exc.args[0] not in a)
            raise PayloadError(f"activities[{i}].{exc.args[0]}", "missing") from exc
        try:
            t = times_us(stamps)
        except (TypeError, ValueError):
            for i, stamp in enumerate(stamps):  # slow path only to name the bad row
                _time(stamp, f"activities[{i}].occurred_at")
            raise
        codes = self.codes
        code = np.fromiter(map(codes.get, kinds, repeat(0)), dtype=np.int64, count=len(kinds))
        if (code == 0).any():
            for i, kind in enumerate(kinds):
                if not isinstance(kind, str) or not kind.strip():
                    raise PayloadError(f"activities[{i}].activity_type", "missing or empty")
        past = t <= as_of_us
        if strict and not past.all():
            raise PayloadError(f"activities[{int(np.argmin(past))}].occurred_at", "after as_of")
        t, code = t[past], code[past]
        tidx, sales = code // 2 - 1, (code & 1).astype(bool)
        age = as_of_us - t
        known = tidx >= 0

        # Bucket b = index of the smallest window holding the event (w: older than all);
        # counts per window are then cumulative sums over buckets, the last one the total.
        bucket = np.searchsorted(self.windows_us, age, side="right")
        width = n_windows + 1
        per_type = np.bincount(tidx[known] * width + bucket[known], minlength=n_types * width)
        type_counts = np.cumsum(per_type.reshape(1, n_types, width), axis=2, dtype=np.float64)
        all_counts = np.cumsum(np.bincount(bucket, minlength=width), dtype=np.float64)[None, :]

        type_last = np.full((1, n_types), np.nan)
        if known.any():
            last = np.full(n_types, np.iinfo(np.int64).min)
            np.maximum.at(last, tidx[known], t[known])
            seen = last != np.iinfo(np.int64).min
            type_last[0, seen] = last[seen]

        engaged = known.copy()
        engaged[known] = ~self.sales_mask[tidx[known]]
        recent = t[age < self.active_us]
        first_touch = float(t[sales].min()) if sales.any() else math.nan
        return Primitives(
            created_us=np.array([created_us], dtype=np.float64),
            as_of_us=np.array([as_of_us], dtype=np.float64),
            type_counts=type_counts,
            type_last_us=type_last,
            all_counts=all_counts,
            last_us=np.array([float(t.max()) if len(t) else math.nan]),
            active_days=np.array([float(np.unique(recent // US_PER_DAY).size)]),
            decayed=np.array(
                [float(np.power(2.0, (t[engaged] - as_of_us) / self.half_life_us).sum())]
            ),
            first_touch_us=np.array([first_touch]),
            open_deals=np.array([float(self._open_deals(lead.get("deals") or (), as_of_us))]),
        )

    @staticmethod
    def _open_deals(deals: Sequence[Mapping[str, Any]], as_of_us: int) -> int:
        n = 0
        for i, d in enumerate(deals):
            created = _time(d.get("created_at"), f"deals[{i}].created_at")
            closed = d.get("closed_at")
            closed_us = _time(closed, f"deals[{i}].closed_at") if closed not in (None, "") else None
            if created <= as_of_us and (closed_us is None or closed_us > as_of_us):
                n += 1
        return n


def _time(value: Any, field: str) -> int:
    if value is None or value == "":
        raise PayloadError(field, "missing timestamp")
    try:
        return to_us(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError(field, f"not an ISO-8601 timestamp ({value!r})") from exc


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
        return float(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError(field, f"expected a number, got {value!r}") from exc
