"""A lead's path through the funnel chain: the jump times drawn from its rates (days since the
start; inf where never reached) and its state at any time, which the oracle reads too."""

from __future__ import annotations

import numpy as np

from leadscore.simulation import funnel as fm


def exp_times(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Exponential waiting times; infinite where the rate is zero."""
    with np.errstate(divide="ignore"):
        return np.where(
            rate > 0, rng.exponential(1.0, len(rate)) / np.where(rate > 0, rate, 1), np.inf
        )


def funnel_paths(
    rng: np.random.Generator, created: np.ndarray, r: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Jump times of the funnel chain (days since start; inf where never reached)."""
    n = len(created)
    inf = np.full(n, np.inf)
    touch, cold0 = exp_times(rng, r["rate_touch"]), exp_times(rng, r["rate_new_cold"])
    qualify, cold1 = exp_times(rng, r["rate_qualify"]), exp_times(rng, r["rate_nurture_cold"])
    advance, lost1 = exp_times(rng, r["rate_advance"]), exp_times(rng, r["rate_opp1_lost"])
    win, lost2 = exp_times(rng, r["rate_win"]), exp_times(rng, r["rate_opp2_lost"])

    touched = touch < cold0
    touched_at = np.where(touched, created + touch, inf)
    qualified = touched & (qualify < cold1)
    qualified_at = np.where(qualified, touched_at + qualify, inf)
    cold_at = np.where(
        ~touched, created + cold0, np.where(touched & ~qualified, touched_at + cold1, inf)
    )
    advanced = qualified & (advance < lost1)
    advanced_at = np.where(advanced, qualified_at + advance, inf)
    won = advanced & (win < lost2)
    closed_at = np.where(
        qualified & ~advanced,
        qualified_at + lost1,
        np.where(advanced, advanced_at + np.minimum(win, lost2), inf),
    )
    final = np.where(won, fm.WON, np.where(qualified, fm.LOST, fm.DEAD))
    return {
        "touched_at": touched_at,
        "qualified_at": qualified_at,
        "advanced_at": advanced_at,
        "cold_at": cold_at,
        "closed_at": closed_at,
        "final_state": final,
    }


def state_at(path: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
    """Funnel state of each lead at time `t` (same units as the path)."""
    state = np.full(len(t), fm.NEW)
    state = np.where(path["touched_at"] <= t, fm.NURTURE, state)
    state = np.where(path["qualified_at"] <= t, fm.OPP1, state)
    state = np.where(path["advanced_at"] <= t, fm.OPP2, state)
    state = np.where(path["cold_at"] <= t, fm.DEAD, state)
    return np.where(path["closed_at"] <= t, path["final_state"], state)


def state_for(path, lead_idx, t):
    sub = {k: v[lead_idx] for k, v in path.items()}
    return state_at(sub, t)
