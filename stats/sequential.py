"""Intervals for a difference of two means that stay valid however often they are read.

A fixed-horizon interval (`fixed_halfwidth`, the normal approximation) is valid for one look
at a sample size chosen in advance; read every week and stopped at the first exclusion of
zero, it raises false alarms far more often than its 5 %. A confidence sequence
(`sequence_halfwidth`) covers the true value at every sample size at once, with
probability 1 - alpha, so any number of looks (and stopping at any of them) keeps its
promise.

The sequence is the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy
and Ramdas ("Time-uniform central limit theory and asymptotic confidence sequences", 2023):
Robbins' normal-mixture boundary applied to the running mean of i.i.d. terms with a
consistent variance estimate. For a random walk S_t with unit variance per step, the
mixture over N(0, rho^2) of the exponential martingales exp(l S_t - l^2 t / 2) is

    M_t = exp(rho^2 S_t^2 / (2 (t rho^2 + 1))) / sqrt(t rho^2 + 1),

and Ville's inequality, P(sup_t M_t >= 1/alpha) <= alpha, bounds |S_t| / t by

    sqrt(2 (t rho^2 + 1) / (t^2 rho^2) * log(sqrt(t rho^2 + 1) / alpha))

at every t at once. `rho` sets where the sequence is tightest; `rho_for(n)` makes it
tightest at n observations (the planned size, fixed before any data is seen).
"""

from __future__ import annotations

import math

import numpy as np

Z_95 = 1.959963984540054


def rho_for(planned_n: float, alpha: float = 0.05) -> float:
    """The mixture's spread that makes the sequence tightest at `planned_n` observations."""
    if planned_n <= 0:
        raise ValueError("the planned sample size must be positive")
    la = -2.0 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1.0)) / planned_n)


def sequence_halfwidth(n, sd, *, rho: float, alpha: float = 0.05):
    """Half-width of the confidence sequence of a mean after `n` i.i.d. terms whose standard
    deviation is `sd` (arrays broadcast): valid at every n at once."""
    n = np.asarray(n, dtype=np.float64)
    r2 = rho * rho
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.sqrt(2.0 * (n * r2 + 1.0) / (n * n * r2) * np.log(np.sqrt(n * r2 + 1.0) / alpha))
    return np.asarray(sd, dtype=np.float64) * np.where(n > 0, width, np.inf)


def fixed_halfwidth(n, sd, *, z: float = Z_95):
    """Half-width of the fixed-horizon (one-look) normal interval of a mean of `n` terms."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, z * np.asarray(sd, dtype=np.float64) / np.sqrt(n), np.inf)


def difference_sd(n: int, n1: int, p1: float, n0: int, p0: float) -> float:
    """Per-observation standard deviation of a difference of two proportions (arm 1 minus
    arm 0) from `n` observations split n1 / n0: the one that makes sd / sqrt(n) the
    difference's standard error (Neyman's, sqrt(p1 (1-p1) / n1 + p0 (1-p0) / n0))."""
    if n1 <= 0 or n0 <= 0:
        return math.inf
    return math.sqrt(n * (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0))


def size_for_halfwidth(
    target: float, sd: float, *, rho: float, alpha: float = 0.05, start: int = 1
) -> int | None:
    """The least n >= start at which the sequence's half-width is at most `target` (None:
    beyond 10^12). The half-width falls with n past its first few terms: a doubling search,
    then bisection."""
    if not (target > 0) or not math.isfinite(sd):
        return None
    if sd == 0:
        return start

    def ok(n: int) -> bool:
        return float(sequence_halfwidth(n, sd, rho=rho, alpha=alpha)) <= target

    lo, hi = start, max(start, 1)
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > 10**12:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi
