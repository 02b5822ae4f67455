from __future__ import annotations

import hashlib

from leadscore.crm import load_dataset
from leadscore.simulation import SimulationConfig, simulate


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_lead_status_is_off_by_default_and_changes_no_other_file(tmp_path):
    plain = tmp_path / "plain"
    counts = simulate(SimulationConfig(n_leads=400, seed=3, format="csv"), plain)
    assert "lead_status" not in counts and not (plain / "lead_status.csv").exists()
    with_status = tmp_path / "status"
    counts = simulate(
        SimulationConfig(n_leads=400, seed=3, format="csv", lead_status=True), with_status
    )
    assert counts["lead_status"] > 0
    extra = _digests(with_status)
    assert extra.pop("lead_status.csv")
    assert extra == _digests(plain)  # leads, activities, deals, truth, dataset.yaml: same bytes


def test_sales_accept_more_of_the_leads_that_win_and_give_reasons(tmp_path):
    folder = tmp_path / "crm"
    simulate(SimulationConfig(n_leads=3_000, seed=5, lead_status=True), folder)
    ds = load_dataset(folder)  # the contract's checks pass on what the simulator writes
    st = ds.lead_status
    decisions = st[st["stage"].isin(["accepted", "rejected"])].drop_duplicates("lead_id")
    won = set(ds.deals.loc[ds.deals["status"] == "won", "lead_id"])
    accepted = decisions["stage"] == "accepted"
    is_won = decisions["lead_id"].isin(won)
    assert accepted[is_won].mean() > accepted[~is_won].mean() + 0.2
    rejected = st[st["stage"] == "rejected"]
    assert rejected["reason"].notna().all() and rejected["reason"].nunique() >= 4
    # sales is sometimes wrong: a few leads it rejected first won all the same
    assert 0 < (~accepted & is_won).sum() < is_won.sum()
