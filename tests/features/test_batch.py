from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm import load_dataset
from leadscore.features.batch import build_training_set
from leadscore.features.config import FeatureConfig
from tests.conftest import write_dataset

DAY = 86_400
CONFIG = FeatureConfig(snapshot_ages_days=[30], horizon_days=10)

LEADS = """\
lead_id,created_at,source,industry
A,2025-01-01T00:00:00Z,website,software
B,2025-01-01T00:00:00Z,partner,
"""
ACTIVITIES = """\
lead_id,occurred_at,activity_type
A,2025-01-01T00:00:00Z,page_view
A,2025-01-01T00:02:00Z,call
A,2025-01-24T00:00:00Z,page_view
A,2025-01-30T00:00:00Z,page_view
A,2025-01-31T00:00:00Z,pricing_page_view
A,2025-02-01T00:00:00Z,email_open
"""
DEALS = """\
deal_id,lead_id,created_at,closed_at,status
D1,A,2025-01-21,,open
D2,B,2025-02-02,2025-02-05,won
"""


@pytest.fixture
def hand_built(tmp_path):
    folder = write_dataset(tmp_path / "d", leads=LEADS, activities=ACTIVITIES, deals=DEALS)
    df, spec, stats = build_training_set(
        load_dataset(folder), CONFIG, data_end=pd.Timestamp("2025-02-15T00:00:00Z")
    )
    return df.set_index("lead_id"), spec, stats


def test_columns_are_keys_label_then_spec_features(hand_built):
    df, spec, _ = hand_built
    assert list(df.reset_index().columns) == ["lead_id", "as_of", "label", *spec.feature_names]
    assert spec.activity_types == ["call", "email_open", "page_view", "pricing_page_view"]
    assert spec.categorical == ["source", "industry"]


def test_hand_computed_values(hand_built):
    df, _, _ = hand_built
    a = df.loc["A"]
    assert a["as_of"] == pd.Timestamp("2025-01-31T00:00:00Z")
    assert a["label"] == 0 and a["lead_age_days"] == 30
    # Windows are (as_of - w, as_of]: the view exactly 7 days back is out of the 7-day
    # window, the one at creation exactly 30 days back is out of the 30-day window, the
    # pricing view at as_of is in, and the e-mail open after as_of is nowhere.
    assert (
        a["n_page_view_7d"],
        a["n_page_view_30d"],
        a["n_page_view_90d"],
        a["n_page_view_total"],
    ) == (1, 2, 3, 3)
    assert (a["n_pricing_page_view_7d"], a["days_since_pricing_page_view"]) == (1, 0.0)
    assert a["days_since_page_view"] == 1.0
    assert a["n_email_open_total"] == 0 and np.isnan(a["days_since_email_open"])
    assert a["days_since_call"] == pytest.approx(30 - 120 / DAY, abs=1e-12)
    assert (
        a["n_activities_7d"],
        a["n_activities_30d"],
        a["n_activities_90d"],
        a["n_activities_total"],
    ) == (2, 4, 5, 5)
    assert a["days_since_last_activity"] == 0.0
    assert a["active_days_30d"] == 4  # Jan 1 (the call), 24, 30, 31
    assert a["engagement_trend"] == pytest.approx(2 / 7 - 1 / 23)
    assert a["engagement_decayed"] == pytest.approx(
        2 ** (-30 / 14) + 2 ** (-7 / 14) + 2 ** (-1 / 14) + 1
    )
    assert (a["contacted"], a["first_touch_seconds"]) == (1, 120)
    assert np.isnan(a["uncontacted_seconds"])
    assert a["open_deals"] == 1
    assert (a["source"], a["industry"]) == ("website", "software")


def test_lead_without_history(hand_built):
    b = hand_built[0].loc["B"]
    assert b["label"] == 1  # won on Feb 5, inside (Jan 31, Feb 10]
    assert b["open_deals"] == 0  # its deal was created after as_of
    assert b["n_activities_total"] == 0 and np.isnan(b["days_since_last_activity"])
    assert b["contacted"] == 0 and b["uncontacted_seconds"] == 30 * DAY
    assert b["engagement_decayed"] == 0 and b["engagement_trend"] == 0
    assert pd.isna(b["industry"])


def test_spec_version_is_stable_and_tracks_the_config(tmp_path):
    ds = load_dataset(
        write_dataset(tmp_path / "d", leads=LEADS, activities=ACTIVITIES, deals=DEALS)
    )
    end = pd.Timestamp("2025-02-15T00:00:00Z")
    v1 = build_training_set(ds, CONFIG, data_end=end)[1].version
    assert v1 == build_training_set(ds, CONFIG, data_end=end)[1].version
    other = CONFIG.model_copy(update={"decay_half_life_days": 7.0})
    assert build_training_set(ds, other, data_end=end)[1].version != v1


def _truncate(ds, cut):
    """The dataset as it was at `cut`: every row with a timestamp after it removed."""
    leads = ds.leads[ds.leads["created_at"] <= cut]
    acts = ds.activities[ds.activities["occurred_at"] <= cut]
    deals = ds.deals[ds.deals["created_at"] <= cut].copy()
    later = deals["closed_at"] > cut
    deals.loc[later, "closed_at"] = pd.NaT
    deals["status"] = (
        deals["status"].astype(object).where(~later, "open").astype(ds.deals["status"].dtype)
    )
    return ds.with_tables(
        leads=leads.reset_index(drop=True),
        activities=acts.reset_index(drop=True),
        deals=deals.reset_index(drop=True),
    )


def test_truncation_proves_point_in_time(small_sim):
    """Features and labels of every snapshot whose horizon ends by T are the same whether
    the data stops at T or goes on: nothing after as_of leaks in."""
    full, spec, _ = build_training_set(small_sim)
    cut = small_sim.data_start + pd.Timedelta(days=300)
    past, _, _ = build_training_set(_truncate(small_sim, cut), spec=spec, data_end=cut)
    horizon = pd.Timedelta(days=spec.horizon_days)
    full = full[full["as_of"] + horizon <= cut]
    assert len(full) > 5_000
    key = ["lead_id", "as_of"]
    full = full.sort_values(key).reset_index(drop=True)
    past = past.sort_values(key).reset_index(drop=True)
    assert len(past) == len(full)
    pd.testing.assert_frame_equal(past, full, check_categorical=False)


@pytest.mark.parametrize("days", [300])
def test_features_never_see_past_as_of(small_sim, days):
    """Stronger than the horizon check: every snapshot taken by T has the same *features*
    when the data stops at T (labels may differ: their window runs past T). Catches a
    peek of any length past as_of, even one shorter than the horizon."""
    full, spec, _ = build_training_set(
        small_sim, data_end=small_sim.data_end + pd.Timedelta(days=999)
    )
    cut = small_sim.data_start + pd.Timedelta(days=days)
    past, _, _ = build_training_set(
        _truncate(small_sim, cut), spec=spec, data_end=small_sim.data_end + pd.Timedelta(days=999)
    )
    key = ["lead_id", "as_of"]
    full = full[full["as_of"] <= cut].sort_values(key).reset_index(drop=True)
    past = past[past["as_of"] <= cut].sort_values(key).reset_index(drop=True)
    assert len(full) > 5_000 and len(past) == len(full)
    pd.testing.assert_frame_equal(
        past.drop(columns="label"), full.drop(columns="label"), check_categorical=False
    )


def test_events_one_second_after_as_of_change_nothing(small_sim):
    """An activity of every type and a new deal one second after each lead's last snapshot
    leave every snapshot identical: no peek past as_of, however short."""
    config = FeatureConfig()
    base, spec, _ = build_training_set(small_sim, config)
    leads = small_sim.leads
    later = leads["created_at"] + pd.Timedelta(days=max(config.snapshot_ages_days), seconds=1)
    extra = pd.DataFrame(
        {
            "lead_id": np.repeat(leads["lead_id"].to_numpy(), len(spec.activity_types)),
            "occurred_at": np.repeat(later.to_numpy(), len(spec.activity_types)),
            "activity_type": np.tile(spec.activity_types, len(leads)),
        }
    )
    acts = pd.concat([small_sim.activities, extra], ignore_index=True)
    acts["activity_type"] = acts["activity_type"].astype("category")
    new_deals = pd.DataFrame(
        {
            "deal_id": "X" + leads["lead_id"],
            "lead_id": leads["lead_id"],
            "created_at": later,
            "closed_at": pd.Series(pd.NaT, index=leads.index, dtype="datetime64[us, UTC]"),
            "status": "open",
            "amount": 1.0,
        }
    )
    deals = pd.concat(
        [small_sim.deals, new_deals.astype(small_sim.deals.dtypes.to_dict())], ignore_index=True
    )
    peeked, _, _ = build_training_set(
        small_sim.with_tables(activities=acts, deals=deals),
        config,
        spec=spec,
        data_end=small_sim.data_end,
    )
    pd.testing.assert_frame_equal(peeked, base, check_categorical=False)


def test_flat_dataset_has_the_same_shape(tmp_path):
    folder = write_dataset(
        tmp_path / "flat",
        leads="lead_id,created_at,source,Converted,Visits\n1,2024-01-01,web,1,3\n2,2024-01-02,ads,0,\n",
        dataset="label: {column: Converted}\n",
    )
    df, spec, stats = build_training_set(load_dataset(folder))
    assert list(df.columns) == ["lead_id", "as_of", "label", "source", "Visits"]
    assert df["label"].tolist() == [1, 0]
    assert not spec.history and stats["snapshots"] == 2


def test_activity_types_can_be_fixed_by_config(tmp_path):
    ds = load_dataset(
        write_dataset(tmp_path / "d", leads=LEADS, activities=ACTIVITIES, deals=DEALS)
    )
    config = CONFIG.model_copy(update={"activity_types": ["page_view", "webinar_attendance"]})
    df, spec, _ = build_training_set(ds, config, data_end=pd.Timestamp("2025-02-15T00:00:00Z"))
    a = df.set_index("lead_id").loc["A"]
    assert "n_call_total" not in df.columns and a["n_webinar_attendance_total"] == 0
    assert a["n_activities_total"] == 5  # totals still count every type
    assert a["contacted"] == 1  # sales touches come from the group, not the type list


def test_the_training_set_in_chunks_is_the_training_set(small_sim, small_set, tmp_path):
    """Chunks of 1,000 rows, written one at a time, give the very rows of the whole build."""
    from leadscore.features.batch import training_set_chunks
    from leadscore.features.training_set import read_training_set, write_training_set

    df, spec, stats = small_set
    spec2, stats2, chunks = training_set_chunks(small_sim, rows=1_000)
    assert spec2 == spec and stats2 == stats and stats["leads"] == df["lead_id"].nunique()
    write_training_set(chunks, spec2, stats2, tmp_path / "set.parquet")
    back, spec3, stats3 = read_training_set(tmp_path / "set.parquet")
    assert spec3 == spec and stats3 == stats
    pd.testing.assert_frame_equal(back, df)


def test_an_empty_chunk_stream_writes_nothing(tmp_path, small_set):
    from leadscore.crm.errors import DatasetError
    from leadscore.features.training_set import write_training_set

    _, spec, stats = small_set
    with pytest.raises(DatasetError, match="no training rows"):
        write_training_set(iter([]), spec, stats, tmp_path / "none.parquet")
    assert not (tmp_path / "none.parquet").exists()
