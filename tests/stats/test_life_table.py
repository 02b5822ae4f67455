"""The life table by age band, the calibration by age against it, and the hazard's decline
past the oldest supported age."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.stats.life_table import MIN_ROWS, AgeHazard, fit_age_hazard


def _snapshots(rates: dict[float, float], rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ages = np.repeat(list(rates), rows).astype(float)
    labels = (rng.random(len(ages)) < np.repeat(list(rates.values()), rows)).astype(int)
    return ages, labels


def test_the_life_table_counts_each_band_and_is_independent_of_row_order():
    ages, labels = _snapshots({0: 0.2, 30: 0.1, 90: 0.05}, 400)
    ages[-100:] += np.linspace(0, 50, 100)  # the band from 90 holds ages of its own
    p = np.full(len(ages), 0.1)
    hazard = fit_age_hazard(ages, labels, p, [0, 30, 90])
    assert hazard.rows == (400.0, 400.0, 400.0) and hazard.expected == pytest.approx((40, 40, 40))
    assert hazard.wins == tuple(float(labels[(ages >= lo) & (ages < hi)].sum())
                                for lo, hi in ((0, 30), (30, 90), (90, 1e9)))  # fmt: skip
    assert hazard.reach[2] == 140.0 and 90 < hazard.ages[2] < 140
    assert hazard.oldest == 140.0  # the oldest row of the oldest supported band
    order = np.random.default_rng(1).permutation(len(ages))
    assert fit_age_hazard(ages[order], labels[order], p[order], [0, 30, 90]) == hazard
    assert AgeHazard.from_dict(hazard.to_dict()) == hazard


def test_an_age_the_model_overrates_is_brought_down_to_the_life_table_and_the_rest_kept():
    # the model says 2 % at every age; the history: 2 % up to 90 days, 0.2 % at a year
    ages, labels = _snapshots({0: 0.02, 30: 0.02, 90: 0.02, 365: 0.002}, 20_000, seed=4)
    hazard = fit_age_hazard(ages, labels, np.full(len(ages), 0.02), [0, 30, 90, 365])
    factor = hazard.factor(np.array([0.0, 30.0, 365.0]))
    assert factor[0] == pytest.approx(1.0, abs=0.15) and factor[1] == pytest.approx(1.0, abs=0.15)
    assert factor[2] == pytest.approx(0.1, abs=0.05)  # 2 % x 0.1: the history's 0.2 %


def test_a_declining_hazard_is_followed_past_the_oldest_supported_age():
    # rate = 0.3 * (age / 30) ** -1 at 30, 90, 270 and 810 days: a slope of -1
    rates = {30.0: 0.3, 90.0: 0.1, 270.0: 0.1 / 3, 810.0: 0.1 / 9}
    ages, labels = _snapshots(rates, 20_000, seed=5)
    p = np.repeat(list(rates.values()), 20_000)  # a model right at every age
    hazard = fit_age_hazard(ages, labels, p, list(rates))
    assert hazard.oldest == 810.0
    assert hazard.slope == pytest.approx(-1.0, abs=0.15)
    factor = hazard.factor(np.array([810.0, 1620.0, np.nan]))
    assert factor[0] == pytest.approx(1.0, abs=0.1) and factor[2] == 1.0
    assert factor[1] / factor[0] == pytest.approx(0.5, abs=0.07)  # twice as old: half the rate
    assert "half at" in hazard.describe()


def test_a_flat_or_rising_hazard_is_carried_flat_never_raised():
    ages, labels = _snapshots({30.0: 0.02, 90.0: 0.03, 270.0: 0.05}, 5_000, seed=3)
    p = np.repeat([0.02, 0.03, 0.05], 5_000)
    hazard = fit_age_hazard(ages, labels, p, [30, 90, 270])
    assert hazard.slope == 0.0
    f = hazard.factor(np.array([270.0, 1_000.0, 5_000.0]))
    assert f[1] == f[2] == f[0]
    assert "carried flat" in hazard.describe()


def test_dense_counts_replace_a_bands_own_and_thin_bands_are_not_supported():
    ages = np.array([30.0] * 100 + [365.0] * (MIN_ROWS - 1))
    labels = np.zeros(len(ages), dtype=int)
    labels[:10] = 1
    p = np.full(len(ages), 0.05)
    hazard = fit_age_hazard(ages, labels, p, [30, 365])
    assert hazard.oldest == 30.0  # 365 days has one snapshot too few
    weighted = fit_age_hazard(ages, labels, p, [30, 365], weight=np.full(len(ages), 2.0))
    assert weighted.oldest == 365.0 and weighted.rows[0] == 200.0
    # a life table with every age of the band: its rows and wins, the model's mean there
    dense = fit_age_hazard(ages, labels, p, [30, 365], dense={365.0: (1_000.0, 3.0)})
    assert dense.rows[1] == 1_000.0 and dense.wins[1] == 3.0
    assert dense.expected[1] == pytest.approx(50.0)
    assert AgeHazard.empty().oldest is None
    assert (AgeHazard.empty().factor(np.array([5.0])) == 1.0).all()
