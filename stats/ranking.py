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


def day_index(as_of) -> np.ndarray:
    """Each row's calendar day (UTC) as an integer: the rows of one day are the leads open
    that day (at the snapshot ages they had then)."""
    values = np.asarray(as_of)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[D]").astype(np.int64)
    import pandas as pd

    utc = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).tz_localize(None)
    return utc.to_numpy().astype("datetime64[D]").astype(np.int64)


def same_day_auc(y: np.ndarray, score: np.ndarray, day: np.ndarray) -> float:
    """ROC AUC among the rows of each day (tied scores count half a pair), averaged over the
    days that have both outcomes, each weighted by its wins; NaN when no day has both.

    A ranking pooled over snapshots of every age is mostly the age mix (old leads rarely
    win); marketing chooses among the leads open on the same day, so this is the skill that
    decides a hand-off. Independent of row order."""
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    d = np.asarray(day)
    if not len(y):
        return float("nan")
    order = np.lexsort((s, d))
    ds, ss, ys = d[order], s[order], y[order]
    n = len(ys)
    new_day = np.r_[True, ds[1:] != ds[:-1]]
    new_tie = new_day | np.r_[True, ss[1:] != ss[:-1]]
    day_of = np.cumsum(new_day) - 1
    day_start = np.flatnonzero(new_day)
    tie_of = np.cumsum(new_tie) - 1
    tie_start = np.flatnonzero(new_tie)
    tie_end = np.r_[tie_start[1:], n]
    # the average rank (from 1) of each row's tie group inside its day
    rank = (tie_start[tie_of] + tie_end[tie_of] - 1) / 2.0 - day_start[day_of] + 1.0
    days = len(day_start)
    rows = np.bincount(day_of, minlength=days).astype(np.float64)
    wins = np.bincount(day_of, weights=ys, minlength=days)
    rank_sum = np.bincount(day_of, weights=rank * ys, minlength=days)
    both = (wins > 0) & (wins < rows)
    if not both.any():
        return float("nan")
    losses = rows[both] - wins[both]
    auc = (rank_sum[both] - wins[both] * (wins[both] + 1) / 2.0) / (wins[both] * losses)
    return float(np.average(auc, weights=wins[both]))


def top_share_by_day(score: np.ndarray, matched: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Each row's share of the top slots of its own day by `score`, a day having as many
    slots as `matched` (another scorer's picks, 0 to 1 per row) adds up to on that day: a
    hand-off matched day by day."""
    score = np.asarray(score, dtype=np.float64)
    matched = np.asarray(matched, dtype=np.float64)
    out = np.zeros(len(score))
    day = np.asarray(day)
    order = np.argsort(day, kind="stable")
    bounds = np.flatnonzero(np.r_[True, day[order][1:] != day[order][:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        rows = order[lo:hi]
        out[rows] = top_share(score[rows], float(matched[rows].sum()))
    return out
