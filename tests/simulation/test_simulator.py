from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from leadscore.crm import load_dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.simulation import SimulationConfig, chunks, simulate
from leadscore.simulation.paths import state_at


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_same_bytes(tmp_path, fmt):
    config = SimulationConfig(n_leads=1_500, seed=3, chunk_size=500, format=fmt)
    simulate(config, tmp_path / "a")
    simulate(config, tmp_path / "b")
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    simulate(config.model_copy(update={"seed": 4}), tmp_path / "c")
    assert _digests(tmp_path / "a")["leads." + fmt] != _digests(tmp_path / "c")["leads." + fmt]


def test_csv_and_parquet_hold_the_same_data(tmp_path):
    config = SimulationConfig(n_leads=800, seed=5, chunk_size=300)
    simulate(config, tmp_path / "pq")
    simulate(config.model_copy(update={"format": "csv"}), tmp_path / "csv")
    a, b = load_dataset(tmp_path / "pq"), load_dataset(tmp_path / "csv")
    pd.testing.assert_frame_equal(a.leads, b.leads, check_categorical=False)
    pd.testing.assert_frame_equal(a.deals, b.deals, check_categorical=False)
    pd.testing.assert_frame_equal(a.activities, b.activities, check_categorical=False)


def test_output_passes_the_data_contract(sim):
    assert len(sim.leads) == 20_000
    assert set(sim.profile_columns) == {
        "industry",
        "company_size",
        "job_role",
        "country",
        "email_domain_kind",
    }
    # The latent state stays out of the tables a model can see.
    assert not {"z", "epsilon", "fit", "response_class"} & set(sim.leads.columns)
    span = sim.data_end - sim.data_start
    assert pd.Timedelta(days=520) < span < pd.Timedelta(days=560)  # ~18 months
    for col in ("industry", "company_size", "job_role"):
        assert 0.01 < sim.leads[col].isna().mean() < 0.15  # some missing values


def test_win_rate_within_180_days_is_plausible(sim):
    leads = sim.leads.set_index("lead_id")
    won = sim.deals[sim.deals["status"] == "won"].set_index("lead_id")["closed_at"]
    old_enough = leads["created_at"] <= sim.data_end - pd.Timedelta(days=180)
    within = (won.reindex(leads.index) - leads["created_at"]) <= pd.Timedelta(days=180)
    assert 0.10 <= within[old_enough].mean() <= 0.20
    assert (sim.deals["status"] == "open").sum() > 20  # a few still open at the end
    assert (sim.deals["amount"] > 0).all()


def test_speed_to_lead_effect_is_visible(sim):
    leads = sim.leads.set_index("lead_id")
    touches = sim.activities[
        sim.activities["activity_type"].isin(["call", "meeting", "sales_email"])
    ]
    first = touches.groupby("lead_id")["occurred_at"].min().reindex(leads.index)
    delay = (first - leads["created_at"]).dt.total_seconds()
    won = set(sim.deals.loc[sim.deals["status"] == "won", "lead_id"])
    is_won = leads.index.isin(won)
    old = (leads["created_at"] <= sim.data_end - pd.Timedelta(days=180)).to_numpy()
    fast = old & (delay <= 300).to_numpy()
    slow = old & (delay > 86_400).to_numpy()
    odds = lambda m: is_won[m].mean() / (1 - is_won[m].mean())  # noqa: E731
    assert fast.sum() > 1_000 and slow.sum() > 1_000
    assert odds(fast) >= 2.0 * odds(slow)
    assert is_won[old & first.isna().to_numpy()].mean() < 0.01  # never contacted: almost never won


def test_activity_mix(sim):
    counts = sim.activities["activity_type"].value_counts(normalize=True)
    expected = {
        "page_view",
        "pricing_page_view",
        "content_download",
        "webinar_registration",
        "webinar_attendance",
        "email_open",
        "email_click",
        "form_submission",
        "demo_request",
        "unsubscribe",
        "email_bounce",
        "call",
        "meeting",
        "sales_email",
    }
    assert expected == set(counts.index[counts > 0])
    assert counts.idxmax() == "page_view"
    assert counts["demo_request"] < counts["pricing_page_view"] < counts["page_view"]
    assert 25 < len(sim.activities) / len(sim.leads) < 70
    marketing = sim.activities[
        ~sim.activities["activity_type"].isin(["call", "meeting", "sales_email"])
    ]
    never_engaged = 1 - marketing["lead_id"].nunique() / len(sim.leads)
    assert 0.10 < never_engaged < 0.50  # some leads never engage


def test_engagement_fades_with_lead_age(sim):
    acts = sim.activities.merge(sim.leads[["lead_id", "created_at"]], on="lead_id")
    age_days = (acts["occurred_at"] - acts["created_at"]).dt.days
    views = acts["activity_type"] == "page_view"
    first_month = (views & (age_days < 30)).sum()
    third_month = (views & (age_days >= 60) & (age_days < 90)).sum()
    assert first_month > 4 * third_month


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    with pytest.raises(LeadscoreError, match="not empty"):
        simulate(SimulationConfig(n_leads=100), target)
    assert [p.name for p in target.iterdir()] == ["precious.txt"]


def test_interrupted_run_leaves_nothing_behind(tmp_path, monkeypatch):
    real = chunks.simulate_chunk
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(chunks, "simulate_chunk", failing)
    with pytest.raises(RuntimeError):
        simulate(SimulationConfig(n_leads=600, chunk_size=300), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="start must be a date"):
        SimulationConfig(start="2025-13-01")
    with pytest.raises(ValueError):
        SimulationConfig(n_leads=0)


def test_state_at_follows_the_path():
    inf = np.inf
    path = {
        "touched_at": np.array([1.0, 1.0, inf]),
        "qualified_at": np.array([5.0, inf, inf]),
        "advanced_at": np.array([9.0, inf, inf]),
        "cold_at": np.array([inf, 20.0, 3.0]),
        "closed_at": np.array([30.0, inf, inf]),
        "final_state": np.array([5, 4, 4]),
    }
    t = np.array([0.5, 0.5, 0.5])
    assert state_at(path, t).tolist() == [0, 0, 0]
    assert state_at(path, t + 9).tolist() == [3, 1, 4]
    assert state_at(path, t + 40).tolist() == [5, 4, 4]


def test_planted_drift_changes_only_the_leads_after_its_date(tmp_path):
    """The monitoring tests' drift: after the date, more leads from the weakest sources, a
    lower win rate, fewer marketing traces; before it, the same population as without."""
    import pandas as pd

    from leadscore.simulation import SimulationConfig, simulate

    cut = pd.Timestamp("2026-01-01", tz="UTC")
    shares = {}
    for name, drift in (("plain", {}), ("drift", {"drift_after": "2026-01-01"})):
        simulate(SimulationConfig(n_leads=6_000, seed=3, **drift), tmp_path / name)
        leads = pd.read_parquet(tmp_path / name / "leads.parquet")
        deals = pd.read_parquet(tmp_path / name / "deals.parquet")
        acts = pd.read_parquet(tmp_path / name / "activities.parquet")
        late = leads["created_at"] >= cut
        early_won = leads.loc[~late, "lead_id"].isin(deals.loc[deals.status == "won", "lead_id"])
        marketing = acts[acts["activity_type"] == "page_view"].groupby("lead_id").size()
        shares[name] = {
            "weak_late": leads.loc[late, "source"].isin(["social", "advertising"]).mean(),
            "weak_early": leads.loc[~late, "source"].isin(["social", "advertising"]).mean(),
            "views_late": marketing.reindex(leads.loc[late, "lead_id"]).fillna(0).mean(),
            "won_early": early_won.mean(),
        }
    plain, drift = shares["plain"], shares["drift"]
    assert drift["weak_late"] > plain["weak_late"] + 0.1
    assert abs(drift["weak_early"] - plain["weak_early"]) < 0.03
    assert abs(drift["won_early"] - plain["won_early"]) < 0.03
    assert drift["views_late"] < 0.8 * plain["views_late"]
