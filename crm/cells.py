"""A column's cells read into typed values and checked: text, ids, account ids, UTC
timestamps, numbers, lead ids of a child table; a failed check raises a `DatasetError` naming
the file, the column and the first offending rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.crm.errors import DatasetError
from leadscore.crm.lead_index import LeadIndex, lead_positions

TIMESTAMP_DTYPE = "datetime64[us, UTC]"
ISO_HINT = "an ISO-8601 timestamp such as 2025-03-01T09:30:00Z (UTC when no offset)"


def require_columns(df: pd.DataFrame, file: str, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DatasetError(
            file,
            f"missing required column{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{c}'" for c in missing),
            column=missing[0],
            values=list(df.columns)[:8],
            expected="columns " + ", ".join(required),
        )


def fail_rows(
    file: str,
    column: str,
    mask: pd.Series,
    problem: str,
    values: pd.Series | None = None,
    expected: str | None = None,
) -> None:
    """Raise a DatasetError for the rows where `mask` is true, if any."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    idx = np.flatnonzero(mask)
    shown = (
        [str(v) if isinstance(v, pd.Timestamp) else v for v in values.iloc[idx[:5]]]
        if values is not None
        else []
    )
    raise DatasetError(
        file,
        problem,
        column=column,
        rows=(idx[:5] + 1).tolist(),
        values=shown,
        expected=expected,
        total=int(mask.sum()),
    )


def as_text(s: pd.Series) -> pd.Series:
    """Strip text; blanks become missing. Non-text columns (Parquet ints) become text."""
    if (
        pd.api.types.is_string_dtype(s)
        or s.dtype == object
        or isinstance(s.dtype, pd.CategoricalDtype)
    ):
        out = s.astype("str").where(s.notna())
    else:
        out = s.map(lambda v: None if pd.isna(v) else str(v))
    out = out.str.strip()
    return out.where(out != "")


def parse_ids(df: pd.DataFrame, file: str, column: str, *, unique: bool) -> pd.Series:
    ids = as_text(df[column])
    fail_rows(file, column, ids.isna(), f"empty {column}", expected=f"a non-empty {column}")
    if unique:
        dup = ids.duplicated(keep=False)
        fail_rows(file, column, dup, f"duplicate {column}", ids, expected=f"each {column} once")
    return ids.astype("str")


def parse_account_ids(df: pd.DataFrame, file: str) -> pd.Series:
    """Each lead's account: text, blank for a lead without one (an account id may repeat:
    the account's contacts). Over 256 characters is refused, as a lead_id would be."""
    ids = as_text(df["account_id"])
    fail_rows(
        file,
        "account_id",
        ids.str.len().fillna(0) > 256,
        "account_id over 256 characters",
        ids,
        expected="an account id (or blank)",
    )
    return ids.astype("str")


def parse_timestamps(df: pd.DataFrame, file: str, column: str, *, required: bool) -> pd.Series:
    """UTC timestamps from text (CSV) or typed (Parquet) cells: the same checks either way
    (an empty required cell is an error whether it reads as '' or as NaT)."""
    s = df[column]
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        parsed, text = s.dt.tz_convert("UTC"), None
    elif pd.api.types.is_datetime64_dtype(s):
        parsed, text = s.dt.tz_localize("UTC"), None
    else:
        text = as_text(s)
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    empty = parsed.isna() if text is None else text.isna()
    if required:
        fail_rows(file, column, empty, f"empty {column}", expected=ISO_HINT)
    if text is not None:
        fail_rows(
            file, column, text.notna() & parsed.isna(), "unparseable timestamp", text,
            expected=ISO_HINT,
        )  # fmt: skip
    return parsed.astype(TIMESTAMP_DTYPE)


def parse_numbers(df: pd.DataFrame, file: str, column: str) -> pd.Series:
    s = df[column]
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    text = as_text(s)
    parsed = pd.to_numeric(text, errors="coerce")
    fail_rows(
        file,
        column,
        text.notna() & parsed.isna(),
        "not a number",
        text,
        expected="a number or an empty cell",
    )
    return parsed.astype("float64")


def looks_numeric(s: pd.Series) -> bool:
    """True when every non-empty value parses as a number."""
    if pd.api.types.is_bool_dtype(s):
        return False
    if pd.api.types.is_numeric_dtype(s):
        return True
    text = as_text(s).dropna()
    # A failure among the first values settles it without parsing the whole column.
    head = text.iloc[:200]
    if len(text) == 0 or pd.to_numeric(head, errors="coerce").isna().any():
        return False
    return bool(pd.to_numeric(text, errors="coerce").notna().all())


def parse_lead_ids(
    leads: pd.DataFrame, file: str, df: pd.DataFrame, lookup: LeadIndex | None = None
) -> tuple[pd.Series, np.ndarray]:
    """Check every lead_id of a child table exists in leads; the text ids and their rows."""
    ids = parse_ids(df, file, "lead_id", unique=False)
    positions = (
        lookup.positions(ids) if lookup is not None else lead_positions(ids, leads["lead_id"])
    )
    unknown = positions < 0
    fail_rows(
        file,
        "lead_id",
        unknown,
        "lead_id not found in leads",
        ids,
        expected="a lead_id of the leads table",
    )
    return ids, positions
