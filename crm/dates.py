"""Dates of a foreign export: parsed by the mapping's format (day-first, a `strptime`
format, a local time zone, with what a daylight-saving gap or overlap does), or, for a file
with no creation time, derived from the order of a sequence column (`leads.time_order`)."""

from __future__ import annotations

import warnings
from contextlib import suppress

import numpy as np
import pandas as pd

from leadscore.crm.errors import DatasetError
from leadscore.crm.mapping import DateFormat, TimeOrder


def parse_dates(
    text: pd.Series, fmt: DateFormat, file: str, column: str, mapping_file: str
) -> tuple[pd.Series, int]:
    """Export timestamps as UTC, and how many local times fell in a daylight-saving gap
    (shifted forward to the first valid time, as a CRM that stored "00:30" on a night
    when clocks jumped from 00:00 to 01:00 meant); unparseable cells (and a repeated,
    ambiguous local hour) are an error naming the export's rows.

    Without a fixed format, the format is inferred from the column (fast: one vectorised
    parse), and only the cells it does not fit are parsed one by one (exports that mix
    "2025-01-02" and "2025-01-02T10:00:00Z", say).
    """
    present = text.notna()
    utc, shifted = _vectorised(text, fmt)
    left = present & utc.isna()
    if left.any() and fmt.format is None:
        cells = [_one_date(v, fmt) for v in text[left]]
        utc[left] = [ts for ts, _ in cells]
        shifted += sum(moved for _, moved in cells)
    bad = present & utc.isna()
    if bad.any():
        if fmt.format is not None:
            how = f"the format {fmt.format!r} (dates.format in {mapping_file})"
        elif fmt.dayfirst:
            how = f"day-first dates such as 31/12/2025 (dates.dayfirst in {mapping_file})"
        else:
            how = (
                "dates such as 2025-12-31 or 12/31/2025 (set dates.dayfirst or dates.format "
                f"in {mapping_file} for other orders)"
            )
        if fmt.timezone != "UTC":
            how += f", as a time that exists in {fmt.timezone}"
        idx = np.flatnonzero(bad.to_numpy())
        raise DatasetError(
            file,
            "unparseable date",
            column=column,
            # the export's own rows: a frame filtered by the mapping keeps their numbers
            rows=_row_numbers(text.index, idx[:5]),
            values=text.iloc[idx[:5]].tolist(),
            expected=how,
            total=int(bad.sum()),
        )
    return utc, int(shifted)


# A UTC offset at the end of a cell: Z, +02:00, +0200, -05
_OFFSET = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"


def _vectorised(text: pd.Series, fmt: DateFormat) -> tuple[pd.Series, int]:
    """The column parsed in whole-column steps (NaT where a cell does not fit), and how
    many local times were shifted out of a gap. Cells with different UTC offsets (any
    local-time export across a daylight-saving change: +02:00 in summer, +01:00 in winter)
    are parsed together straight to UTC, and cells without an offset as local times in
    the mapping's zone: never one cell at a time."""
    how = {"format": fmt.format} if fmt.format is not None else {"dayfirst": fmt.dayfirst}
    empty = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    first = None
    with suppress(ValueError, TypeError), warnings.catch_warnings():
        # mixed offsets, or offsets next to naive times, raise; a first cell that fits no
        # format only warns (every cell is then tried on its own, as below)
        warnings.filterwarnings("ignore", "Could not infer format", UserWarning)
        first = _to_utc(pd.to_datetime(text, errors="coerce", **how), fmt.timezone)
    if first is not None and not (text.notna() & first[0].isna()).any():
        return first
    # The format inferred from the first cell did not fit every cell (offsets next to
    # naive times, one format with an offset and one without): split by offset.
    if first is None:
        return _by_offset(text, how, fmt.timezone, empty)
    utc, shifted = first
    rest = (text.notna() & utc.isna()).to_numpy()
    more, more_shifted = _by_offset(text[rest], how, fmt.timezone, empty[rest])
    utc = utc.copy()
    utc[rest] = more
    return utc, shifted + more_shifted


def _by_offset(text, how, zone, empty) -> tuple[pd.Series, int]:
    """Cells with a UTC offset straight to UTC, the others as local times in `zone`."""
    # Which cells end in an offset: the pattern is run on the distinct endings only (a
    # column has few), then looked up for every cell.
    endings = text.astype("string").str.rstrip().str[-6:]
    distinct = pd.Series(endings.dropna().unique(), dtype="string")
    offset_endings = distinct[distinct.str.contains(_OFFSET, regex=True, na=False)]
    with_offset = endings.isin(offset_endings).to_numpy(dtype=bool)
    out, shifted = empty.copy(), 0
    try:
        if with_offset.any():
            part = pd.to_datetime(text[with_offset], errors="coerce", utc=True, **how)
            out[with_offset] = part.astype("datetime64[us, UTC]")
        naive = ~with_offset & text.notna().to_numpy()
        if naive.any():
            local, shifted = _to_utc(pd.to_datetime(text[naive], errors="coerce", **how), zone)
            out[naive] = local
    except (ValueError, TypeError):  # left to the cell-by-cell pass
        return empty, 0
    return out, shifted


def _row_numbers(index: pd.Index, positions: np.ndarray) -> list[int]:
    """1-based row numbers of the export: from an integer index (the file's row order,
    kept through the mapping's row filters), else from the positions."""
    if pd.api.types.is_integer_dtype(index):
        return (np.asarray(index[positions]) + 1).tolist()
    return (positions + 1).tolist()


def _one_date(value: str, fmt: DateFormat) -> tuple[pd.Timestamp, bool]:
    """One cell the column's inferred format did not fit (NaT when it does not parse), and
    whether it was shifted out of a daylight-saving gap."""
    try:
        ts = pd.Timestamp(pd.to_datetime(value, dayfirst=fmt.dayfirst))
        if ts.tzinfo is not None:
            return ts.tz_convert("UTC"), False
        local = ts.tz_localize(fmt.timezone, ambiguous="NaT", nonexistent="shift_forward")
        gap = pd.isna(ts.tz_localize(fmt.timezone, ambiguous="NaT", nonexistent="NaT"))
        return local.tz_convert("UTC"), bool(gap and pd.notna(local))
    except (ValueError, TypeError, OverflowError):  # includes ambiguous local times
        return pd.NaT, False


def _to_utc(parsed: pd.Series, zone: str) -> tuple[pd.Series, int]:
    """Naive timestamps are in `zone`: a local time in a daylight-saving gap moves forward
    to the first valid time (counted); a repeated, ambiguous hour becomes NaT."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), 0
    strict = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    local = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    shifted = int((strict.isna() & local.notna() & parsed.notna()).sum())
    return local.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), shifted


def times_from_order(raw: pd.DataFrame, order: TimeOrder, file: str) -> pd.Series:
    """Synthetic creation times: leads spread evenly over `days`, in the column's order."""
    text = raw[order.column]
    numbers = pd.to_numeric(text, errors="coerce")
    bad = text.isna() | (numbers.isna() if numbers.notna().any() else False)
    if np.asarray(bad).any():
        idx = np.flatnonzero(np.asarray(bad))
        raise DatasetError(
            file,
            "empty or non-numeric value in the time-order column",
            column=order.column,
            rows=(idx[:5] + 1).tolist(),
            values=text.iloc[idx[:5]].tolist(),
            expected="a number that grows with time in every row (leads.time_order)",
            total=len(idx),
        )
    key = numbers if numbers.notna().any() else text
    rank = key.rank(method="min").to_numpy() - 1  # ties share a time
    step = pd.Timedelta(seconds=int(order.days * 86_400 // max(len(raw), 1)))
    start = pd.Timestamp(order.start, tz="UTC")
    return pd.Series(start + step * rank.astype(np.int64), index=raw.index).astype(
        "datetime64[us, UTC]"
    )
