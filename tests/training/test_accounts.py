"""The account model: learned at account level, tested against what a team does without it,
shipped with the lead scorer, one path for batch and payloads."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.payloads import lead_payloads
from leadscore.scoring.accounts import open_account_scores
from leadscore.scoring.scorer import LeadScorer
from leadscore.training.accounts import account_tables, fit_accounts
from leadscore.training.config import AccountsConfig
from tests.training.conftest import FAST


def test_same_feature_set_as_the_lead_model(account_fit, ruled):
    # the fixture scores account_sim's contacts with small_sim's model: same simulator
    assert account_fit.scorer.spec.lead == ruled.spec


def test_figures_on_the_test_accounts(account_fit):
    m = account_fit.metrics
    assert {"model", "independent", "best_contact", "rules"} <= set(m)
    assert m["model"]["roc_auc"] > 0.8  # the buying group's engagement ranks accounts
    low, high = m["model"]["roc_auc_ci"]
    assert low <= m["model"]["roc_auc"] <= high
    test = account_fit.test
    assert test["as_of"].min() >= pd.Timestamp(account_fit.split["test_start"])
    # calibrated on the test period as a whole (within a few points)
    assert abs(test["p_model"].mean() - test["label"].mean()) < 0.04
    # capacity-matched: the model hands over as many accounts as the rules
    cap = account_fit.capacity
    assert cap["accounts"].nunique() == 1 and len(cap) >= 2
    tables = account_tables(account_fit)
    assert len(tables["accounts"]) == len(m) and len(tables["account_engaged"]) > 0


def test_shipped_model_is_the_refit_and_keeps_the_evaluated(account_fit):
    scorer = account_fit.scorer
    assert scorer.evaluated is not None
    assert scorer.info["shipped"]["rows"] == account_fit.stats["snapshots"]
    assert scorer.info["shipped"]["last_as_of"] > account_fit.split["test_as_of"][0]


def test_reasons_name_contacts_and_roles(account_sim, account_fit):
    scored, _ = open_account_scores(account_sim, account_fit.scorer, account_sim.data_end)
    texts = [r["text"] for item in scored["reasons"] for side in item.values() for r in side]
    assert any("contacts in play" in t or "contact in play" in t for t in texts)
    assert any(" active in the last " in t for t in texts)
    assert np.all(scored["p_low"] <= scored["probability"]) and np.all(
        scored["probability"] <= scored["p_high"]
    )


def test_saved_with_the_lead_scorer_and_scored_alike_from_payloads(
    tmp_path, account_sim, account_fit, ruled
):
    lead = ruled.with_parts(accounts=account_fit.scorer)
    loaded = LeadScorer.load(lead.save(tmp_path / "model"))
    assert loaded.accounts is not None and loaded.accounts.evaluated is not None
    as_of = account_sim.data_end
    scored, contacts = open_account_scores(account_sim, loaded.accounts, as_of)
    # the endpoint's path: the account's open contacts as payloads
    for i in (0, len(scored) // 2, len(scored) - 1):
        account_id = scored["account_id"].iloc[i]
        ids = contacts.loc[contacts["row"] == i, "lead_id"].astype(str).tolist()
        got = loaded.score_account(account_id, lead_payloads(account_sim, ids, iso=True), as_of)
        assert got["probability"] == pytest.approx(scored["probability"].iloc[i], abs=1e-9)
        assert got["contacts"] == len(ids)
        assert [r["text"] for r in got["reasons"]["positive"]] == [
            r["text"] for r in scored["reasons"].iloc[i]["positive"]
        ]


def test_a_closed_contact_is_not_in_play(account_sim, account_fit, ruled):
    lead = ruled.with_parts(accounts=account_fit.scorer)
    payload = lead_payloads(account_sim, [account_sim.leads["lead_id"].iloc[0]], iso=True)[0]
    closed = {**payload, "deals": [{"deal_id": "x", "created_at": payload["created_at"],
                                    "closed_at": payload["created_at"], "status": "lost"}]}  # fmt: skip
    with pytest.raises(LeadscoreError, match="no contact of the account is open"):
        lead.score_account("A1", [closed], "2026-06-01T00:00:00Z")
    with pytest.raises(LeadscoreError, match="no account model"):
        ruled.score_account("A1", [payload], "2026-06-01T00:00:00Z")


def test_bad_role_column_is_refused_before_fitting(account_sim, ruled):
    config = FAST.model_copy(update={"accounts": AccountsConfig(role_column="title")})
    with pytest.raises(LeadscoreError, match="role_column 'title'"):
        fit_accounts(account_sim, ruled, config)


def test_a_company_column_the_audit_excluded_is_not_used(account_sim, ruled):
    from leadscore.training.accounts import account_features_used

    spec = copy.copy(ruled.spec)
    from leadscore.features.accounts import AccountSpec

    used = account_features_used(
        AccountSpec(spec, "job_role", ("manager",)), ["industry", "job_role"]
    )
    assert "industry" not in used and "active_job_role_manager" not in used
    assert "company_size" in used
