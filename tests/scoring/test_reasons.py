from __future__ import annotations

import numpy as np

from leadscore.features.config import FeatureConfig
from leadscore.features.definitions import resolve_spec
from leadscore.scoring.reasons import describe, feature_groups, word_reasons

SPEC = resolve_spec(
    FeatureConfig(),
    profile_dtypes={"industry": "categorical"},
    observed_types=["page_view", "demo_request", "call"],
    sales_touch_types=["call"],
)


def test_features_group_by_original_column():
    groups = dict(zip(SPEC.feature_names, feature_groups(SPEC.feature_names, SPEC), strict=True))
    assert groups["n_demo_request_7d"] == groups["days_since_demo_request"] == "demo_request"
    assert groups["first_touch_seconds"] == groups["contacted"] == "speed_to_lead"
    assert groups["industry"] == "industry" and groups["source"] == "source"
    assert groups["n_activities_30d"] == groups["days_since_last_activity"] == "recent_activity"


def test_wording():
    values = {
        "n_demo_request_7d": 2.0,
        "n_demo_request_30d": 2.0,
        "n_demo_request_90d": 2.0,
        "n_demo_request_total": 2.0,
        "days_since_demo_request": 1.5,
        "n_page_view_7d": 0.0,
        "n_page_view_30d": 0.0,
        "n_page_view_90d": 0.0,
        "n_page_view_total": 1.0,
        "days_since_page_view": 40.0,
        "n_activities_7d": 3.0,
        "days_since_last_activity": 0.2,
        "contacted": 1.0,
        "first_touch_seconds": 150.0,
        "industry": None,
        "source": "partner",
        "open_deals": 1.0,
    }
    assert describe("demo_request", values, SPEC) == "2 demo requests in the last 7 days"
    assert describe("page_view", values, SPEC) == "1 page view so far, the last one 40 days ago"
    assert (
        describe("recent_activity", values, SPEC)
        == "3 activities in the last 7 days, the last one today"
    )
    assert describe("speed_to_lead", values, SPEC) == "first sales touch after 2 minutes"
    assert (
        describe("speed_to_lead", {"contacted": 0.0, "uncontacted_seconds": 3 * 86_400}, SPEC)
        == "not contacted yet after 3 days"
    )
    assert describe("industry", values, SPEC) == "industry unknown"
    assert describe("source", values, SPEC) == "source: partner"
    assert describe("open_deals", values, SPEC) == "1 open deal"


def test_word_reasons_ranks_groups_and_splits_signs():
    names = ["demo_request", "source", "industry", "speed_to_lead"]
    values = {
        "n_demo_request_7d": 1.0,
        "source": "ads",
        "industry": "x",
        "contacted": 0.0,
        "uncontacted_seconds": 60.0,
    }
    out = word_reasons(np.array([0.75, -0.3, 0.0, -0.5]), names, values, SPEC, k=3)
    assert [r["feature"] for r in out["positive"]] == ["demo_request"] and out["positive"][0][
        "contribution"
    ] == 0.75
    assert [r["feature"] for r in out["negative"]] == [
        "speed_to_lead",
        "source",
    ]  # most negative first
    assert (
        word_reasons(np.array([0.75, -0.3, 0.0, -0.5]), names, values, SPEC, k=1)["negative"][0][
            "feature"
        ]
        == "speed_to_lead"
    )


def test_a_batch_is_worded_as_each_lead_alone(small_set, trained):
    """Reasons built as columns for a batch are the reasons of each lead worded alone from
    its row (a dict of its values): same groups, same order, same words, same numbers."""
    df, _, _ = small_set
    scorer = trained.scorer
    part = df.sample(300, random_state=3).reset_index(drop=True)
    record = scorer.score(scorer.frame_batch(part), reasons=3)
    totals = scorer.group_contributions(scorer.encode_frame(part))
    rows = part.to_dict("records")
    alone = [
        word_reasons(totals[i], scorer._group_names, rows[i], scorer.spec, k=3)
        for i in range(len(part))
    ]
    assert record.reasons == alone
    assert record.reason_texts("negative") == [[r["text"] for r in a["negative"]] for a in alone]
    assert sum(len(a["positive"]) for a in alone) > 300  # most leads have reasons up
