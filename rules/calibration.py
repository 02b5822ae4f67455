"""Calibration of raw scores on the validation slice (never train, never test).

Isotonic and Platt are compared by cross-fitted log loss within the validation slice (each
fold scored by a calibrator fitted on the others), so isotonic's flexibility is not
rewarded for memorising; the chosen method is then refitted on the whole slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

EPS = 1e-6


@dataclass(frozen=True)
class Calibrator:
    """Maps raw scores (LightGBM log-odds, rule points) to probabilities: isotonic or Platt."""

    method: str
    x: list[float] = field(default_factory=list)  # isotonic knots (raw score -> probability)
    y: list[float] = field(default_factory=list)
    a: float = 1.0  # Platt: sigmoid(a * raw + b)
    b: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        return 1.0 / (1.0 + np.exp(-(self.a * raw + self.b)))


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str) -> Calibrator:
    """Fit one calibrator on (raw score, label) pairs."""
    raw = np.asarray(raw, dtype=np.float64)
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=EPS, y_max=1 - EPS).fit(raw, y)
        return Calibrator("isotonic", x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())
    if method == "platt":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
        return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    raise ValueError(f"unknown calibration method {method!r}")


def choose_calibrator(
    raw: np.ndarray, y: np.ndarray, method: str = "auto", seed: int = 0
) -> tuple[Calibrator, dict[str, float]]:
    """The calibrator to ship, and the cross-fitted validation log loss of each candidate."""
    candidates = ["isotonic", "platt"] if method == "auto" else [method]
    losses: dict[str, float] = {}
    n_splits = int(min(5, np.bincount(y.astype(int)).min()))
    if n_splits >= 2:
        folds = list(
            StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(raw.reshape(-1, 1), y)
        )
        for name in candidates:
            p = np.empty(len(y))
            for fit_idx, eval_idx in folds:
                p[eval_idx] = fit_calibrator(raw[fit_idx], y[fit_idx], name)(raw[eval_idx])
            losses[name] = float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1]))
        best = min(losses, key=losses.get)
    else:  # too few positives to cross-fit: the smoother method
        best = "platt" if "platt" in candidates else candidates[0]
    return fit_calibrator(raw, y, best), losses
