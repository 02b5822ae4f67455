"""Per-segment calibration shrunk toward the global one (hierarchical pooling).

A model serving several product lines, regions or business units is calibrated on all of
them at once: a segment whose leads convert more (or less) than its scores say is
miscalibrated, and the smaller it is, the less its own rows can say how much. Each segment
s gets a correction on the logit scale of the globally calibrated probability p,

    logit(p_s) = (1 + b_s) * logit(p) + a_s,

with a normal prior a_s ~ N(0, tau_a^2), b_s ~ N(0, tau_b^2) shared by the segments (a
random intercept and slope). Each segment's (a_s, b_s) is its posterior mode (Newton's
method on the penalised log likelihood), so a segment with little evidence keeps nearly
the global calibration and a large one its own: shrinkage in proportion to the evidence,
where vendors refuse a segment below a minimum. The prior's scales are chosen by the
Laplace approximation of the marginal likelihood over a grid that includes 0 (no
correction at all), so the data decide whether segments differ.

A segment unknown at fit time (a new product line) or a missing value gets the global
calibration. Probabilities stay inside the calibrator's bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from leadscore.stats.calibration import logit, sigmoid

TAU_INTERCEPT = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
TAU_SLOPE = (0.0, 0.1, 0.25, 0.5)
NEWTON_STEPS = 50


@dataclass(frozen=True)
class SegmentCalibration:
    """The fitted corrections: `offsets[segment] = [a, b]`; `evidence[segment]` holds its
    calibration rows, positives and how much of its own estimate it keeps (`weight`, 0:
    the global calibration, 1: its own)."""

    column: str
    offsets: dict[str, list[float]] = field(default_factory=dict)
    tau: list[float] = field(default_factory=lambda: [0.0, 0.0])
    evidence: dict[str, dict] = field(default_factory=dict)
    low: float = 1e-6
    high: float = 1 - 1e-6

    def adjust(self, p: np.ndarray, segments) -> np.ndarray:
        """The segment-calibrated probabilities of globally calibrated `p` (one segment
        value per row; unknown or missing: unchanged)."""
        p = np.asarray(p, dtype=np.float64)
        a, b = self.coefficients(segments)
        if not (a.any() or b.any()):
            return p
        return np.clip(sigmoid((1.0 + b) * logit(p) + a), self.low, self.high)

    def coefficients(self, segments) -> tuple[np.ndarray, np.ndarray]:
        """Per row, its segment's (a, b); zeros for a segment without a correction."""
        keys = [None if v is None else str(v) for v in segments]
        a = np.array([self.offsets.get(k, (0.0, 0.0))[0] for k in keys], dtype=np.float64)
        b = np.array([self.offsets.get(k, (0.0, 0.0))[1] for k in keys], dtype=np.float64)
        return a, b

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "offsets": self.offsets,
            "tau": self.tau,
            "evidence": self.evidence,
            "low": self.low,
            "high": self.high,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SegmentCalibration:
        return cls(**data)


def fit_segment_calibration(
    p: np.ndarray,
    y: np.ndarray,
    segments,
    column: str,
    low: float = 1e-6,
    high: float = 1 - 1e-6,
) -> SegmentCalibration:
    """Fit the shrunk per-segment corrections on calibration rows: `p` the globally
    calibrated probabilities, `y` the labels, `segments` one value per row (missing values
    are left out: they keep the global calibration)."""
    p = np.clip(np.asarray(p, dtype=np.float64), low, high)
    y = np.asarray(y, dtype=np.float64)
    keys = np.array([None if v is None or v != v else str(v) for v in segments], dtype=object)
    if not (len(p) == len(y) == len(keys)):
        raise ValueError("one probability, label and segment per row")
    z = logit(p)
    names = sorted({k for k in keys if k is not None})
    rows = {name: np.flatnonzero(keys == name) for name in names}

    best = None
    for tau_a in TAU_INTERCEPT:
        for tau_b in TAU_SLOPE:
            fits = {name: _map_fit(z[i], y[i], tau_a, tau_b) for name, i in rows.items()}
            evidence = sum(f[2] for f in fits.values())
            if best is None or evidence > best[0] + 1e-9:
                best = (evidence, (tau_a, tau_b), fits)
    _, tau, fits = best if best is not None else (0.0, (0.0, 0.0), {})
    offsets, evidence = {}, {}
    for name, (theta, weight, _) in fits.items():
        i = rows[name]
        offsets[name] = [float(theta[0]), float(theta[1])]
        evidence[name] = {
            "rows": int(len(i)),
            "positives": int(y[i].sum()),
            "weight": round(float(weight), 4),
        }
    return SegmentCalibration(
        column, offsets, [float(tau[0]), float(tau[1])], evidence, float(low), float(high)
    )


def _map_fit(
    z: np.ndarray, y: np.ndarray, tau_a: float, tau_b: float
) -> tuple[np.ndarray, float, float]:
    """A segment's posterior mode of (a, b), the share of its own intercept it keeps
    (Fisher information over information plus prior precision), and its Laplace log
    marginal likelihood (both parameters free, one, or none, by which tau is 0)."""
    free = [j for j, tau in enumerate((tau_a, tau_b)) if tau > 0]
    precision = np.array([1 / tau_a**2 if tau_a > 0 else 0.0, 1 / tau_b**2 if tau_b > 0 else 0.0])
    design = np.stack([np.ones_like(z), z], axis=1)[:, free]
    prior = precision[free]
    theta = np.zeros(len(free))

    def penalised(t: np.ndarray) -> float:
        eta = z + design @ t
        # log likelihood of y under sigmoid(eta), stably: y*eta - log(1 + e^eta)
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(prior * t * t))

    value = penalised(theta)
    for _ in range(NEWTON_STEPS if free else 0):
        q = sigmoid(z + design @ theta)
        gradient = design.T @ (y - q) - prior * theta
        hessian = (design * (q * (1 - q))[:, None]).T @ design + np.diag(prior)
        step = np.linalg.solve(hessian, gradient)
        # Halve the step until the penalised likelihood does not fall (Newton can overshoot
        # on separable rows).
        for _ in range(30):
            candidate = penalised(theta + step)
            if candidate >= value - 1e-12:
                break
            step = step / 2
        else:
            break  # no step up: at the mode, up to round-off
        theta, previous, value = theta + step, value, candidate
        if abs(value - previous) < 1e-10:
            break
    full = np.zeros(2)
    full[free] = theta
    if not free:
        return full, 0.0, value
    q = sigmoid(z + design @ theta)
    hessian = (design * (q * (1 - q))[:, None]).T @ design + np.diag(prior)
    # log N(theta; 0, prior^-1) adds 0.5 * sum(log(prior / 2pi)); the Gaussian integral
    # adds (d/2) log 2pi - 0.5 log det(hessian).
    _, logdet = np.linalg.slogdet(hessian)
    log_evidence = value + 0.5 * float(np.sum(np.log(prior))) - 0.5 * logdet
    weight = 0.0
    if tau_a > 0:
        info = float(np.sum(q * (1 - q)))
        weight = info / (info + precision[0])
    return full, weight, log_evidence
