from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.payloads import lead_payloads
from rules.scorer import batch_rule_inputs
from tests.serving.conftest import API_KEY


def _payloads(small_sim, ids):
    return {p["lead_id"]: p for p in lead_payloads(small_sim, ids, iso=True)}


def _as_of(lead, as_of):
    """What the CRM knows at as_of: the activities and deals up to then."""
    when = pd.Timestamp(as_of)
    return {
        **lead,
        "activities": [a for a in lead["activities"] if pd.Timestamp(a["occurred_at"]) <= when],
        "deals": [d for d in lead["deals"] if pd.Timestamp(d["created_at"]) <= when],
    }


def test_scores_equal_the_batch_pipeline(client, small_sim, trained, served_rules):
    """For simulated leads, the endpoint returns what the batch pipeline gives for the same
    (lead, as_of): one request per as_of, several leads per request where they share it."""
    rows = trained.test.sample(40, random_state=2)
    payloads = _payloads(small_sim, rows["lead_id"].unique())
    for as_of, group in rows.groupby("as_of"):
        body = {
            "leads": [_as_of(payloads[i], as_of) for i in group["lead_id"]],
            "as_of": as_of.isoformat(),
        }
        response = client.post("/score", json=body)
        assert response.status_code == 200, response.text
        scores = response.json()["scores"]
        assert [s["lead_id"] for s in scores] == group["lead_id"].tolist()
        np.testing.assert_allclose(
            [s["probability"] for s in scores], group["p_model"].to_numpy(), rtol=1e-9
        )
        x = batch_rule_inputs(served_rules.config, small_sim, group["lead_id"], group["as_of"])
        rule_scores = served_rules.rule_scores(x)
        assert [s["rule_score"] for s in scores] == rule_scores.tolist()
        assert [s["rule_grade"] for s in scores] == served_rules.grade(rule_scores).tolist()
        assert [s["mql"] for s in scores] == (rule_scores >= 75).tolist()
        for s in scores:
            assert s["score"] == round(100 * s["probability"]) and s["grade"] in "ABCD"
            assert 0 < s["rule_probability"] < 1
            assert s["model"] == {"name": "lead-scoring", "version": "1"}
            assert {"rule_score", "rule_grade", "mql"} <= set(s)
            assert s["reasons"]["positive"] or s["reasons"]["negative"]
            assert all(r["text"] for r in s["reasons"]["positive"] + s["reasons"]["negative"])


def test_one_lead_and_a_batch_agree(client, small_sim, trained):
    row = trained.test.iloc[0]
    lead = _as_of(_payloads(small_sim, [row["lead_id"]])[row["lead_id"]], row["as_of"])
    alone = client.post("/score", json={"leads": [lead], "as_of": row["as_of"].isoformat()}).json()[
        "scores"
    ][0]
    batch = client.post(
        "/score", json={"leads": [lead] * 5, "as_of": row["as_of"].isoformat()}
    ).json()["scores"]
    assert all(b == alone for b in batch)


def test_without_as_of_the_clock_decides(client, small_sim, trained):
    lead = _payloads(small_sim, [trained.test["lead_id"].iloc[0]])[trained.test["lead_id"].iloc[0]]
    response = client.post("/score", json={"leads": [lead]})
    assert response.status_code == 200 and response.json()["as_of"] > "2026"


def test_metadata(client):
    meta = client.get("/metadata").json()
    assert meta["name"] == "lead-scoring" and meta["version"] == "1" and meta["alias"] == "champion"
    assert meta["feature_set_version"].startswith("pit-1+") and meta["trained_at"]
    assert 0.5 < meta["training_metrics"]["test_roc_auc_model"] < 1
    assert meta["rules_version"].startswith("b2b-default@") and meta["mql_threshold"] == 75


def test_auth(server):
    import httpx

    base = server["base"]
    for path, method in (("/score", "post"), ("/metadata", "get")):
        kwargs = {"json": {"leads": []}} if method == "post" else {}
        assert getattr(httpx, method)(base + path, **kwargs).status_code == 401
        wrong = getattr(httpx, method)(
            base + path, headers={"Authorization": "Bearer nope"}, **kwargs
        )
        assert wrong.status_code == 401 and wrong.json()["field"] == "Authorization"
        basic = getattr(httpx, method)(
            base + path, headers={"Authorization": f"Basic {API_KEY}"}, **kwargs
        )
        assert basic.status_code == 401
    assert (
        httpx.get(base + "/metadata", headers={"Authorization": "Bearer other-key"}).status_code
        == 200
    )
    for open_path in ("/livez", "/readyz", "/metrics"):
        assert httpx.get(base + open_path).status_code == 200


def test_keys_never_appear_in_the_log(client, server):
    client.get("/metadata")
    client.post("/score", json={"leads": "nope"})
    assert API_KEY not in server["log"].read_text()


def _lead(small_sim, trained):
    lead_id, as_of = trained.test["lead_id"].iloc[0], trained.test["as_of"].iloc[0]
    return _as_of(_payloads(small_sim, [lead_id])[lead_id], as_of), as_of.isoformat()


BAD = {
    "leads not a list": (lambda lead, as_of: {"leads": "everything", "as_of": as_of}, 400, "leads"),
    "as_of not a date": (
        lambda lead, as_of: {"leads": [lead], "as_of": "next tuesday"},
        400,
        "as_of",
    ),
    "no leads field": (lambda lead, as_of: {"as_of": as_of}, 400, "leads"),
    "empty batch": (lambda lead, as_of: {"leads": [], "as_of": as_of}, 422, "leads"),
    "missing lead_id": (
        lambda lead, as_of: {
            "leads": [{k: v for k, v in lead.items() if k != "lead_id"}],
            "as_of": as_of,
        },
        422,
        "leads[0].lead_id",
    ),
    "missing created_at": (
        lambda lead, as_of: {"leads": [{**lead, "created_at": None}], "as_of": as_of},
        422,
        "leads[0].created_at",
    ),
    "created after as_of": (
        lambda lead, as_of: {
            "leads": [{**lead, "created_at": "2099-01-01T00:00:00Z"}],
            "as_of": as_of,
        },
        422,
        "leads[0].created_at",
    ),
    "activity in the future of as_of": (
        lambda lead, as_of: {
            "leads": [
                {
                    **lead,
                    "activities": [
                        *lead["activities"],
                        {"activity_type": "call", "occurred_at": "2099-01-01T00:00:00Z"},
                    ],
                }
            ],
            "as_of": as_of,
        },
        422,
        "occurred_at",
    ),
    "activity time not a timestamp": (
        lambda lead, as_of: {
            "leads": [{**lead, "activities": [{"activity_type": "call", "occurred_at": 12}]}],
            "as_of": as_of,
        },
        422,
        "leads[0].activities[0].occurred_at",
    ),
    "activity without type": (
        lambda lead, as_of: {
            "leads": [{**lead, "activities": [{"occurred_at": as_of}]}],
            "as_of": as_of,
        },
        422,
        "leads[0].activities[0].activity_type",
    ),
    "activity not an object": (
        lambda lead, as_of: {"leads": [{**lead, "activities": ["call"]}], "as_of": as_of},
        422,
        "leads[0].activities[0]",
    ),
    "profile not an object": (
        lambda lead, as_of: {"leads": [{**lead, "profile": ["x"]}], "as_of": as_of},
        422,
        "leads[0].profile",
    ),
    "deal with a bad date": (
        lambda lead, as_of: {
            "leads": [{**lead, "deals": [{"created_at": "soon", "status": "open"}]}],
            "as_of": as_of,
        },
        422,
        "leads[0].deals[0].created_at",
    ),
    "too many leads": (lambda lead, as_of: {"leads": [lead] * 1001, "as_of": as_of}, 413, "leads"),
    "too many activities": (
        lambda lead, as_of: {
            "leads": [
                {**lead, "activities": [{"activity_type": "call", "occurred_at": as_of}] * 10_001}
            ],
            "as_of": as_of,
        },
        413,
        "leads[0].activities",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_requests_get_a_4xx_naming_the_field(client, small_sim, trained, case):
    make, status, field = BAD[case]
    lead, as_of = _lead(small_sim, trained)
    response = client.post("/score", json=make(lead, as_of))
    assert response.status_code == status, response.text
    assert field in response.text


def test_malformed_json_and_oversized_bodies(client):
    response = client.post(
        "/score", content=b'{"leads": [', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    huge = b'{"leads": [], "pad": "' + b"x" * (65 * 1024 * 1024) + b'"}'
    response = client.post("/score", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["field"] == "body"


def test_unknown_activity_types_are_accepted(client, small_sim, trained):
    lead, as_of = _lead(small_sim, trained)
    base = client.post("/score", json={"leads": [lead], "as_of": as_of}).json()["scores"][0]
    odd = {
        **lead,
        "activities": [
            *lead["activities"],
            {"activity_type": "carrier_pigeon", "occurred_at": lead["created_at"]},
        ],
    }
    response = client.post("/score", json={"leads": [odd], "as_of": as_of})
    assert response.status_code == 200
    assert response.json()["scores"][0]["lead_id"] == base["lead_id"]


def test_no_champion_refuses_to_start(tmp_path):
    import os
    import subprocess
    import sys

    def start(api_keys: str) -> subprocess.CompletedProcess:
        """Build the service (what `bentoml serve` does at start) against an empty store."""
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}",
            "LEADSCORE_API_KEYS": api_keys,
        }
        return subprocess.run(
            [sys.executable, "-c", "from serving.service import LeadScoring; LeadScoring.inner()"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = start("k")
    assert result.returncode != 0 and "no model lead-scoring@champion" in result.stderr
    result = start("")
    assert "LEADSCORE_API_KEYS is empty" in result.stderr


def test_reasons_can_be_skipped(client, small_sim, trained):
    lead, as_of = _lead(small_sim, trained)
    full = client.post("/score", json={"leads": [lead], "as_of": as_of}).json()["scores"][0]
    bare = client.post("/score", json={"leads": [lead], "as_of": as_of, "reasons": False}).json()[
        "scores"
    ][0]
    assert "reasons" not in bare and bare["probability"] == full["probability"]


def test_deals_that_are_not_a_list_are_a_4xx(client, small_sim, trained):
    lead, as_of = _lead(small_sim, trained)
    response = client.post("/score", json={"leads": [{**lead, "deals": 5}], "as_of": as_of})
    assert response.status_code == 422 and response.json()["field"] == "leads[0].deals"
