"""The one time representation: integer microseconds since the epoch, UTC.

Every engine (DuckDB SQL, NumPy over payloads, pandas at the edges) computes with int64
microseconds; a timestamp becomes one exactly once, here. A missing end time (a deal not
closed yet) is `NEVER`, the largest int64: "has not happened", so that `closed <= as_of` is
false and `closed > as_of` true without a special case. Durations are whole microseconds
too (`days_us`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import repeat

import numpy as np
import pandas as pd

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
NEVER = np.iinfo(np.int64).max  # a time that has not happened (a deal still open)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min  # NumPy's NaT seen as an int64


def utc(when) -> pd.Timestamp:
    """One point in time as a UTC Timestamp: a naive time is read as UTC."""
    when = pd.Timestamp(when)
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")


def days_us(days: float) -> int:
    """A duration of `days` days in whole microseconds (rounded to the nearest)."""
    return int(round(float(days) * US_PER_DAY))


def to_us(value: str | datetime) -> int:
    """A timestamp (datetime, pandas Timestamp or ISO-8601 text; UTC when naive) in µs.

    Raises ValueError on text that is not ISO-8601.
    """
    asm8 = getattr(value, "asm8", None)  # pandas Timestamp: its UTC datetime64, no pandas math
    if asm8 is not None:
        return int(asm8.astype("datetime64[us]").astype(np.int64))
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(dt, datetime):
        raise ValueError(f"not a timestamp: {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _ONE_US


def times_us(values: list) -> np.ndarray:
    """Many timestamps in µs (int64), exactly as `to_us` gives them, but in bulk: UTC text
    (`Z`, `+00:00` or no offset) is parsed by NumPy in one call; anything else (datetime
    objects, other offsets, bad text) goes through `to_us` one by one."""
    if not values:
        return np.zeros(0, dtype=np.int64)
    if set(map(type, values)) == {str}:
        naive = list(
            map(str.removesuffix, map(str.removesuffix, values, repeat("Z")), repeat("+00:00"))
        )
        # Any offset left (a '+', or a '-' beyond the date's two, in any one value) goes the
        # exact way; so does text NumPy reads as "not a time" ('NaT', ''), which it would
        # otherwise turn into the smallest int64 without a word.
        dashes = set(map(str.count, naive, repeat("-")))
        if dashes == {2} and not any(map(str.__contains__, naive, repeat("+"))):
            try:
                parsed = np.array(naive, dtype="datetime64[us]").astype(np.int64)
            except ValueError:
                parsed = None  # the exact path below names the bad value
            if parsed is not None and not (parsed == _NAT).any():
                return parsed
    return np.fromiter(map(to_us, values), dtype=np.int64, count=len(values))


def timestamps_us(values: pd.Series) -> np.ndarray:
    """A column of timestamps (tz-aware, or naive read as UTC) as int64 µs since the epoch;
    a missing value is `NEVER`."""
    values = pd.Series(values)
    if getattr(values.dt, "tz", None) is None:
        values = values.dt.tz_localize("UTC")
    naive = values.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    raw = naive.to_numpy().view("int64").copy()
    raw[raw == _NAT] = NEVER
    return raw


def from_us(us: np.ndarray) -> pd.DatetimeIndex:
    """int64 µs since the epoch back to UTC timestamps (at the edges: files, pages)."""
    return pd.to_datetime(np.asarray(us, dtype=np.int64), unit="us", utc=True)
