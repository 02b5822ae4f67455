"""Inductive Venn-Abers intervals: `[p_low, p_high]` around each calibrated probability.

For a new raw score s, the calibration rows are fitted by isotonic regression twice, once
with (s, 0) added and once with (s, 1) added; the two fitted values at s are `p0 <= p1`
(Vovk and Petej, "Venn-Abers predictors", 2014). One of them is a valid probability for
the lead, whatever its label turns out to be: the width `p1 - p0` says how much the
calibration rows near s can tell, wide where they are few (a rare, high score) and narrow
where they are many.

Computing it for every request by two isotonic fits is out of the question on the hot
path, so the whole function is tabulated when the model is fitted: the fit at s depends
only on where s falls among the k distinct calibration scores (on one of them, or between
two), so there are 2k + 1 cases. Each is one pool-adjacent-violators merge of a new block
with the prefix's and the suffix's PAVA stacks (kept as persistent lists, so every case
starts from its own stacks), compiled with Numba. The table is stored as steps (score
thresholds, value) with equal neighbours merged, and a lookup is one `searchsorted`.

Ties among calibration scores are pooled (their labels averaged, weighted), as
scikit-learn's `IsotonicRegression` does; a new score equal to a calibration score joins
its pool. Values are clipped to the calibrator's bounds, so an interval never touches 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np


@dataclass(frozen=True)
class VennAbers:
    """The tabulated interval: `low` are the values of p0's steps, the first from the lowest
    raw score on, each next one from `low_at[j - 1]` on (inclusive); `high_at`/`high` those
    of p1. (The first step's start, -inf, is implied: JSON cannot hold it.)"""

    low_at: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high_at: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    rows: int = 0  # calibration rows it was fitted on

    def __post_init__(self) -> None:
        # Arrays for the lookups (the lists are what is saved), the first start put back.
        for name in ("low_at", "low", "high_at", "high"):
            values = np.asarray(getattr(self, name), np.float64)
            object.__setattr__(
                self, f"_{name}", np.r_[-np.inf, values] if name.endswith("_at") else values
            )

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p0, p1) for each raw score."""
        raw = np.asarray(raw, dtype=np.float64)
        i = np.searchsorted(self._low_at, raw, side="right") - 1
        j = np.searchsorted(self._high_at, raw, side="right") - 1
        return self._low[i], self._high[j]

    def to_dict(self) -> dict:
        return {
            "low_at": self.low_at,
            "low": self.low,
            "high_at": self.high_at,
            "high": self.high,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict) -> VennAbers:
        return cls(**data)


def contain(p: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interval widened, where needed, to hold the point probability `p` (a Platt or
    segment-adjusted probability can fall just outside [p0, p1]): every interval we
    publish contains its estimate."""
    return np.minimum(low, p), np.maximum(high, p)


def fit_venn_abers(
    raw: np.ndarray, y: np.ndarray, low: float = 0.0, high: float = 1.0
) -> VennAbers:
    """Tabulate the inductive Venn-Abers predictor of the calibration rows (raw, y), with
    values clipped to [low, high]."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if raw.ndim != 1 or len(raw) != len(y) or len(raw) == 0:
        raise ValueError("Venn-Abers needs one raw score per label, and at least one row")
    if not np.isfinite(raw).all():
        raise ValueError("Venn-Abers needs finite raw scores")
    xs, inverse = np.unique(raw, return_inverse=True)
    weight = np.bincount(inverse).astype(np.float64)
    total = np.bincount(inverse, weights=y)
    p0, p1 = _table(weight, total)
    # Where each of the 2k + 1 cases starts: case 2g is the gap below xs[g] (from just
    # above xs[g - 1]), case 2g + 1 is xs[g] itself.
    starts = np.empty(2 * len(xs) + 1)
    starts[0] = -np.inf
    starts[1::2] = xs
    starts[2::2] = np.nextafter(xs, np.inf)
    low_at, low_v = _steps(starts, np.clip(p0, low, high))
    high_at, high_v = _steps(starts, np.clip(p1, low, high))
    return VennAbers(low_at, low_v, high_at, high_v, rows=int(len(raw)))


def _steps(starts: np.ndarray, values: np.ndarray) -> tuple[list[float], list[float]]:
    """Consecutive equal values merged into one step; the starts but the first (-inf)."""
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return starts[keep][1:].tolist(), values[keep].tolist()


@numba.njit(cache=True)
def _stacks(weight, total, order, sign, node_w, node_s, node_next, used):
    """The PAVA stack of each prefix of the groups taken in `order`, as persistent lists in
    the node arrays from `used` on: `tops[j]` is the top block after j groups (-1: empty).
    sign 1 scans left to right (a top block merges while its mean >= the new one's), -1
    right to left (while <=). Returns the tops and the nodes now used."""
    tops = np.empty(len(order) + 1, dtype=np.int64)
    head = -1
    tops[0] = -1
    for j in range(len(order)):
        w, s = weight[order[j]], total[order[j]]
        while head >= 0 and sign * (node_s[head] * w - s * node_w[head]) >= 0:
            w += node_w[head]
            s += node_s[head]
            head = node_next[head]
        node_w[used], node_s[used], node_next[used] = w, s, head
        head = used
        used += 1
        tops[j + 1] = head
    return tops, used


@numba.njit(cache=True)
def _table(weight: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p0 and p1 of the 2k + 1 cases from the k pooled calibration scores (weight: rows,
    total: positives), in order of score."""
    k = len(weight)
    # Persistent PAVA stacks: node j holds a block (w, s) and the node below it.
    node_w = np.empty(2 * k + 2)
    node_s = np.empty(2 * k + 2)
    node_next = np.empty(2 * k + 2, dtype=np.int64)
    forward = np.arange(k)
    # left[i]: the stack of groups [0, i), its top the rightmost block; right[i]: that of
    # groups [i, k), its top the leftmost block.
    left, used = _stacks(weight, total, forward, 1.0, node_w, node_s, node_next, 0)
    from_right, used = _stacks(weight, total, forward[::-1], -1.0, node_w, node_s, node_next, used)
    right = from_right[::-1]
    p = np.empty((2, 2 * k + 1))
    for label in range(2):
        for case in range(2 * k + 1):
            g = case // 2
            if case % 2 == 0:  # between groups g - 1 and g
                w, s = 1.0, float(label)
                lt, rt = left[g], right[g]
            else:  # on group g
                w, s = weight[g] + 1.0, total[g] + label
                lt, rt = left[g], right[g + 1]
            while True:
                if lt >= 0 and node_s[lt] * w > s * node_w[lt]:
                    w += node_w[lt]
                    s += node_s[lt]
                    lt = node_next[lt]
                elif rt >= 0 and node_s[rt] * w < s * node_w[rt]:
                    w += node_w[rt]
                    s += node_s[rt]
                    rt = node_next[rt]
                else:
                    break
            p[label, case] = s / w
    return p[0], p[1]
