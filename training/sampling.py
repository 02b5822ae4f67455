"""Negative sampling by lead: how a training set larger than memory is fitted.

Past `TrainConfig.max_fit_rows` rows, the rows a booster learns from are sampled by lead:
every lead with a win among them keeps all its snapshots; of the other leads a share `r`
is kept whole (a lead's snapshots stay together, as the leakage audit's folds keep them),
and their rows are weighted `1 / r`, so that the weighted rows have the win rate and the
class balance of the whole. What is held out is never sampled: calibration is fitted, and
every metric computed, on the whole validation and test rows (or, for the shipped model,
on the whole out-of-time calibration windows), so a sampling bias would show there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FitRows:
    """The rows a booster learns from (positions into the frame) and their weights (None:
    not sampled, every weight 1)."""

    rows: np.ndarray
    weights: np.ndarray | None
    rate: float  # the share of win-less leads kept (1.0: not sampled)

    @property
    def sampled(self) -> bool:
        return self.weights is not None

    def note(self, total: int) -> str:
        """What was done, for the run's warnings."""
        return (
            f"{total:,} training rows are more than max_fit_rows: the booster learned from "
            f"{len(self.rows):,} (every lead with a win, {self.rate:.1%} of the others "
            f"weighted {1 / self.rate:.2f}); calibration and metrics use every held-out row"
        )


def fit_rows(
    lead_ids: pd.Series, labels: np.ndarray, rows: np.ndarray, cap: int | None, seed: int
) -> FitRows:
    """The rows of `rows` to fit on, at most about `cap` of them (None: no cap).

    Args:
        lead_ids, labels: of the whole frame; `rows` are positions into it.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if cap is None or len(rows) <= cap:
        return FitRows(rows, None, 1.0)
    lead = pd.factorize(lead_ids.to_numpy()[rows])[0]
    won = np.zeros(lead.max() + 1, dtype=bool)
    won[lead[np.asarray(labels)[rows] == 1]] = True
    kept_rows = int(won[lead].sum())
    other_rows = len(rows) - kept_rows
    rate = min(1.0, max(cap - kept_rows, 0) / max(other_rows, 1))
    if rate >= 1.0:
        return FitRows(rows, None, 1.0)
    # At least one win-less lead, so that the booster sees negatives of every kind.
    rate = max(rate, 1.0 / max(int((~won).sum()), 1))
    draw = np.random.default_rng(seed).random(len(won))
    keep_lead = won | (draw < rate)
    keep = keep_lead[lead]
    weights = np.where(won[lead], 1.0, 1.0 / rate)[keep]
    return FitRows(rows[keep], weights, rate)
