"""Out-of-time evaluation: discrimination, calibration, lift and capture, with intervals."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

EPS = 1e-6


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Equal-count bins of p, lowest first: rows, mean predicted and observed rate (the
    points of a calibration curve; empty bins left out)."""
    order = np.argsort(p, kind="stable")
    return [
        {
            "bin": b,
            "rows": len(chunk),
            "mean_predicted": float(p[chunk].mean()),
            "observed": float(y[chunk].mean()),
        }
        for b, chunk in enumerate(np.array_split(order, bins), start=1)
        if len(chunk)
    ]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean predicted| over equal-count bins of p."""
    error = sum(
        b["rows"] * abs(b["observed"] - b["mean_predicted"]) for b in calibration_bins(y, p, bins)
    )
    return float(error / len(y))


def gains_curve(y: np.ndarray, ranking: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of leads worked (best first by `ranking`) against share of wins captured, from
    the origin."""
    order = np.argsort(-ranking, kind="stable")
    worked = np.arange(len(y) + 1) / len(y)
    captured = np.concatenate([[0.0], np.cumsum(y[order]) / max(y.sum(), 1)])
    return worked, captured


def deciles(y: np.ndarray, p: np.ndarray) -> list[dict]:
    """Per decile of predicted probability (1 = highest): leads, wins, win rate, lift and
    cumulative capture (share of all wins in the top deciles so far)."""
    order = np.argsort(-p, kind="stable")
    total, base = y.sum(), y.mean()
    rows, captured = [], 0
    for i, chunk in enumerate(np.array_split(order, 10), start=1):
        wins = int(y[chunk].sum())
        captured += wins
        rate = wins / len(chunk) if len(chunk) else 0.0
        rows.append(
            {
                "decile": i,
                "leads": int(len(chunk)),
                "wins": wins,
                "win_rate": rate,
                "mean_probability": float(p[chunk].mean()) if len(chunk) else 0.0,
                "lift": rate / base if base else 0.0,
                "capture": captured / total if total else 0.0,
            }
        )
    return rows


def bootstrap_auc(y: np.ndarray, p: np.ndarray, n: int, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of ROC AUC over `n` bootstrap resamples of the rows.

    One sort for all resamples: a resample is a count per row; counts are summed per group
    of tied scores, and the AUC is read off cumulative sums (ties count one half), O(rows)
    per resample instead of a sort each time.
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    order = np.argsort(p, kind="stable")
    _, group = np.unique(p[order], return_inverse=True)
    is_pos = y[order].astype(bool)
    n_groups = int(group.max()) + 1
    aucs = []
    for _ in range(n):
        counts = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y))[order]
        pos = np.bincount(group, weights=counts * is_pos, minlength=n_groups)
        neg = np.bincount(group, weights=counts * ~is_pos, minlength=n_groups)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos == 0 or total_neg == 0:
            continue
        below = np.cumsum(neg) - neg  # negatives strictly below each group
        aucs.append(float(np.sum(pos * (below + 0.5 * neg)) / (total_pos * total_neg)))
    return (float(np.percentile(aucs, 2.5)), float(np.percentile(aucs, 97.5)))


def evaluate(y: np.ndarray, p: np.ndarray, *, bootstrap: int = 200, seed: int = 0) -> dict:
    """Every test metric of one scorer on the same rows."""
    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    low, high = bootstrap_auc(y, p, bootstrap, seed)
    table = deciles(y, p)
    return {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)),
        "roc_auc_ci": [low, high],
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": table[0]["lift"],
        "capture_top_decile": table[0]["capture"],
        "deciles": table,
    }
