"""The one prediction record: the payload adapter (the endpoint, the pyfunc) and the frame
adapter (batch scoring, monitoring, the report) build the same batch, and one scoring call
gives the same record for both."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.crm.payloads import lead_payloads
from leadscore.features.batch import build_scoring_set
from leadscore.rules.scorer import batch_rule_inputs
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.record import ScoreRecord, scores_of


@pytest.fixture(scope="module")
def scorer(trained, served_rules):
    scorer = trained.scorer.with_parts(rules=served_rules)
    return scorer


def test_payloads_and_frames_give_the_same_record(small_sim, scorer):
    when = small_sim.data_end
    frame = build_scoring_set(small_sim, scorer.spec, when).sample(60, random_state=1)
    frame = frame.reset_index(drop=True)
    rules_x = batch_rule_inputs(scorer.rules.config, small_sim, frame["lead_id"], frame["as_of"])
    from_frame = scorer.score(scorer.frame_batch(frame, rules_x=rules_x), reasons=3)
    payloads = lead_payloads(small_sim, frame["lead_id"].tolist(), iso=True)
    by_id = {p["lead_id"]: p for p in payloads}
    leads = [by_id[i] for i in frame["lead_id"]]
    from_payloads = scorer.score(scorer.payload_batch(leads, when.isoformat()), reasons=3)

    assert list(from_frame.lead_id) == list(from_payloads.lead_id)
    np.testing.assert_allclose(from_frame.probability, from_payloads.probability, rtol=1e-9)
    assert (from_frame.grade == from_payloads.grade).all()
    assert (from_frame.rule_score == from_payloads.rule_score).all()
    assert (from_frame.mql == from_payloads.mql).all()
    assert from_frame.reason_texts("positive") == from_payloads.reason_texts("positive")
    assert from_frame.reason_texts("negative") == from_payloads.reason_texts("negative")


def test_rows_are_the_endpoints_shape(small_sim, scorer):
    payloads = lead_payloads(small_sim, small_sim.leads["lead_id"].head(3).tolist(), iso=True)
    record = scorer.score(
        scorer.payload_batch(payloads, small_sim.data_end.isoformat()),
        reasons=2,
        model=ModelRef("m", "4"),
    )
    rows = record.rows()
    assert [r["lead_id"] for r in rows] == [p["lead_id"] for p in payloads]
    for r in rows:
        assert r["score"] == round(100 * r["probability"]) and r["grade"] in "ABCD"
        assert set(r["reasons"]) == {"positive", "negative"} and len(r["reasons"]["positive"]) <= 2
        assert isinstance(r["rule_score"], int) and isinstance(r["mql"], bool)
        assert 0 < r["rule_probability"] < 1 and r["model"] == {"name": "m", "version": "4"}
    bare = scorer.score(scorer.payload_batch(payloads, small_sim.data_end.isoformat()), reasons=0)
    assert bare.reasons is None and "reasons" not in bare.rows()[0]
    assert bare.reason_texts("positive") == [[], [], []]


def test_the_score_is_round_half_to_even_of_100_p():
    assert scores_of(np.array([0.0, 0.005, 0.015, 0.274, 0.275, 0.999])).tolist() == [
        0, 0, 2, 27, 28, 100,
    ]  # fmt: skip
    empty = ScoreRecord(np.array([], dtype=object), np.array([]), np.array([]))
    assert len(empty) == 0 and empty.rows() == []
