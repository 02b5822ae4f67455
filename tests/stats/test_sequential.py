"""The confidence sequence keeps its promise at every look; the fixed-horizon interval does
not when it is read again and again (brute force: simulated paths, every look checked)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leadscore.stats.sequential import (
    difference_sd,
    fixed_halfwidth,
    rho_for,
    sequence_halfwidth,
    size_for_halfwidth,
)


def _misses(paths: int, steps: int, half, seed: int, looks) -> float:
    """Share of simulated two-arm experiments (Bernoulli outcomes, no true difference)
    whose interval excludes zero at any of the `looks`."""
    rng = np.random.default_rng(seed)
    arm = rng.random((paths, steps)) < 0.5
    won = rng.random((paths, steps)) < 0.2
    n1 = np.cumsum(arm, axis=1)[:, looks - 1]
    n0 = looks[None, :] - n1
    w1 = np.cumsum(won & arm, axis=1)[:, looks - 1]
    w0 = np.cumsum(won & ~arm, axis=1)[:, looks - 1]
    p1, p0 = w1 / np.maximum(n1, 1), w0 / np.maximum(n0, 1)
    var = p1 * (1 - p1) / np.maximum(n1, 1) + p0 * (1 - p0) / np.maximum(n0, 1)
    sd = np.sqrt(looks[None, :] * var)
    effect = p1 - p0
    return float((np.abs(effect) > half(looks[None, :], sd)).any(axis=1).mean())


def test_the_sequence_holds_at_every_look_where_the_fixed_interval_does_not():
    looks = np.arange(200, 4001, 50)  # 77 looks per path, from 200 leads on
    rho = rho_for(4000)
    sequence = _misses(1500, 4000, lambda n, sd: sequence_halfwidth(n, sd, rho=rho), 1, looks)
    fixed = _misses(1500, 4000, lambda n, sd: fixed_halfwidth(n, sd), 1, looks)
    assert sequence <= 0.05  # its promise, at every look at once
    assert fixed > 0.15  # read 77 times, the one-look interval alarms three times as often


def test_one_look_at_the_fixed_horizon_is_a_95_percent_interval():
    looks = np.array([3000])
    fixed = _misses(3000, 3000, lambda n, sd: fixed_halfwidth(n, sd), 2, looks)
    assert 0.035 <= fixed <= 0.065


def test_the_sequence_is_wider_than_the_fixed_interval_and_narrows():
    rho = rho_for(10_000)
    n = np.array([100, 1_000, 10_000, 100_000])
    seq, fix = sequence_halfwidth(n, 1.0, rho=rho), fixed_halfwidth(n, 1.0)
    assert (seq > fix).all() and (np.diff(seq) < 0).all()
    assert seq[2] / fix[2] < 1.6  # tightest near the planned size: not far from one look


def test_the_mixture_boundary_is_ville_s_bound_for_the_normal_mixture():
    """At the boundary, the mixture martingale equals 1/alpha (the formula's derivation)."""
    rho, alpha, t = 0.03, 0.05, 2500.0
    s = float(sequence_halfwidth(t, 1.0, rho=rho, alpha=alpha)) * t
    m = math.exp(rho**2 * s**2 / (2 * (t * rho**2 + 1))) / math.sqrt(t * rho**2 + 1)
    assert m == pytest.approx(1 / alpha)


def test_sizes_and_spreads():
    assert difference_sd(100, 50, 0.2, 50, 0.2) == pytest.approx(math.sqrt(100 * 0.32 / 50))
    assert difference_sd(10, 0, 0.2, 10, 0.1) == math.inf
    rho = rho_for(5000)
    n = size_for_halfwidth(0.01, 0.8, rho=rho)
    assert sequence_halfwidth(n, 0.8, rho=rho) <= 0.01 < sequence_halfwidth(n - 1, 0.8, rho=rho)
    assert size_for_halfwidth(0.0, 0.8, rho=rho) is None
    with pytest.raises(ValueError, match="positive"):
        rho_for(0)
