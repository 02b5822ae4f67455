"""Venn-Abers: the tabulated intervals equal the definition (two isotonic fits per score)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from leadscore.stats.calibration import fit_calibrator
from leadscore.stats.venn_abers import VennAbers, contain, fit_venn_abers


def brute_force(raw: np.ndarray, y: np.ndarray, s: float) -> tuple[float, float]:
    """The definition: isotonic regression on the calibration rows plus (s, 0), then plus
    (s, 1); the fitted values at s."""
    out = []
    for label in (0, 1):
        iso = IsotonicRegression().fit(np.r_[raw, s], np.r_[y, label])
        out.append(float(iso.predict([s])[0]))
    return out[0], out[1]


@pytest.mark.parametrize("seed", range(6))
def test_the_table_equals_two_isotonic_fits_at_every_kind_of_score(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    # Few distinct scores, so ties are common; labels loosely follow the score.
    raw = rng.integers(-6, 7, n).astype(float) / 2
    y = (rng.random(n) < 1 / (1 + np.exp(-raw))).astype(float)
    va = fit_venn_abers(raw, y)
    # Every case: below all, above all, on each score, between each pair, and just off one
    # (1e-9 off: scikit-learn pools scores closer than 1e-15 as ties).
    xs = np.unique(raw)
    probes = np.r_[xs.min() - 1, xs.max() + 1, xs, (xs[:-1] + xs[1:]) / 2, xs + 1e-9, xs - 1e-9]
    p0, p1 = va(probes)
    for s, low, high in zip(probes, p0, p1, strict=True):
        want = brute_force(raw, y, s)
        assert (low, high) == pytest.approx(want, abs=1e-12), s
        assert low <= high


def test_a_wide_interval_where_the_calibration_rows_are_few():
    rng = np.random.default_rng(1)
    raw = np.r_[rng.normal(0, 1, 5000), rng.normal(4, 0.3, 10)]  # few rows at high scores
    y = (rng.random(len(raw)) < 1 / (1 + np.exp(-(raw - 2)))).astype(float)
    va = fit_venn_abers(raw, y)
    low, high = va(np.array([0.0, 4.5]))
    assert high[0] - low[0] < 0.02
    assert high[1] - low[1] > 0.05


def test_values_stay_inside_the_bounds_and_the_table_survives_a_round_trip():
    raw = np.r_[np.linspace(-3, -1, 50), np.linspace(1, 3, 50)]
    y = np.r_[np.zeros(50), np.ones(50)]
    va = fit_venn_abers(raw, y, low=0.01, high=0.99)
    low, high = va(np.array([-10.0, 0.0, 10.0]))
    assert low.min() >= 0.01 and high.max() <= 0.99
    again = VennAbers.from_dict(va.to_dict())
    probe = np.linspace(-4, 4, 101)
    for mine, theirs in zip(again(probe), va(probe), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_the_table_keeps_steps_not_rows():
    rng = np.random.default_rng(2)
    raw = rng.normal(0, 1, 20_000)
    y = (rng.random(len(raw)) < 1 / (1 + np.exp(-raw))).astype(float)
    va = fit_venn_abers(raw, y)
    assert len(va.low) + len(va.high) < len(raw) / 4


def test_the_published_interval_contains_the_isotonic_and_the_platt_probability():
    rng = np.random.default_rng(3)
    raw = rng.normal(0, 2, 400)
    y = (rng.random(400) < 1 / (1 + np.exp(-raw))).astype(float)
    va = fit_venn_abers(raw, y)
    test = rng.normal(0, 3, 2000)
    low, high = va(test)
    iso = fit_calibrator(raw, y, "isotonic")(test)
    # Isotonic fitted on the same rows lies inside [p0, p1] (up to its clipping bound).
    assert np.all(iso >= low - 1e-9) and np.all(iso <= high + 1e-9)
    p = fit_calibrator(raw, y, "platt")(test)
    lo, hi = contain(p, low, high)
    assert np.all((lo <= p) & (p <= hi)) and np.all(lo <= low) and np.all(hi >= high)


def test_bad_calibration_rows_are_refused():
    with pytest.raises(ValueError, match="at least one row"):
        fit_venn_abers(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="finite"):
        fit_venn_abers(np.array([0.0, np.nan]), np.array([0, 1]))


def test_the_saved_table_is_plain_json():
    import json

    rng = np.random.default_rng(4)
    raw = rng.normal(0, 1, 300)
    y = (rng.random(300) < 0.3).astype(float)
    va = fit_venn_abers(raw, y)
    text = json.dumps(va.to_dict(), allow_nan=False)  # no -inf, no NaN
    again = VennAbers.from_dict(json.loads(text))
    probe = np.r_[-1e9, rng.normal(0, 2, 200), 1e9]
    for mine, theirs in zip(again(probe), va(probe), strict=True):
        np.testing.assert_array_equal(mine, theirs)
