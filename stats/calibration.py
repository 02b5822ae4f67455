"""Calibration of raw scores on the validation slice (never train, never test).

Isotonic and Platt are compared by cross-fitted log loss within the validation slice (each
fold scored by a calibrator fitted on the others), so isotonic's flexibility is not
rewarded for memorising; the chosen method is then refitted on the whole slice.

Calibrated probabilities stay strictly inside (0, 1): a CRM shows 0 % or 100 % as
certainty, and n calibration rows cannot support a probability closer to 0 or 1 than about
1 / n. Every calibrator clips to [0.5 / (n + 1), 1 - 0.5 / (n + 1)] (the estimate of a
zero count among n rows with half a pseudo-count); calibrators saved before carry the old
1e-6 bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), unclipped (callers keep p inside (0, 1))."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), without overflow at large |z|."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


@dataclass(frozen=True)
class Calibrator:
    """Maps raw scores (LightGBM log-odds, rule points) to probabilities: isotonic or Platt."""

    method: str
    x: list[float] = field(default_factory=list)  # isotonic knots (raw score -> probability)
    y: list[float] = field(default_factory=list)
    a: float = 1.0  # Platt: sigmoid(a * raw + b)
    b: float = 0.0
    low: float = EPS  # probabilities are clipped to [low, high]
    high: float = 1 - EPS

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            p = np.interp(raw, self.x, self.y)
        else:
            p = sigmoid(self.a * raw + self.b)
        return np.clip(p, self.low, self.high)


def probability_bounds(rows: int) -> tuple[float, float]:
    """How close to 0 and 1 `rows` calibration rows let a probability go."""
    low = 0.5 / (rows + 1)
    return low, 1.0 - low


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str) -> Calibrator:
    """Fit one calibrator on (raw score, label) pairs."""
    raw = np.asarray(raw, dtype=np.float64)
    low, high = probability_bounds(len(raw))
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=low, y_max=high).fit(raw, y)
        return Calibrator(
            "isotonic",
            x=iso.X_thresholds_.tolist(),
            y=iso.y_thresholds_.tolist(),
            low=low,
            high=high,
        )
    if method == "platt":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
        return Calibrator(
            "platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]), low=low, high=high
        )
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
