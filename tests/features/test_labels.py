from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.crm.times import NEVER, timestamps_us
from leadscore.features.labels import Timeline, open_rows, snapshot_rows, window_pairs

T0 = pd.Timestamp("2025-01-01T00:00:00Z")
DAY = pd.Timedelta(days=1)


def _leads(*ids):
    return pd.DataFrame(
        {
            "lead_id": list(ids),
            "created_at": pd.Series([T0] * len(ids)).astype("datetime64[us, UTC]"),
        }
    )


def _deals(rows):
    df = pd.DataFrame(rows, columns=["lead_id", "closed_at", "status"])
    df["closed_at"] = pd.to_datetime(df["closed_at"], utc=True).astype("datetime64[us, UTC]")
    return df


def _snap(leads, deals, ages=(0, 10, 30), horizon=20, end=T0 + 100 * DAY):
    snaps, stats = snapshot_rows(
        Timeline.of(leads, deals), ages_days=list(ages), horizon_days=horizon, data_end=end
    )
    snaps["age"] = (snaps["as_of_us"] - snaps["created_us"]) / 86_400e6
    return snaps, stats


def test_label_window_is_open_closed():
    # Won exactly at as_of + horizon for age 10 (day 30): positive at age 10, not at age 0.
    snaps, _ = _snap(_leads("A"), _deals([("A", T0 + 30 * DAY, "won")]))
    assert snaps.set_index("age")["label"].to_dict() == {0.0: 0, 10.0: 1}
    # One second later it falls outside age 10's window, and the lead is still open (and
    # about to win) at age 30.
    snaps, _ = _snap(_leads("A"), _deals([("A", T0 + 30 * DAY + pd.Timedelta(seconds=1), "won")]))
    assert snaps.set_index("age")["label"].to_dict() == {0.0: 0, 10.0: 0, 30.0: 1}


def test_no_snapshot_once_the_lead_is_closed():
    # Closed (lost) at day 10 exactly: the day-10 snapshot is already closed (<= as_of).
    snaps, stats = _snap(_leads("A"), _deals([("A", T0 + 10 * DAY, "lost")]))
    assert snaps["age"].tolist() == [0.0]
    assert snaps["label"].tolist() == [0]  # a lost deal is never a positive
    assert stats["dropped_closed"] == 2


def test_open_deals_do_not_close_a_lead():
    snaps, _ = _snap(_leads("A"), _deals([("A", None, "open")]))
    assert snaps["age"].tolist() == [0.0, 10.0, 30.0]


def test_censored_snapshots_are_dropped_not_negative():
    # End at day 35 with a 20-day horizon: ages 0 and 10 observed, 30 censored.
    snaps, stats = _snap(_leads("A"), _deals([]), end=T0 + 35 * DAY)
    assert snaps["age"].tolist() == [0.0, 10.0]
    assert stats["dropped_censored"] == 1
    # A win inside a censored window does not resurrect it.
    snaps, _ = _snap(_leads("A"), _deals([("A", T0 + 25 * DAY, "won")]), end=T0 + 35 * DAY)
    assert snaps.set_index("age")["label"].to_dict() == {0.0: 0, 10.0: 1}


def test_ages_not_reached_are_not_candidates():
    _, stats = _snap(_leads("A"), _deals([]), end=T0 + 15 * DAY)
    assert stats["candidates"] == 2  # ages 0 and 10 reached; 30 not
    assert stats["snapshots"] == 0 and stats["dropped_censored"] == 2


@pytest.mark.parametrize("status", ["won", "lost"])
def test_earliest_close_wins(status):
    deals = _deals([("A", T0 + 5 * DAY, status), ("A", T0 + 50 * DAY, "won")])
    snaps, _ = _snap(_leads("A"), deals)
    assert snaps["age"].tolist() == [0.0]


def test_open_rows_use_the_snapshots_rule():
    leads = _leads("A", "B", "C")
    deals = _deals([("A", T0 + 10 * DAY, "won"), ("B", None, "open"), ("C", T0 + 11 * DAY, "lost")])
    timeline = Timeline.of(leads, deals)
    # At day 10 A has just closed (<= as_of): gone; C closes a day later: still open.
    assert open_rows(timeline, T0 + 10 * DAY)["lead"].tolist() == [1, 2]
    assert open_rows(timeline, T0 + 11 * DAY)["lead"].tolist() == [1]
    assert open_rows(timeline, T0 - DAY).empty  # nobody exists yet
    assert timeline.first_closed_us[1] == NEVER


def test_won_within_counts_only_won_deals_inside_the_window():
    leads = _leads("A", "B")
    deals = _deals([("A", T0 + 5 * DAY, "lost"), ("A", T0 + 20 * DAY, "won"), ("B", None, "open")])
    timeline = Timeline.of(leads, deals)
    lead = np.array([0, 0, 0, 1])
    as_of = np.array([0, 19, 20, 0]) * 86_400_000_000 + timeline.created_us[lead]
    assert timeline.won_within(lead, as_of, 20 * 86_400_000_000).tolist() == [1, 1, 0, 0]


def _brute_pairs(q_lead, lo, hi, d_lead, d_t):
    return sorted(
        (i, j)
        for i in range(len(q_lead))
        for j in range(len(d_lead))
        if q_lead[i] == d_lead[j] and lo[i] < d_t[j] <= hi[i]
    )


@settings(max_examples=200, deadline=None)
@given(
    queries=st.lists(
        st.tuples(st.integers(0, 3), st.integers(-5, 30), st.integers(0, 10)), max_size=12
    ),
    items=st.lists(st.tuples(st.integers(0, 3), st.integers(-5, 40)), max_size=12),
)
def test_window_pairs_equal_the_brute_force_definition(queries, items):
    q_lead = np.array([q[0] for q in queries], dtype=np.int64)
    lo = np.array([q[1] for q in queries], dtype=np.int64)
    hi = lo + np.array([q[2] for q in queries], dtype=np.int64)
    d_lead = np.array([i[0] for i in items], dtype=np.int64)
    d_t = np.array([i[1] for i in items], dtype=np.int64)
    q, d = window_pairs(q_lead, lo, hi, d_lead, d_t)
    assert sorted(zip(q.tolist(), d.tolist(), strict=True)) == _brute_pairs(
        q_lead, lo, hi, d_lead, d_t
    )


def test_every_consumer_uses_the_one_definition(small_sim, small_set):
    """The training set's rows are open at their as_of and labelled won-within; the scoring
    set is exactly the leads open at its as_of; the report's revenue sums the won deals of
    the same window."""
    from leadscore.features.batch import build_scoring_set
    from leadscore.features.labels import won_within
    from leadscore.training.report import _opportunity, _revenue

    df, spec, _ = small_set
    timeline = Timeline.of_dataset(small_sim)
    ids = small_sim.leads["lead_id"].astype("str")
    position = {v: i for i, v in enumerate(ids)}
    lead = df["lead_id"].astype("str").map(position).to_numpy()
    as_of_us = timestamps_us(df["as_of"])
    assert timeline.is_open(lead, as_of_us).all()
    assert (
        df["label"].to_numpy()
        == won_within(small_sim, df["lead_id"], df["as_of"], spec.horizon_days)
    ).all()

    when = small_sim.data_end - pd.Timedelta(days=30)
    scored = build_scoring_set(small_sim, spec, when)
    expected = ids.to_numpy()[open_rows(timeline, when)["lead"].to_numpy()]
    assert sorted(scored["lead_id"].astype("str")) == sorted(expected)

    # Revenue and opportunities, brute force over the deals table for a sample of rows.
    rows = df.sample(300, random_state=0).reset_index(drop=True)
    revenue = _revenue(small_sim, rows, spec.horizon_days)
    opened = _opportunity(small_sim, rows, spec.horizon_days)
    deals = small_sim.deals
    h = pd.Timedelta(days=spec.horizon_days)
    for i, r in rows.iterrows():
        mine = deals[deals["lead_id"].astype("str") == str(r["lead_id"])]
        won = mine[
            (mine["status"] == "won")
            & (mine["closed_at"] > r["as_of"])
            & (mine["closed_at"] <= r["as_of"] + h)
        ]
        assert revenue[i] == pytest.approx(won["amount"].fillna(0).sum())
        created = (mine["created_at"] > r["as_of"]) & (mine["created_at"] <= r["as_of"] + h)
        assert opened[i] == bool(created.any())
