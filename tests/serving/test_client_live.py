"""`leadscore.client.Client` against the real server."""

from __future__ import annotations

import pytest

from leadscore.client import Client, ScoringError


def test_against_the_real_server(server, small_sim, trained):
    """2,500 leads in three requests give the scores of one request per lead."""
    from leadscore.crm.payloads import lead_payloads
    from tests.serving.conftest import API_KEY

    as_of = trained.test["as_of"].max().isoformat()
    ids = small_sim.leads.loc[small_sim.leads["created_at"] <= as_of, "lead_id"].head(2_500)
    leads = [
        {
            **lead,
            "activities": [a for a in lead["activities"] if a["occurred_at"] <= as_of],
            "deals": [d for d in lead["deals"] if d["created_at"] <= as_of],
        }
        for lead in lead_payloads(small_sim, ids, iso=True)
    ]
    with Client(server["base"], API_KEY, batch_size=1_000) as client:
        batched = client.score(leads, as_of=as_of, reasons=False)
        assert client.metadata()["name"] == "lead-scoring"
        singles = [client.score([lead], as_of=as_of, reasons=False)[0] for lead in leads[:20]]
        with pytest.raises(ScoringError) as info:
            client.score([{**leads[0], "created_at": "yesterday"}], as_of=as_of)
    assert len(batched) == len(leads) and batched[:20] == singles
    assert info.value.status == 422 and info.value.field == "leads[0].created_at"
