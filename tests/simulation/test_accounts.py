"""The simulator's buying groups and the account oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.simulation.oracle import account_oracle_probability, read_truth


def test_contacts_of_an_account_share_the_company(account_sim):
    leads = account_sim.leads
    assert leads["account_id"].notna().all()
    sizes = leads.groupby("account_id").size()
    assert 2.5 < sizes.mean() < 3.5 and sizes.max() > 3
    for column in ("industry", "company_size", "country"):
        per_account = leads.dropna(subset=[column]).groupby("account_id")[column].nunique()
        assert (per_account <= 1).all(), column
    # roles are the contacts' own
    assert (leads.groupby("account_id")["job_role"].nunique() > 1).any()


def test_without_accounts_no_account_column(small_sim):
    assert "account_id" not in small_sim.leads


def _account_labels(dataset, accounts, as_of, horizon_days=90):
    deals = dataset.deals.merge(dataset.leads[["lead_id", "account_id"]], on="lead_id")
    won = deals[(deals["status"] == "won") & (deals["closed_at"] > as_of)]
    won = won[won["closed_at"] <= as_of + pd.Timedelta(days=horizon_days)]
    return np.isin(accounts, won["account_id"].unique())


def test_account_oracle_is_calibrated(account_sim_path, account_sim):
    truth = read_truth(account_sim_path)
    predicted, observed = [], []
    for day in ("2025-05-01", "2025-08-01", "2025-11-01", "2026-02-01"):
        as_of = pd.Timestamp(day, tz="UTC")
        accounts = account_sim.leads.loc[account_sim.leads["created_at"] <= as_of, "account_id"]
        accounts = accounts.unique()
        predicted.append(account_oracle_probability(truth, accounts, as_of, 90))
        observed.append(_account_labels(account_sim, accounts, as_of))
    p, y = np.concatenate(predicted), np.concatenate(observed)
    assert len(p) > 2_000
    se = np.sqrt(np.sum(p * (1 - p))) / len(p)
    assert abs(p.mean() - y.mean()) < 4 * se + 0.005
    high = p > 0.3  # the confident accounts win about as often as said
    assert abs(p[high].mean() - y[high].mean()) < 0.08


def test_account_oracle_refuses_what_it_does_not_know(account_sim_path, small_sim_path):
    truth = read_truth(account_sim_path)
    with pytest.raises(LeadscoreError, match="no account 'nope'"):
        account_oracle_probability(truth, ["nope"], "2025-06-01", 90)
    with pytest.raises(LeadscoreError, match="no accounts"):
        account_oracle_probability(read_truth(small_sim_path), ["A1"], "2025-06-01", 90)
