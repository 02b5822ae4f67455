from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.crm.errors import PayloadError
from leadscore.crm.payloads import lead_payloads
from leadscore.crm.times import times_us, to_us
from leadscore.features.batch import build_training_set
from leadscore.features.config import FeatureConfig
from leadscore.features.definitions import resolve_spec
from leadscore.features.online import OnlineFeaturizer


def _same(a, b) -> bool:
    if isinstance(b, str) or b is None:
        return (b is None and pd.isna(a)) or a == b
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_online_equals_batch_on_600_snapshots(small_sim):
    """Parity: the online vector equals the batch row, feature by feature, from JSON-like
    payloads (ISO text timestamps), for 600 (lead, as_of) pairs of the simulator."""
    df, spec, _ = build_training_set(small_sim)
    sample = df.sample(600, random_state=1)
    payloads = {
        p["lead_id"]: p for p in lead_payloads(small_sim, sample["lead_id"].unique(), iso=True)
    }
    online = OnlineFeaturizer(spec)
    mismatches = []
    for row in sample.itertuples(index=False):
        got = online.features(payloads[row.lead_id], row.as_of.isoformat())
        assert list(got) == spec.feature_names
        for name in spec.feature_names:
            want = getattr(row, name) if name.isidentifier() else None
            if name == "engagement_decayed":  # a float sum: summation order differs
                ok = math.isclose(want, got[name], rel_tol=1e-12, abs_tol=1e-300)
            else:
                ok = _same(want, got[name])
            if not ok:
                mismatches.append((row.lead_id, row.as_of, name, want, got[name]))
    assert not mismatches, mismatches[:5]
    assert sample["n_activities_total"].max() > 50  # leads with real histories were compared


# --- properties ------------------------------------------------------------------------

TYPES = ["page_view", "pricing_page_view", "email_open", "call", "meeting"]
SPEC = resolve_spec(
    FeatureConfig(),
    profile_dtypes={"industry": "categorical", "employees": "numeric"},
    observed_types=TYPES,
    sales_touch_types=["call", "meeting"],
)
FEATURIZER = OnlineFeaturizer(SPEC)
AS_OF = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CREATED = AS_OF - timedelta(days=120)

activity = st.builds(
    lambda kind, secs: {
        "activity_type": kind,
        "occurred_at": (CREATED + timedelta(seconds=secs)).isoformat(),
    },
    st.sampled_from(TYPES + ["webinar_attendance"]),  # one type the spec does not know
    st.integers(0, 240 * 86_400),
)
lead_strategy = st.builds(
    lambda acts: {
        "lead_id": "X",
        "created_at": CREATED.isoformat(),
        "source": "web",
        "profile": {"industry": "retail", "employees": 40},
        "activities": acts,
        "deals": [],
    },
    st.lists(activity, max_size=40),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _before_as_of(lead):
    return [a for a in lead["activities"] if to_us(a["occurred_at"]) <= to_us(AS_OF)]


@SETTINGS
@given(
    lead=lead_strategy,
    future=st.lists(st.integers(1, 200 * 86_400), max_size=10),
    kind=st.sampled_from(TYPES),
)
def test_activities_after_as_of_never_change_a_feature(lead, future, kind):
    base = FEATURIZER.features(lead, AS_OF)
    later = [
        {"activity_type": kind, "occurred_at": (AS_OF + timedelta(seconds=s)).isoformat()}
        for s in future
    ]
    grown = FEATURIZER.features({**lead, "activities": lead["activities"] + later}, AS_OF)
    assert all(_same(base[k], grown[k]) for k in SPEC.feature_names)


def _allowed_to_move(kind: str, age_days: float) -> set[str]:
    """The features one more `kind` activity `age_days` before as_of may change."""
    moved = {
        f"n_{kind}_total",
        f"days_since_{kind}",
        "n_activities_total",
        "days_since_last_activity",
    }
    moved |= {f"n_{kind}_{w}d" for w in SPEC.windows_days if age_days < w}
    moved |= {f"n_activities_{w}d" for w in SPEC.windows_days if age_days < w}
    if age_days < SPEC.active_days_window:
        moved.add(f"active_days_{SPEC.active_days_window}d")
    if kind in SPEC.sales_touch_types:
        moved |= {"contacted", "first_touch_seconds", "uncontacted_seconds"}
    else:
        moved.add("engagement_decayed")
        if age_days < SPEC.trend_older_days:
            moved.add("engagement_trend")
    return moved


@SETTINGS
@given(lead=lead_strategy, kind=st.sampled_from(TYPES), age_s=st.integers(0, 119 * 86_400))
def test_one_more_activity_moves_only_what_it_should(lead, kind, age_s):
    base = FEATURIZER.features(lead, AS_OF)
    extra = {"activity_type": kind, "occurred_at": (AS_OF - timedelta(seconds=age_s)).isoformat()}
    grown = FEATURIZER.features({**lead, "activities": [*lead["activities"], extra]}, AS_OF)
    changed = {k for k in SPEC.feature_names if not _same(base[k], grown[k])}
    age_days = age_s / 86_400
    assert changed <= _allowed_to_move(kind, age_days)
    assert grown[f"n_{kind}_total"] == base[f"n_{kind}_total"] + 1
    for w in SPEC.windows_days:
        assert grown[f"n_{kind}_{w}d"] == base[f"n_{kind}_{w}d"] + (age_days < w)
    assert grown[f"days_since_{kind}"] <= (
        base[f"days_since_{kind}"] if not math.isnan(base[f"days_since_{kind}"]) else math.inf
    )


@SETTINGS
@given(lead=lead_strategy)
def test_more_recent_engagement_raises_recency_and_decayed_engagement(lead):
    base = FEATURIZER.features(lead, AS_OF)
    fresh = {"activity_type": "page_view", "occurred_at": AS_OF.isoformat()}
    grown = FEATURIZER.features({**lead, "activities": [*lead["activities"], fresh]}, AS_OF)
    assert (
        grown["days_since_page_view"] == 0
        and grown["engagement_decayed"] > base["engagement_decayed"]
    )
    assert len(_before_as_of(lead)) + 1 == grown["n_activities_total"]


@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
            st.sampled_from(["Z", "+00:00", "", "+05:30", "-08:00"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_bulk_timestamp_parsing_equals_the_exact_path(stamps):
    text = [dt.isoformat() + suffix for dt, suffix in stamps]
    assert times_us(text).tolist() == [to_us(t) for t in text]
    aware = [dt.replace(tzinfo=timezone(timedelta(hours=2))) for dt, _ in stamps]
    assert times_us(aware).tolist() == [to_us(t) for t in aware]


# --- bad payloads ----------------------------------------------------------------------


def _lead(**changes):
    lead = {
        "lead_id": "X",
        "created_at": CREATED.isoformat(),
        "source": "web",
        "profile": {"industry": "retail", "employees": 40},
        "activities": [{"activity_type": "call", "occurred_at": AS_OF.isoformat()}],
        "deals": [],
    }
    lead.update(changes)
    return lead


@pytest.mark.parametrize(
    "lead, field",
    [
        (_lead(created_at=None), "created_at"),
        (_lead(created_at="last tuesday"), "created_at"),
        (
            _lead(activities=[{"activity_type": "call", "occurred_at": "2025-13-45"}]),
            "activities[0].occurred_at",
        ),
        (
            _lead(
                activities=[
                    {"activity_type": "call", "occurred_at": AS_OF.isoformat()},
                    {"occurred_at": AS_OF.isoformat()},
                ]
            ),
            "activities[1].activity_type",
        ),
        (
            _lead(activities=[{"activity_type": "", "occurred_at": AS_OF.isoformat()}]),
            "activities[0].activity_type",
        ),
        (_lead(profile={"employees": "many"}), "profile.employees"),
        (_lead(deals=[{"created_at": "soon", "status": "open"}]), "deals[0].created_at"),
    ],
)
def test_bad_payload_names_the_field(lead, field):
    with pytest.raises(PayloadError) as info:
        FEATURIZER.features(lead, AS_OF)
    assert info.value.field == field


def test_bad_as_of():
    with pytest.raises(PayloadError, match="as_of"):
        FEATURIZER.features(_lead(), "tomorrow")


def test_missing_profile_values_and_source():
    got = FEATURIZER.features(_lead(source=" ", profile={}), AS_OF)
    assert got["source"] == "unknown" and got["industry"] is None and np.isnan(got["employees"])
