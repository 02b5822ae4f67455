"""The one time representation: int64 microseconds since the epoch, UTC; NEVER for a time
that has not happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.times import (
    NEVER,
    US_PER_DAY,
    days_us,
    from_us,
    times_us,
    timestamps_us,
    to_us,
    utc,
)


def test_every_form_of_one_instant_is_the_same_integer():
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    paris = when.astimezone(timezone(timedelta(hours=1)))
    expected = to_us("2026-03-01T09:30:00Z")
    assert to_us(when) == to_us(paris) == to_us(pd.Timestamp(when)) == expected
    assert to_us("2026-03-01T09:30:00") == expected  # naive is UTC
    assert times_us(["2026-03-01T09:30:00Z", "2026-03-01T10:30:00+01:00"]).tolist() == [
        expected,
        expected,
    ]
    column = pd.Series([pd.Timestamp(when), None]).astype("datetime64[us, UTC]")
    got = timestamps_us(column)
    assert got.dtype == np.int64 and got.tolist() == [expected, NEVER]
    assert timestamps_us(pd.Series([pd.Timestamp("2026-03-01 09:30")])).tolist() == [expected]
    assert from_us(np.array([expected]))[0] == utc(when)
    assert utc("2026-03-01 10:30+01:00") == pd.Timestamp(when)


def test_never_compares_as_not_yet_and_durations_are_whole_microseconds():
    as_of = to_us("2026-03-01")
    assert not (as_of >= NEVER) and as_of < NEVER
    assert days_us(90) == 90 * US_PER_DAY and days_us(0.5) == US_PER_DAY // 2


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "", "NaT"])
def test_text_that_is_not_a_timestamp_is_refused(bad):
    with pytest.raises(ValueError):
        to_us(bad)
    with pytest.raises(ValueError):
        times_us(["2026-03-01T00:00:00Z", bad])
