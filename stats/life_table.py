"""The age hazard of a history: how often a lead still open at each age wins within the
horizon (a life table by age), the model's calibration by age against it, and what the
probability becomes past the ages the history supports.

A model calibrated on all ages at once can be off at the old ones: few of its calibration
rows are old, a tree pools old leads with younger ones, and a calibrator's floor is the
rate of its lowest bin, young leads' rate. On a long log most of the open pipeline can be
years old with nothing happening, and a small error per lead adds up: expected wins came
out 9 times those of the history's own life table.

So training keeps, per age band of the rows the model learned from (an exact snapshot age,
or a band of ages past the configured ones: `leadscore.features.config.data_ages`), the
rows, the wins and the model's expected wins; for a band of ages, the rows and wins of the
training set's own life table (every 30 days of age, `leadscore.features.labels.
life_table_counts`), where one snapshot per lead would leave too few wins for a rate. The
probability of a lead of age `a` is multiplied by

    f(a) = (wins_a + PRIOR_WINS) / (g * expected_a + PRIOR_WINS),

the band's observed-to-expected ratio relative to a typical band's `g` (the median of the
bands' ratios weighted by their expected wins: the global calibration, fitted out of
sample, keeps its level, and only its shape across ages is corrected), shrunk toward 1 by a
prior worth PRIOR_WINS wins (a band with little evidence keeps the model's own
probability); the bands past the oldest that won are pooled (no win among all their rows
is one piece of evidence). Between bands the factor is interpolated on log(1 + age). Past
the oldest supported band (`MIN_ROWS` snapshots), the factor continues along the history's
decline of the win rate with age, `(age / oldest) ** slope`: `slope` is the slope of
log(rate) on log(age) over the oldest bands that won (weighted by their wins), never
positive (a hazard the history shows flat or rising is carried flat, never raised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_ROWS = 50  # matured snapshots a band needs to count as supported
PRIOR_WINS = 1.0  # wins of evidence that move a band's factor halfway to its own ratio
TAIL_AGES = 3  # the oldest supported bands with wins whose rates give the slope
MIN_TAIL_AGE = 30.0  # the slope is a property of old leads: younger ages stay out of it
STEEPEST = -3.0  # a slope steeper than this is taken as noise, not as a hazard


@dataclass(frozen=True)
class AgeHazard:
    """Per age band of the rows a model learned from (an exact snapshot age, or a band of
    ages): `rows`, `wins` and the model's `expected` wins (weighted when the rows were a
    weighted sample, or the life table's counts for a band), the band's mean and oldest
    age; the decline past the oldest supported band (`slope`)."""

    ages: tuple[float, ...]  # per age band: the mean age of its rows
    rows: tuple[float, ...]
    wins: tuple[float, ...]
    expected: tuple[float, ...]
    slope: float
    reach: tuple[float, ...] = ()  # per age band: its oldest row's age (() : the mean ages)

    @classmethod
    def empty(cls) -> AgeHazard:
        """No life table (a model trained before it): every factor is 1."""
        return cls((), (), (), (), 0.0)

    @property
    def supported(self) -> np.ndarray:
        return np.array(self.rows, dtype=np.float64) >= MIN_ROWS

    @property
    def rates(self) -> tuple[float, ...]:
        """The life table: wins per row at each age."""
        return tuple(w / r for w, r in zip(self.wins, self.rows, strict=True))

    @property
    def oldest(self) -> float | None:
        """The oldest age of a supported band (None: no band has enough matured snapshots)."""
        reach = np.array(self.reach or self.ages, dtype=np.float64)[self.supported]
        return float(reach.max()) if len(reach) else None

    @property
    def factors(self) -> np.ndarray:
        """Per band, the calibration factor f(a) (see the module)."""
        wins, expected = np.array(self.wins), np.array(self.expected)
        if not len(wins) or expected.sum() <= 0:
            return np.ones(len(wins))
        g = _typical_ratio(wins, expected)
        # The ages past the oldest that won hold one piece of evidence together: no win
        # among all their rows (each alone would say little).
        won = np.flatnonzero(wins > 0)
        tail = slice(won[-1] + 1 if len(won) else 0, None)
        wins, expected = wins.copy(), expected.copy()
        wins[tail], expected[tail] = wins[tail].sum(), expected[tail].sum()
        return (wins + PRIOR_WINS) / (g * expected + PRIOR_WINS)

    def factor(self, age_days: np.ndarray) -> np.ndarray:
        """Per lead, what its calibrated probability is multiplied by (NaN ages: 1)."""
        age = np.asarray(age_days, dtype=np.float64)
        out = np.ones(age.shape)
        oldest = self.oldest
        if oldest is None:
            return out
        inside = np.array(self.ages) <= oldest
        ages, factors = np.array(self.ages)[inside], self.factors[inside]
        known = np.isfinite(age)
        out[known] = np.interp(np.log1p(np.maximum(age[known], 0.0)), np.log1p(ages), factors)
        past = known & (age > oldest + 1e-9)
        out[past] *= (age[past] / max(oldest, 1.0)) ** self.slope
        return out

    def rate(self, age_days: np.ndarray) -> np.ndarray:
        """Lead age alone as a scorer: the life table's win rate at each age (the supported
        bands' rates interpolated on log(1 + age), past the oldest along the decline; NaN
        ages: the rate of every row)."""
        age = np.asarray(age_days, dtype=np.float64)
        wins, rows = np.array(self.wins), np.array(self.rows)
        supported = self.supported
        if not supported.any():
            overall = wins.sum() / rows.sum() if rows.sum() > 0 else np.nan
            return np.full(age.shape, overall)
        ages = np.array(self.ages)[supported]
        rates = wins[supported] / rows[supported]
        out = np.full(age.shape, wins.sum() / rows.sum())
        known = np.isfinite(age)
        out[known] = np.interp(np.log1p(np.maximum(age[known], 0.0)), np.log1p(ages), rates)
        oldest = self.oldest
        past = known & (age > oldest + 1e-9)
        out[past] *= (age[past] / max(oldest, 1.0)) ** self.slope
        return out

    def describe(self) -> str:
        """One sentence: what the probability of a lead past the oldest supported age is."""
        oldest = self.oldest
        if oldest is None:
            return "no lead age has enough matured snapshots for a life table"
        at_oldest = float(self.factor(np.array([oldest]))[0])
        text = (
            f"their probability is calibrated to the life table at {oldest:g} days "
            f"(x {at_oldest:.2g})"
        )
        if self.slope == 0.0:
            return text + " and carried flat: the history shows no decline with age"
        half = oldest * 0.5 ** (1 / self.slope)
        return text + (
            f" and follows the history's decline of the win rate with age "
            f"((age/{oldest:g})^{self.slope:.2f}: half at {half:,.0f} days)"
        )

    def to_dict(self) -> dict:
        return {
            "ages": list(self.ages),
            "reach": list(self.reach),
            "rows": list(self.rows),
            "wins": list(self.wins),
            "expected": list(self.expected),
            "slope": self.slope,
        }

    @classmethod
    def from_dict(cls, d: dict) -> AgeHazard:
        values = {k: tuple(float(v) for v in d[k]) for k in ("ages", "rows", "wins", "expected")}
        return cls(**values, slope=float(d["slope"]), reach=tuple(float(v) for v in d["reach"]))


def fit_age_hazard(
    age_days: np.ndarray,
    label: np.ndarray,
    probability: np.ndarray,
    bands: list[float],
    weight: np.ndarray | None = None,
    dense: dict[float, tuple[float, float]] | None = None,
) -> AgeHazard:
    """The life table of matured snapshots by age band (`bands`: the snapshot ages, each
    the start of a band up to the next): rows, wins and the model's expected wins per band
    (weighted when the rows are a weighted sample), its rows' mean and oldest age, and the
    decline of the win rate past its oldest supported bands. `dense`: band start -> (rows,
    wins) of a life table with more snapshots per lead in that band (every age the history
    matured, `leadscore.features.labels.life_table_counts`): the band's rows and wins are
    those, its expected wins the model's mean probability in the band times those rows."""
    age = np.asarray(age_days, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    w = np.ones(len(age)) if weight is None else np.asarray(weight, dtype=np.float64)
    keep = np.isfinite(age)
    # In one order whatever the rows' order: the sums are then the same to the last bit.
    order = np.lexsort((w[keep], p[keep], y[keep], age[keep]))
    age, y, p, w = (v[keep][order] for v in (age, y, p, w))
    starts = np.asarray(sorted(bands), dtype=np.float64)
    band = np.clip(np.searchsorted(starts, age + 1e-6, side="right") - 1, 0, None)
    present, inverse = np.unique(band, return_inverse=True)

    def per_band(values: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=values, minlength=len(present))

    rows, wins, expected = per_band(w), per_band(w * y), per_band(w * p)
    mean_age = per_band(w * age) / rows
    for j, k in enumerate(present):
        counted = (dense or {}).get(float(starts[k]))
        if counted is not None and counted[0] > 0:
            expected[j] *= counted[0] / rows[j]
            rows[j], wins[j] = counted
    reach = np.full(len(present), -np.inf)
    np.maximum.at(reach, inverse, age)
    return AgeHazard(
        ages=tuple(float(a) for a in mean_age),
        rows=tuple(float(v) for v in rows),
        wins=tuple(float(v) for v in wins),
        expected=tuple(float(v) for v in expected),
        slope=_tail_slope(mean_age, rows, wins),
        reach=tuple(float(a) for a in reach),
    )


def _typical_ratio(wins: np.ndarray, expected: np.ndarray) -> float:
    """The observed-to-expected ratio of a typical age: the median of the ages' ratios,
    each weighted by its expected wins (one age far off, the old ones, does not move it)."""
    keep = expected > 0
    if not keep.any() or wins.sum() <= 0:
        return 1.0
    ratio, weight = wins[keep] / expected[keep], expected[keep]
    order = np.argsort(ratio, kind="stable")
    cumulative = np.cumsum(weight[order])
    return float(ratio[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _tail_slope(ages: np.ndarray, rows: np.ndarray, wins: np.ndarray) -> float:
    usable = (rows >= MIN_ROWS) & (ages >= MIN_TAIL_AGE) & (wins > 0)
    a, n, k = ages[usable][-TAIL_AGES:], rows[usable][-TAIL_AGES:], wins[usable][-TAIL_AGES:]
    if len(a) < 2:
        return 0.0
    x, z = np.log(a), np.log(k / n)
    xm, zm = np.average(x, weights=k), np.average(z, weights=k)
    denominator = float(np.sum(k * (x - xm) ** 2))
    if denominator <= 0:
        return 0.0
    slope = float(np.sum(k * (x - xm) * (z - zm)) / denominator)
    return float(min(0.0, max(STEEPEST, slope)))
