"""One bootstrap for every interval that `train` and `compare` show.

Resampling unit: the lead. A lead's snapshots are not independent (same person, same
outcome), so they are drawn together. The draw is stratified: leads with a win and leads
without are each resampled in their own numbers, so every resample has both classes and
the base rate stays put. Leads are taken in sorted-id order, so the draws (and every
interval) do not depend on the order of the rows.

Intervals are 95 % percentile intervals, widened when needed to contain their own
estimate: a percentile interval can miss a biased statistic's estimate (lift of a coarse
scorer), and an interval that excludes the number printed next to it is never shown.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def lead_resample_weights(
    lead_ids: np.ndarray, y: np.ndarray, n: int, seed: int = 0
) -> Iterator[np.ndarray]:
    """`n` stratified bootstrap resamples over leads, each as a per-row count (how many
    times the row's lead was drawn)."""
    _, lead = np.unique(np.asarray(lead_ids).astype(str), return_inverse=True)
    lead = lead.ravel()
    n_leads = int(lead.max()) + 1 if len(lead) else 0
    won = np.bincount(lead, weights=np.asarray(y, dtype=np.float64), minlength=n_leads) > 0
    strata = [np.flatnonzero(won), np.flatnonzero(~won)]
    rng = np.random.default_rng(seed)
    for _ in range(n):
        counts = np.zeros(n_leads, dtype=np.int64)
        for members in strata:
            if len(members):
                counts += np.bincount(
                    members[rng.integers(0, len(members), len(members))], minlength=n_leads
                )
        yield counts[lead]


def percentile_interval(draws: list[float], estimate: float) -> tuple[float, float]:
    """95 % percentile interval of the draws, widened to contain `estimate`."""
    values = np.asarray([d for d in draws if np.isfinite(d)], dtype=np.float64)
    if not len(values) or not np.isfinite(estimate):
        return (float("nan"), float("nan"))
    low, high = np.percentile(values, [2.5, 97.5])
    return (float(min(low, estimate)), float(max(high, estimate)))


def weighted_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> float:
    """ROC AUC with integer row weights (ties count one half), in one pass over the rows
    sorted once by score: O(rows), no sort per resample."""
    order = np.argsort(score, kind="stable")
    _, group = np.unique(np.asarray(score)[order], return_inverse=True)
    w = np.asarray(weights, dtype=np.float64)[order]
    is_pos = np.asarray(y)[order].astype(bool)
    groups = int(group.max()) + 1 if len(group) else 0
    pos = np.bincount(group, weights=w * is_pos, minlength=groups)
    neg = np.bincount(group, weights=w * ~is_pos, minlength=groups)
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (pos.sum() * neg.sum()))


# --- rates and totals over leads ------------------------------------------------------------
# A rate of leads (processed / handed off, won / leads) resamples leads: each lead falls in
# one of three cells (outside the denominator, in it but not the numerator, in both), so a
# resample of n leads is a multinomial draw of the three cells' counts, exact and O(draws)
# whatever the number of leads.

RATE_DRAWS = 2_000


def rate_interval(
    numerator: int, denominator: int, leads: int, draws: int = RATE_DRAWS, seed: int = 0
) -> tuple[float, float]:
    """95 % bootstrap interval over `leads` leads of the rate numerator / denominator (the
    numerator's leads are among the denominator's, which are among `leads`); it contains
    the estimate. NaN when the denominator is 0."""
    if not (0 <= numerator <= denominator <= leads):
        raise ValueError(f"need 0 <= {numerator} <= {denominator} <= {leads}")
    if denominator == 0:
        return (float("nan"), float("nan"))
    cells = np.array([leads - denominator, denominator - numerator, numerator]) / leads
    counts = np.random.default_rng(seed).multinomial(leads, cells, size=draws)
    den = counts[:, 1] + counts[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts[:, 2] / den
    return percentile_interval(list(rates), numerator / denominator)


def total_interval(
    amounts: np.ndarray, leads: int, draws: int = RATE_DRAWS, seed: int = 0
) -> tuple[float, float]:
    """95 % bootstrap interval over `leads` leads of a total carried by a few of them
    (`amounts`: one per lead that has one, the revenue of each won lead); it contains the
    estimate."""
    amounts = np.asarray(amounts, dtype=np.float64)
    total = float(amounts.sum())
    if leads == 0:
        return (float("nan"), float("nan"))
    if not len(amounts):
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    carriers = rng.binomial(leads, len(amounts) / leads, size=draws)
    sums = [float(amounts[rng.integers(0, len(amounts), k)].sum()) for k in carriers]
    return percentile_interval(sums, total)
