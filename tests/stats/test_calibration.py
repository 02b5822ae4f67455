"""Calibration: monotone, and never a probability of exactly 0 or 1."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.stats.calibration import (
    Calibrator,
    choose_calibrator,
    fit_calibrator,
    probability_bounds,
)


def test_calibrated_probabilities_stay_inside_what_the_data_supports():
    """Isotonic on separable data would say 0 and 1; the bounds follow the row count."""
    raw = np.r_[np.linspace(-5, -1, 300), np.linspace(1, 5, 100)]
    y = np.r_[np.zeros(300), np.ones(100)].astype(int)
    low, high = probability_bounds(len(raw))
    assert low == pytest.approx(0.5 / 401)
    for method in ("isotonic", "platt"):
        p = fit_calibrator(raw, y, method)(np.r_[raw, -1e6, 1e6])  # far outside too
        assert p.min() == pytest.approx(low) and p.max() == pytest.approx(high)
        assert p.min() > 0 and p.max() < 1
    chosen, _ = choose_calibrator(raw, y)
    assert chosen(np.array([-1e9]))[0] > 0 and chosen(np.array([1e9]))[0] < 1


def test_a_calibrator_saved_without_bounds_keeps_strict_ones():
    old = Calibrator(method="platt", a=50.0, b=0.0)  # as loaded from an older scorer.json
    p = old(np.array([-100.0, 100.0]))
    assert 0 < p[0] < 1e-5 and 1 - 1e-5 < p[1] < 1


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown calibration method"):
        fit_calibrator(np.zeros(4), np.array([0, 1, 0, 1]), "beta")
