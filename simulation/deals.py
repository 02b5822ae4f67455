"""Simulated deals: one opportunity per qualified lead, its status at the end of the data and
an amount scaled by the company's size."""

from __future__ import annotations

import numpy as np

from leadscore.simulation import funnel as fm


def simulate_deals(rng, lead_ids, path, size, days) -> dict[str, np.ndarray]:
    """One opportunity per qualified lead, visible once created before the end of data."""
    lead = np.flatnonzero(path["qualified_at"] < days)
    created = path["qualified_at"][lead]
    closed_at = path["closed_at"][lead]
    is_closed = closed_at <= days
    status = np.where(
        is_closed, np.where(path["final_state"][lead] == fm.WON, "won", "lost"), "open"
    ).astype(object)
    size_scale = {
        "1-10": 4_000,
        "11-50": 9_000,
        "51-200": 20_000,
        "201-1000": 45_000,
        "1000+": 90_000,
    }
    scale = np.array([size_scale.get(s, 15_000) for s in size[lead]], dtype=float)
    amount = np.round(scale * rng.lognormal(0.0, 0.5, len(lead)), -2)
    return {
        "deal_id": np.array([f"D{lid[1:]}" for lid in lead_ids[lead]], dtype=object),
        "lead": lead,
        "created": created,
        "closed": np.where(is_closed, closed_at, np.inf),
        "status": status,
        "amount": amount,
    }
