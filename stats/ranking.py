"""Rank-based tables that do not depend on row order: tied scores share credit.

A coarse scorer (points rules, a thin model) gives many rows the same score. Cutting such a
ranking at N rows ("the top 1,674", a decile boundary, a calibration bin) by row order
would credit the rows that happen to come first. Here every cut is taken in expectation
over all orderings of the tied rows: a tie group that straddles a cut contributes the same
share of each of its rows to each side. Sums over rows (wins, revenue, probabilities) then
become exact expectations, and shuffling the rows changes nothing.
"""

from __future__ import annotations

import numpy as np


def tie_spans(score: np.ndarray, *, descending: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the rank interval [start, end) its tie group occupies (rank 0 = first)."""
    s = np.asarray(score, dtype=np.float64)
    key = -s if descending else s
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]] if len(s) else np.zeros(0, bool)
    group = np.cumsum(first) - 1
    group_start = np.flatnonzero(first)
    group_end = np.r_[group_start[1:], len(s)]
    start, end = np.empty(len(s)), np.empty(len(s))
    start[order] = group_start[group]
    end[order] = group_end[group]
    return start, end


def share_in(spans: tuple[np.ndarray, np.ndarray], lo: float, hi: float) -> np.ndarray:
    """Each row's share of the rank slots [lo, hi): 1 inside, 0 outside, and for a tie
    group that straddles a bound, the share of the group's slots that fall inside."""
    start, end = spans
    overlap = np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0.0, None)
    return overlap / np.maximum(end - start, 1.0)


def top_share(score: np.ndarray, n: int) -> np.ndarray:
    """Each row's share of the top `n` slots by `score` (highest first)."""
    return share_in(tie_spans(score), 0, n)


def equal_count_bounds(rows: int, parts: int) -> np.ndarray:
    """Slot bounds of `parts` equal-count groups (sizes differ by at most one, larger first,
    as numpy's array_split)."""
    sizes = np.full(parts, rows // parts)
    sizes[: rows % parts] += 1
    return np.r_[0, np.cumsum(sizes)]


def ranked_groups(
    score: np.ndarray, parts: int, *, descending: bool
) -> list[tuple[int, np.ndarray]]:
    """Equal-count groups of the ranking by `score`: (slots, per-row share) for each group
    that has slots, in rank order."""
    spans = tie_spans(score, descending=descending)
    bounds = equal_count_bounds(len(score), parts)
    return [
        (int(hi - lo), share_in(spans, lo, hi))
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        if hi > lo
    ]


def cumulative_wins(y: np.ndarray, ranking: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected wins among the first k rows (best first), for k = 0..n: piecewise linear
    inside each tie group."""
    y = np.asarray(y, dtype=np.float64)
    start, end = tie_spans(ranking)
    ends = np.unique(end)
    wins_by_end = np.bincount(np.searchsorted(ends, end), weights=y, minlength=len(ends))
    k = np.arange(len(y) + 1, dtype=np.float64)
    return k, np.interp(k, np.r_[0.0, ends], np.r_[0.0, np.cumsum(wins_by_end)])
