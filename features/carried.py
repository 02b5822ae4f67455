"""Folded history: a lead's old activities kept as aggregates instead of rows.

The online lead state (`stream`) keeps a lead's activities of the last `retention_days` as
rows, which every windowed feature needs, and folds older ones into `Carried`: per activity
type, how many, the first and the last time, and for each decay half-life in use the sum of
`2 ** ((t - ref) / half_life)` at a reference time `ref` (every folded activity is at or
before it). That is all a feature or a rule reads of an activity older than every window:
counts to date, days since the last of a type, the first sales touch, decayed engagement,
the rules' decayed points and their last engaging activity. Exactness: a score at `as_of`
from rows plus `Carried` equals the score from every row whenever `as_of - ref` is at least
the longest window (the caller keeps that; `leadscore.stream.state`).

Per type *name*, not per position of one model's spec: a model trained on other activity
types (or sales touches) reads the same aggregates. A decay half-life that was not kept when
the activities were folded cannot be rebuilt: `sums_for` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import US_PER_DAY


def half_life_key(days: float) -> str:
    """The key of a half-life in `Carried.decayed` (the same for 14 and 14.0)."""
    return repr(float(days))


@dataclass
class TypeHistory:
    """The folded activities of one type."""

    n: int = 0
    first_us: int | None = None
    last_us: int | None = None
    decayed: dict[str, float] = field(default_factory=dict)  # half-life key -> sum at ref


@dataclass
class Carried:
    """A lead's folded activities: per type, at the reference time `ref_us`."""

    ref_us: int
    types: dict[str, TypeHistory] = field(default_factory=dict)

    def fold(
        self, kinds: Sequence[str], t_us: Sequence[int], half_lives: Iterable[float]
    ) -> Carried:
        """These activities added (each at or before `ref_us`), with a decayed sum for
        every half-life of `half_lives`. Order-free: folding in any order gives the same
        aggregates (up to the rounding of a sum)."""
        keys = [(half_life_key(h), float(h) * US_PER_DAY) for h in half_lives]
        for kind, t in zip(kinds, t_us, strict=True):
            t = int(t)
            if t > self.ref_us:
                raise ValueError("an activity after the reference time cannot be folded")
            h = self.types.setdefault(kind, TypeHistory())
            h.n += 1
            h.first_us = t if h.first_us is None else min(h.first_us, t)
            h.last_us = t if h.last_us is None else max(h.last_us, t)
            for key, hl_us in keys:
                h.decayed[key] = h.decayed.get(key, 0.0) + 2.0 ** ((t - self.ref_us) / hl_us)
        return self

    def moved_to(self, ref_us: int) -> Carried:
        """The same aggregates at a later reference time (the decayed sums decayed on)."""
        if ref_us < self.ref_us:
            raise ValueError("the reference time of folded activities only moves forward")
        factor_days = (self.ref_us - ref_us) / US_PER_DAY
        for h in self.types.values():
            h.decayed = {k: v * 2.0 ** (factor_days / float(k)) for k, v in h.decayed.items()}
        self.ref_us = ref_us
        return self

    def sums_for(self, types: Sequence[str], half_life_days: float, as_of_us: int) -> np.ndarray:
        """Per type of `types`, the decayed sum of its folded activities at `as_of_us`."""
        key = half_life_key(half_life_days)
        out = np.zeros(len(types))
        if not self.types:
            return out
        scale = 2.0 ** ((self.ref_us - as_of_us) / (float(half_life_days) * US_PER_DAY))
        for j, kind in enumerate(types):
            h = self.types.get(kind)
            if h is None or not h.n:
                continue
            if key not in h.decayed:
                raise LeadscoreError(
                    f"the lead's folded history keeps decayed sums for half-lives of "
                    f"{sorted(float(k) for k in h.decayed)} days, not {float(half_life_days):g}: "
                    "a model or rules with another half-life need the history replayed"
                )
            out[j] = h.decayed[key] * scale
        return out

    def counts(self, types: Sequence[str]) -> np.ndarray:
        return np.array([self._get(k).n for k in types], dtype=np.float64)

    def total(self) -> int:
        return sum(h.n for h in self.types.values())

    def last(self, types: Sequence[str] | None = None) -> float:
        """The last folded activity (of `types`, or of any type); NaN when none."""
        times = [
            h.last_us
            for k, h in self.types.items()
            if h.last_us is not None and (types is None or k in types)
        ]
        return float(max(times)) if times else np.nan

    def first(self, types: Sequence[str]) -> float:
        times = [h.first_us for k, h in self.types.items() if h.first_us is not None and k in types]
        return float(min(times)) if times else np.nan

    def type_last(self, types: Sequence[str]) -> np.ndarray:
        return np.array(
            [np.nan if self._get(k).last_us is None else float(self._get(k).last_us) for k in types]
        )

    def _get(self, kind: str) -> TypeHistory:
        return self.types.get(kind) or TypeHistory()

    # --- storage --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "ref_us": self.ref_us,
            "types": {k: [h.n, h.first_us, h.last_us, h.decayed] for k, h in self.types.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Carried | None:
        if not data:
            return None
        return cls(
            int(data["ref_us"]),
            {
                k: TypeHistory(int(n), first, last, {h: float(v) for h, v in sums.items()})
                for k, (n, first, last, sums) in data["types"].items()
            },
        )
