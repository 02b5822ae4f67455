from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from leadscore.crm.payloads import lead_payloads
from leadscore.rules.scorer import batch_rule_inputs
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
    copies = [{**lead, "lead_id": f"{lead['lead_id']}-{k}"} for k in range(5)]
    batch = client.post("/score", json={"leads": copies, "as_of": row["as_of"].isoformat()}).json()[
        "scores"
    ]
    assert all({**b, "lead_id": alone["lead_id"]} == alone for b in batch)


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
    assert meta["account_model"] is True and meta["segment_champions"] == []


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
        422,
        "as_of",
    ),
    "as_of an epoch string": (
        lambda lead, as_of: {"leads": [lead], "as_of": "1746000000"},
        422,
        "as_of",
    ),
    "as_of in year 1": (
        lambda lead, as_of: {"leads": [lead], "as_of": "0001-01-01T00:00:00Z"},
        422,
        "as_of",
    ),
    "created in year 9999": (
        lambda lead, as_of: {"leads": [{**lead, "created_at": "9999-01-01T00:00:00Z"}]},
        422,
        "leads[0].created_at",
    ),
    "activity before 1970 near as_of": (
        lambda lead, as_of: {
            "leads": [
                {
                    **lead,
                    "created_at": "1970-01-02T00:00:00Z",
                    "activities": [
                        {"activity_type": "call", "occurred_at": "1969-12-31T00:00:00Z"}
                    ],
                }
            ],
            "as_of": "1970-01-10T00:00:00Z",
        },
        422,
        "leads[0].activities[0].occurred_at",
    ),
    "activity type an object": (
        lambda lead, as_of: {
            "leads": [{**lead, "activities": [{"activity_type": {"a": 1}, "occurred_at": as_of}]}],
            "as_of": as_of,
        },
        400,
        "leads[0].activities[0].activity_type",
    ),
    "activity type a list": (
        lambda lead, as_of: {
            "leads": [{**lead, "activities": [{"activity_type": ["call"], "occurred_at": as_of}]}],
            "as_of": as_of,
        },
        400,
        "leads[0].activities[0].activity_type",
    ),
    "NaT among offset times": (
        lambda lead, as_of: {
            "leads": [
                {
                    **lead,
                    "activities": [
                        {"activity_type": "call", "occurred_at": "2025-01-02T10:00:00-05:00"},
                        {"activity_type": "call", "occurred_at": "2025-01-02T11:00:00-05:00"},
                        {"activity_type": "call", "occurred_at": "NaT"},
                    ],
                }
            ],
            "as_of": as_of,
        },
        422,
        "leads[0].activities[2].occurred_at",
    ),
    "activity value infinite": (  # raw text: a JSON encoder would refuse to write 1e999
        lambda lead, as_of: (
            json.dumps(
                {
                    "leads": [
                        {
                            **lead,
                            "activities": [
                                {
                                    "activity_type": "call",
                                    "occurred_at": lead["created_at"],
                                    "value": 7,
                                }
                            ],
                        }
                    ],
                    "as_of": as_of,
                }
            )
            .replace('"value": 7', '"value": 1e999')
            .encode()
        ),
        None,  # 400 or 422: strict JSON refuses the number, else the featurizer
        "leads[0].activities[0].value",
    ),
    "deal status maybe": (
        lambda lead, as_of: {
            "leads": [{**lead, "deals": [{"created_at": lead["created_at"], "status": "maybe"}]}],
            "as_of": as_of,
        },
        400,
        "leads[0].deals[0].status",
    ),
    "the same lead three times": (
        lambda lead, as_of: {"leads": [lead, lead, lead], "as_of": as_of},
        422,
        "leads[1].lead_id",
    ),
    "a lead_id of a megabyte": (
        lambda lead, as_of: {"leads": [{**lead, "lead_id": "x" * 1_000_000}], "as_of": as_of},
        400,
        "leads[0].lead_id",
    ),
    "no leads field": (lambda lead, as_of: {"as_of": as_of}, 400, "leads"),
    "empty batch": (lambda lead, as_of: {"leads": [], "as_of": as_of}, 422, "leads"),
    "missing lead_id": (
        lambda lead, as_of: {
            "leads": [{k: v for k, v in lead.items() if k != "lead_id"}],
            "as_of": as_of,
        },
        400,
        "leads[0].lead_id",
    ),
    "missing created_at": (
        lambda lead, as_of: {"leads": [{**lead, "created_at": None}], "as_of": as_of},
        400,
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
        400,
        "leads[0].activities[0].occurred_at",
    ),
    "activity without type": (
        lambda lead, as_of: {
            "leads": [{**lead, "activities": [{"occurred_at": as_of}]}],
            "as_of": as_of,
        },
        400,
        "leads[0].activities[0].activity_type",
    ),
    "activity not an object": (
        lambda lead, as_of: {"leads": [{**lead, "activities": ["call"]}], "as_of": as_of},
        400,
        "leads[0].activities[0]",
    ),
    "profile not an object": (
        lambda lead, as_of: {"leads": [{**lead, "profile": ["x"]}], "as_of": as_of},
        400,
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
    body = make(lead, as_of)
    if isinstance(body, bytes):
        response = client.post("/score", content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post("/score", json=body)
    if status is None:
        assert response.status_code in (400, 422), response.text
    else:
        assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "field"} and body["field"].endswith(field), body
    assert len(response.content) < 2_000  # nothing of the request is echoed at length


def test_malformed_json_and_oversized_bodies(client):
    response = client.post(
        "/score", content=b'{"leads": [', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    huge = b'{"leads": [], "pad": "' + b"x" * (65 * 1024 * 1024) + b'"}'
    response = client.post("/score", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["field"] == "body"


def test_a_chunked_body_over_the_limit_is_refused_while_streaming(client):
    """No Content-Length: the bound is counted on the bytes as they arrive."""
    sent = 0

    def stream():
        nonlocal sent
        yield b'{"leads": [], "pad": "'
        for _ in range(80):  # 80 MiB, over the 64 MiB bound
            sent += 1
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = client.post("/score", content=stream(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["field"] == "body"


def test_only_json_is_accepted(client):
    response = client.post(
        "/score", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert response.status_code == 415 and response.json()["field"] == "Content-Type"


def test_schema_errors_have_the_documented_shape(client):
    response = client.post("/score", json={"leads": "everything"})
    assert response.status_code == 400
    assert set(response.json()) == {"error", "field"} and response.json()["field"] == "leads"


def test_client_mistakes_are_one_info_line_not_a_traceback(client, server):
    before = server["log"].read_text()
    for _ in range(3):
        client.post("/score", json={"leads": "everything"})
        client.post("/score", content=b'{"leads": [', headers={"Content-Type": "application/json"})
    import time

    deadline = time.monotonic() + 20  # the log is written by the server's workers
    while "refused" not in server["log"].read_text()[len(before) :] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the rest of the six requests' lines
    new = server["log"].read_text()[len(before) :]
    assert "refused" in new
    assert "Traceback" not in new and "[ERROR]" not in new


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


def test_no_champion_refuses_to_start(tmp_path, monkeypatch):
    """Build the service (what `bentoml serve` does at start, in each worker) against no
    store, an empty file, a store without a champion, and no API key: each is refused with
    the reason, and nothing is created."""
    from leadscore.crm.errors import LeadscoreError
    from leadscore.serving.service import LeadScoring
    from leadscore.training.store import prepare_store
    from tests.training.conftest import sqlite_store

    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.setenv("LEADSCORE_API_KEYS", "k")

    def refused() -> str:
        # MLflow's URI set in this process too (another test may have set one before)
        with sqlite_store(tmp_path), pytest.raises(LeadscoreError) as info:
            LeadScoring.inner()
        return str(info.value)

    assert "no MLflow store at sqlite:///" in refused()  # no store at all: none is created
    assert not store.exists()
    store.touch()  # an empty file: refused, and left empty
    assert "no MLflow store" in refused() and store.stat().st_size == 0
    store.unlink()
    prepare_store(store)  # a store (as `leadscore train` creates it) with no model
    assert "no model lead-scoring@champion" in refused()
    monkeypatch.setenv("LEADSCORE_API_KEYS", "")
    assert "LEADSCORE_API_KEYS is empty" in refused()


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
    assert response.status_code == 400 and response.json()["field"] == "leads[0].deals"


def test_metadata_names_the_store_without_secrets(tmp_path, monkeypatch):
    """What /metadata and the start-up error show of a tracking URI with credentials."""
    import mlflow

    from leadscore.crm.errors import LeadscoreError
    from leadscore.serving.config import ServeConfig
    from leadscore.serving.model import load_model

    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(LeadscoreError) as info:
        load_model(ServeConfig())
    assert "no MLflow store" in str(info.value) and "none.db" in str(info.value)
    assert not (tmp_path / "none.db").exists()

    class NoAlias:  # a registry that has no such alias (no network, no store)
        def __init__(self, *args, **kwargs) -> None:
            pass

        def get_model_version_by_alias(self, *args):
            raise mlflow.exceptions.MlflowException("no alias")

    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: "http://ops:hunter2@127.0.0.1:9")
    monkeypatch.setattr("leadscore.serving.model.check_store", lambda uri: None)
    monkeypatch.setattr(mlflow, "MlflowClient", NoAlias)
    with pytest.raises(LeadscoreError) as info:
        load_model(ServeConfig())
    assert "hunter2" not in str(info.value) and "http://***@127.0.0.1:9" in str(info.value)


def _merged_requests(base: str) -> tuple[float, float]:
    """(count, sum) of the micro-batcher's histogram in /metrics: requests per scoring call."""
    import httpx

    text = httpx.get(f"{base}/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        for part in ("count", "sum"):
            if line.startswith(f"leadscore_batch_requests_{part}"):
                values[part] = values.get(part, 0.0) + float(line.rsplit(" ", 1)[1])
    return values.get("count", 0.0), values.get("sum", 0.0)


def test_concurrent_requests_are_merged_and_answer_as_if_alone(client, server, small_sim, trained):
    """Requests from many threads at once (with and without as_of or reasons, some bad) get
    exactly what each gets alone, and the service merged some of them into one call."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    rows = trained.test.drop_duplicates("lead_id").head(48)
    payloads = _payloads(small_sim, rows["lead_id"])
    bodies = []
    for k, row in enumerate(rows.itertuples()):
        lead = _as_of(payloads[row.lead_id], row.as_of)
        body = {"leads": [lead], "as_of": row.as_of.isoformat(), "reasons": k % 3 != 0}
        if k % 4 == 1:  # the lead's own copy, twice, under other ids: a 2-lead request
            body["leads"] = [{**lead, "lead_id": f"{row.lead_id}-{j}"} for j in range(2)]
        if k % 7 == 3:  # a mistake: created after as_of
            body["leads"] = [{**lead, "created_at": "2199-01-01T00:00:00+00:00"}]
        bodies.append(body)
    alone = [client.post("/score", json=b) for b in bodies]
    before = _merged_requests(server["base"])
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def post(body):
        with httpx.Client(base_url=server["base"], headers=headers, timeout=30) as c:
            return c.post("/score", json=body)

    with ThreadPoolExecutor(16) as pool:
        for _ in range(3):
            together = list(pool.map(post, bodies))
            for a, t in zip(alone, together, strict=True):
                assert (t.status_code, t.json()) == (a.status_code, a.json())
    assert {a.status_code for a in alone} == {200, 422}
    count, total = (a - b for a, b in zip(_merged_requests(server["base"]), before, strict=True))
    assert count > 0 and total > count  # some call scored more than one request


def test_the_batch_scores_file_equals_the_endpoint(client, small_sim, trained, served_rules):
    """`leadscore score` (leadscore.operations.pipeline) and POST /score agree lead by lead at the same
    as_of: probability, score, grade, rules, MQL and the worded reasons."""

    from leadscore.operations.pipeline import REASON_SEPARATOR, score_pipeline
    from leadscore.scoring.model_ref import ModelRef

    scorer = trained.scorer.with_parts(rules=served_rules)
    when = trained.test["as_of"].max()
    frame = score_pipeline(small_sim, scorer, ModelRef("lead-scoring", "1"), when).frame
    sample = frame.sample(40, random_state=3)
    payloads = _payloads(small_sim, sample["lead_id"])
    body = {
        "leads": [_as_of(payloads[i], when) for i in sample["lead_id"]],
        "as_of": when.isoformat(),
    }
    response = client.post("/score", json=body)
    assert response.status_code == 200, response.text
    for row, got in zip(sample.itertuples(), response.json()["scores"], strict=True):
        assert got["lead_id"] == row.lead_id
        assert got["probability"] == pytest.approx(row.probability, rel=1e-9)
        assert (got["score"], got["grade"]) == (row.score, row.grade)
        assert (got["rule_score"], got["rule_grade"], got["mql"]) == (
            row.rule_score,
            row.rule_grade,
            row.mql,
        )
        assert got["model"] == {"name": row.model_name, "version": row.model_version}
        for key, column in (("positive", row.reasons_up), ("negative", row.reasons_down)):
            assert REASON_SEPARATOR.join(r["text"] for r in got["reasons"][key]) == column


def test_an_account_is_scored_from_its_contacts(client, account_sim, account_fit):
    """POST /accounts/score equals the batch account rows for the same account and as_of."""
    from leadscore.crm.payloads import lead_payloads
    from leadscore.scoring.accounts import open_account_scores

    as_of = account_sim.data_end
    scored, contacts = open_account_scores(account_sim, account_fit.scorer, as_of)
    i = int(scored["contacts"].to_numpy().argmax())
    ids = contacts.loc[contacts["row"] == i, "lead_id"].astype(str).tolist()
    body = {
        "account_id": scored["account_id"].iloc[i],
        "leads": lead_payloads(account_sim, ids, iso=True),
        "as_of": as_of.isoformat(),
    }
    response = client.post("/accounts/score", json=body)
    assert response.status_code == 200, response.text
    account = response.json()["account"]
    assert account["probability"] == pytest.approx(scored["probability"].iloc[i], abs=1e-9)
    assert account["contacts"] == len(ids) and account["reasons"]["positive"]
    assert account["p_low"] <= account["probability"] <= account["p_high"]
    assert account["model"]["version"]
    bad = client.post("/accounts/score", json={**body, "leads": []})
    assert bad.status_code == 422 and bad.json()["field"] == "leads"
    anonymous = httpx.post(f"{client.base_url}/accounts/score", json=body, timeout=30)
    assert anonymous.status_code == 401  # protected as /score is
    late = {**body, "as_of": "2020-01-01T00:00:00Z"}  # events after as_of: the request's mistake
    refused = client.post("/accounts/score", json=late)
    assert refused.status_code == 422 and refused.json()["field"].startswith("leads[")
