"""Out-of-time evaluation: discrimination, calibration, lift and capture, with intervals.

Every rank-based table takes tied scores in expectation over their orderings
(`leadscore.stats.ranking`), and every interval comes from the one bootstrap over leads
(`leadscore.stats.bootstrap`): the numbers do not depend on the order of the rows.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from leadscore.stats.bootstrap import lead_resample_weights, percentile_interval, weighted_auc
from leadscore.stats.ranking import cumulative_wins, ranked_groups

EPS = 1e-6


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Equal-count bins of p, lowest first: rows, mean predicted and observed rate (the
    points of a calibration curve). Tied probabilities that straddle a bin edge share
    their rows between the bins, so the bins do not depend on row order."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    return [
        {
            "bin": b,
            "rows": slots,
            "mean_predicted": float(share @ p / slots),
            "observed": float(share @ y / slots),
        }
        for b, (slots, share) in enumerate(ranked_groups(p, bins, descending=False), start=1)
    ]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean predicted| over equal-count bins of p."""
    error = sum(
        b["rows"] * abs(b["observed"] - b["mean_predicted"]) for b in calibration_bins(y, p, bins)
    )
    return float(error / len(y))


def gains_curve(y: np.ndarray, ranking: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of leads worked (best first by `ranking`) against the expected share of wins
    captured, from the origin (straight inside a group of tied scores)."""
    k, wins = cumulative_wins(y, ranking)
    return k / len(y), wins / max(float(np.sum(y)), 1.0)


def deciles(y: np.ndarray, p: np.ndarray) -> list[dict]:
    """Per decile of predicted probability (1 = highest): leads, wins, win rate, lift and
    cumulative capture (share of all wins in the top deciles so far). Tied scores across a
    decile edge share their wins between the deciles (expected counts)."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    total, base = y.sum(), y.mean()
    rows, captured = [], 0.0
    for i, (slots, share) in enumerate(ranked_groups(p, 10, descending=True), start=1):
        wins = float(share @ y)
        captured += wins
        rate = wins / slots
        rows.append(
            {
                "decile": i,
                "leads": slots,
                "wins": wins,
                "win_rate": rate,
                "mean_probability": float(share @ p / slots),
                "lift": rate / base if base else 0.0,
                "capture": captured / total if total else 0.0,
            }
        )
    return rows


def bootstrap_auc(
    y: np.ndarray, p: np.ndarray, n: int, seed: int = 0, groups: np.ndarray | None = None
) -> tuple[float, float]:
    """95 % interval of ROC AUC from `leadscore.stats.bootstrap`'s resampling of leads (`groups`:
    the lead of each row; each row its own lead when None); it contains the estimate."""
    if n <= 0:
        return (float("nan"), float("nan"))
    groups = np.arange(len(y)) if groups is None else groups
    draws = [weighted_auc(y, p, w) for w in lead_resample_weights(groups, y, n, seed)]
    return percentile_interval(draws, float(roc_auc_score(y, p)))


def point_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """The threshold-free metrics of one scorer on some rows, without intervals (NaN for an
    AUC when the rows hold one class only)."""
    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    both = 0 < y.sum() < len(y)
    return {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
    }


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    *,
    bootstrap: int = 200,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict:
    """Every test metric of one scorer on the same rows (`groups`: each row's lead, the
    bootstrap's resampling unit)."""
    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    low, high = bootstrap_auc(y, p, bootstrap, seed, groups)
    table = deciles(y, p)
    point = point_metrics(y, p)
    return {
        **point,
        "roc_auc_ci": [low, high],
        "lift_top_decile": table[0]["lift"],
        "capture_top_decile": table[0]["capture"],
        "deciles": table,
    }
