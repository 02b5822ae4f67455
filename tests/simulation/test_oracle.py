from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.simulation import funnel as fm
from leadscore.simulation.oracle import oracle_probability, read_truth
from leadscore.simulation.paths import funnel_paths

HORIZON = pd.Timedelta(days=90)


def _snapshots(sim, age_days):
    """Open, uncensored snapshots at one lead age, with their observed labels."""
    leads = sim.leads.set_index("lead_id")
    as_of = leads["created_at"] + pd.Timedelta(days=age_days)
    closed = (
        sim.deals.dropna(subset=["closed_at"])
        .groupby("lead_id")["closed_at"]
        .min()
        .reindex(leads.index)
    )
    keep = (as_of + HORIZON <= sim.data_end) & ~(closed <= as_of)
    won = (
        sim.deals[sim.deals["status"] == "won"]
        .set_index("lead_id")["closed_at"]
        .reindex(leads.index[keep])
    )
    a = as_of[keep]
    label = ((won > a) & (won <= a + HORIZON)).to_numpy()
    return leads.index[keep], a.to_numpy(), label


@pytest.mark.parametrize("age_days", [0, 7, 30])
def test_oracle_is_calibrated_on_simulated_outcomes(sim_path, sim, age_days):
    ids, as_of, label = _snapshots(sim, age_days)
    p = oracle_probability(read_truth(sim_path), ids, as_of, horizon_days=90)
    n = len(p)
    se = np.sqrt(np.sum(p * (1 - p))) / n
    assert abs(p.mean() - label.mean()) < 4 * se
    # Calibrated within each quintile of predicted probability, not just on average.
    bins = pd.qcut(p, 5, labels=False, duplicates="drop")
    for b in np.unique(bins):
        m = bins == b
        se_b = np.sqrt(np.sum(p[m] * (1 - p[m]))) / m.sum() + 1e-3
        assert abs(p[m].mean() - label[m].mean()) < 4 * se_b


def test_matrix_exponential_matches_monte_carlo():
    rng = np.random.default_rng(0)
    n = 200_000
    rates = fm.funnel_rates(np.full(n, 0.5), np.full(n, 0.2), np.zeros(n), np.full(n, 1))
    path = funnel_paths(rng, np.zeros(n), rates)
    empirical = np.mean((path["final_state"] == fm.WON) & (path["closed_at"] <= 90))
    truth = pd.DataFrame(
        {c: v[:1] for c, v in rates.items()}, index=pd.Index(["L1"], name="lead_id")
    )
    for col in ("touched_at", "qualified_at", "advanced_at", "cold_at", "closed_at"):
        truth[col] = pd.NaT
    truth["final_state"] = "won"
    p = oracle_probability(truth, ["L1"], pd.Timestamp("1970-01-01", tz="UTC"), horizon_days=90)[0]
    assert abs(p - empirical) < 4 * np.sqrt(p * (1 - p) / n)


def test_closed_lead_has_no_new_win(sim_path, sim):
    won = sim.deals[sim.deals["status"] == "won"].iloc[0]
    p = oracle_probability(
        read_truth(sim_path), [won["lead_id"]], won["closed_at"] + pd.Timedelta(days=1)
    )
    assert p[0] == 0.0


def test_unknown_lead_and_missing_truth(sim_path, tmp_path):
    with pytest.raises(LeadscoreError, match="no latent state"):
        oracle_probability(read_truth(sim_path), ["nobody"], pd.Timestamp("2025-06-01", tz="UTC"))
    with pytest.raises(LeadscoreError, match="no truth file"):
        read_truth(tmp_path)
