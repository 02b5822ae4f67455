from __future__ import annotations

import pandas as pd
import pytest

from features.labels import build_snapshots

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
    snaps, stats = build_snapshots(
        leads, deals, ages_days=list(ages), horizon_days=horizon, data_end=end
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
