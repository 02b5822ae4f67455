"""A lead's trend: the one rule for the batch run's score history and the event stream.

The change of the lead's log-odds from the mean of its up to `TREND_RUNS` previous scores,
against a noise-aware threshold: the larger of `MIN_LOG_ODDS_CHANGE` (0.2, odds x/÷ 1.22)
and twice the spread (sample standard deviation) of those previous log-odds, so that a lead
whose score always wobbles needs a bigger move. Above it: improving; below minus it:
declining; otherwise steady. Fewer than `MIN_PREVIOUS` earlier scores: "not enough history".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TREND_RUNS = 3
MIN_PREVIOUS = 2
MIN_LOG_ODDS_CHANGE = 0.2
NOT_ENOUGH = "not enough history"
TRENDS = ("improving", "steady", "declining", NOT_ENOUGH)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def trend_labels(
    current: np.ndarray, mean: np.ndarray, std: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Per lead: its trend from its current probability and the mean, sample standard
    deviation (NaN for one score) and number of its previous log-odds."""
    change = logit(current) - np.asarray(mean, dtype=np.float64)
    threshold = np.maximum(MIN_LOG_ODDS_CHANGE, 2 * np.nan_to_num(np.asarray(std, dtype=float)))
    labels = np.where(
        change > threshold, "improving", np.where(change < -threshold, "declining", "steady")
    ).astype(object)
    labels[~(np.asarray(count) >= MIN_PREVIOUS)] = NOT_ENOUGH
    return labels


def trend_of(probability: float, previous: Sequence[float]) -> str:
    """One lead's trend from its previous probabilities, oldest first (the last
    `TREND_RUNS` count)."""
    recent = logit(np.asarray(list(previous)[-TREND_RUNS:], dtype=np.float64))
    if len(recent) < MIN_PREVIOUS:
        return NOT_ENOUGH
    return str(
        trend_labels(
            np.array([probability]),
            np.array([recent.mean()]),
            np.array([recent.std(ddof=1)]),
            np.array([len(recent)]),
        )[0]
    )
