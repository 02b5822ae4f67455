"""Every CSV we write for people: cells a spreadsheet would run as a formula are
neutralised, and times are written in one format. Every JSON summary is strict JSON
(`json_ready`: no NaN, no Infinity).

Formula injection (OWASP's CSV injection guidance): a text cell whose first character, or
first after leading spaces, is `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed
with a single quote, so that a spreadsheet shows it as text instead of running it
(`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`). Only text cells: numbers stay numbers, a
negative number included. Parquet and JSON outputs keep the raw values.

Times (datetime columns, or `time_columns` given as text) are written as ISO 8601 in UTC
with microseconds, `2026-03-01T09:30:49.000000+00:00`, so that one column never mixes
`...:49+00:00` and `...:49.123000+00:00`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def neutralised(value: object) -> object:
    """One cell as a spreadsheet may safely read it (text only; anything else as it is)."""
    if isinstance(value, str) and value.lstrip(" ").startswith(TRIGGERS):
        return "'" + value
    return value


def iso_times(values: pd.Series) -> pd.Series:
    """Times as ISO 8601 text in UTC with microseconds (missing stays missing)."""
    times = pd.to_datetime(values, utc=True)
    return times.dt.strftime(TIME_FORMAT).where(times.notna(), None)


def csv_ready(frame: pd.DataFrame, time_columns: Iterable[str] = ()) -> pd.DataFrame:
    """`frame` as it goes into a CSV: times formatted, text cells neutralised."""
    out = frame.copy()
    times = set(time_columns)
    for col in out.columns:
        series = out[col]
        if col in times or pd.api.types.is_datetime64_any_dtype(series):
            out[col] = iso_times(series)
        elif pd.api.types.is_string_dtype(series) or series.dtype == object:
            out[col] = series.astype(object).map(neutralised)
    return out


def write_csv(frame: pd.DataFrame, path: str | Path, time_columns: Iterable[str] = ()) -> Path:
    """`csv_ready(frame)` written to `path` (no index)."""
    csv_ready(frame, time_columns).to_csv(path, index=False)
    return Path(path)


def json_ready(value: object) -> object:
    """`value` as strict JSON can hold it: NaN and infinities as null (JSON has neither, and
    `Infinity` breaks every strict parser), times and other objects as text."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (int, float)) or hasattr(value, "item"):
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, float) and not math.isfinite(number):
            return None
        return number if isinstance(number, (int, float, bool)) else str(number)
    return str(value)
