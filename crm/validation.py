"""Each table of a dataset (leads, activities, deals) normalised and validated against the data
contract: required columns, column roles of dataset.yaml, outcomes, deal statuses and dates,
and events dated before their lead was created (an error, or dropped and counted)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.crm.cells import (
    TIMESTAMP_DTYPE,
    as_text,
    fail_rows,
    looks_numeric,
    parse_account_ids,
    parse_ids,
    parse_lead_ids,
    parse_numbers,
    parse_timestamps,
    require_columns,
)
from leadscore.crm.contract import (
    ACTIVITY_COLUMNS,
    ACTIVITY_OPTIONAL,
    DEAL_COLUMNS,
    DEAL_OPTIONAL,
    DEAL_STATUSES,
    LEAD_COLUMNS,
    LEAD_OPTIONAL,
    UNKNOWN_SOURCE,
    DatasetSpec,
)
from leadscore.crm.errors import DatasetError
from leadscore.crm.lead_index import LeadIndex
from leadscore.crm.times import timestamps_us

NEGATIVE_LABELS = ("0", "false", "no")


def normalise_leads(
    df: pd.DataFrame, file: str, spec: DatasetSpec
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    require_columns(df, file, LEAD_COLUMNS + ((spec.label.column,) if spec.label else ()))
    if df.empty:
        raise DatasetError(file, "no data rows", expected="at least one lead")
    roles = spec.columns
    for role in ("ignore", "leaky", "keep", "categorical", "numeric"):
        for col in getattr(roles, role):
            if col not in df.columns:
                raise DatasetError(
                    "dataset.yaml",
                    f"columns.{role} names a column that {file} does not have",
                    column=col,
                    values=list(df.columns)[:8],
                )
    both = set(roles.categorical) & set(roles.numeric)
    if both:
        raise DatasetError(
            "dataset.yaml", "column declared both categorical and numeric", column=sorted(both)[0]
        )

    out = pd.DataFrame(index=df.index)
    out["lead_id"] = parse_ids(df, file, "lead_id", unique=True)
    out["created_at"] = parse_timestamps(df, file, "created_at", required=True)
    source = as_text(df["source"])
    out["source"] = source.fillna(UNKNOWN_SOURCE).astype("category")
    if "account_id" in df.columns:
        out["account_id"] = parse_account_ids(df, file)

    reserved = (
        set(LEAD_COLUMNS)
        | set(LEAD_OPTIONAL)
        | set(roles.ignore)
        | ({spec.label.column} if spec.label else set())
    )
    profile = [c for c in df.columns if c not in reserved]
    for col in profile:
        if col in roles.numeric or (col not in roles.categorical and looks_numeric(df[col])):
            out[col] = parse_numbers(df, file, col)
        else:
            out[col] = as_text(df[col]).astype("category")

    if spec.label is not None:
        out[spec.label.column] = _labels(df, file, spec)
    return out, tuple(profile)


def _labels(df: pd.DataFrame, file: str, spec: DatasetSpec) -> pd.Series:
    col = spec.label.column
    text = as_text(df[col]).str.lower()
    # Parquet numbers arrive as 1.0 / 0.0; compare them as integers.
    text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    positive = {str(v).strip().lower() for v in spec.label.positive}
    negative = set(NEGATIVE_LABELS) - positive
    fail_rows(file, col, text.isna(), "empty outcome", expected="0 or 1 in every row")
    bad = ~text.isin(positive | negative)
    fail_rows(
        file,
        col,
        bad,
        "outcome value not understood",
        text,
        expected=f"one of {sorted(positive)} (won) or {sorted(negative)} (not won)",
    )
    return text.isin(positive).astype("int8")


def normalise_activities(
    df: pd.DataFrame, file: str, leads: pd.DataFrame, lookup: LeadIndex | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    require_columns(df, file, ACTIVITY_COLUMNS)
    out = pd.DataFrame(index=df.index)
    out["lead_id"], lead_rows = parse_lead_ids(leads, file, df, lookup)
    out["occurred_at"] = parse_timestamps(df, file, "occurred_at", required=True)
    kind = as_text(df["activity_type"])
    fail_rows(
        file,
        "activity_type",
        kind.isna(),
        "empty activity_type",
        expected="an activity type such as page_view",
    )
    out["activity_type"] = kind.astype("category")
    out["value"] = parse_numbers(df, file, "value") if "value" in df.columns else np.nan
    out["campaign"] = (
        as_text(df["campaign"]).astype("category")
        if "campaign" in df.columns
        else pd.Categorical([None] * len(df))
    )
    extra = [c for c in df.columns if c not in ACTIVITY_COLUMNS + ACTIVITY_OPTIONAL]
    for col in extra:  # kept as text; features ignore columns they do not know
        out[col] = as_text(df[col])
    return out, lead_rows


def normalise_deals(
    df: pd.DataFrame, file: str, leads: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    require_columns(df, file, DEAL_COLUMNS)
    out = pd.DataFrame(index=df.index)
    out["deal_id"] = parse_ids(df, file, "deal_id", unique=True)
    out["lead_id"], lead_rows = parse_lead_ids(leads, file, df)
    out["created_at"] = parse_timestamps(df, file, "created_at", required=True)
    out["closed_at"] = parse_timestamps(df, file, "closed_at", required=False)
    status = as_text(df["status"]).str.lower()
    fail_rows(
        file,
        "status",
        ~status.isin(DEAL_STATUSES),
        "unknown deal status",
        as_text(df["status"]),
        expected="one of " + ", ".join(DEAL_STATUSES),
    )
    out["status"] = pd.Categorical(status, categories=list(DEAL_STATUSES))
    closed = status.isin(("won", "lost"))
    fail_rows(
        file,
        "closed_at",
        closed & out["closed_at"].isna(),
        "won or lost deal without closed_at",
        status,
        expected="the date the deal was closed",
    )
    fail_rows(
        file,
        "closed_at",
        (status == "open") & out["closed_at"].notna(),
        "open deal with a closed_at",
        df["closed_at"],
        expected="an empty closed_at while the deal is open",
    )
    early = out["closed_at"].notna() & (out["closed_at"] < out["created_at"])
    fail_rows(
        file,
        "closed_at",
        early,
        "closed_at before the deal's created_at",
        df["closed_at"],
        expected="closed_at >= created_at",
    )
    if "amount" in df.columns:
        out["amount"] = parse_numbers(df, file, "amount")
        fail_rows(
            file,
            "amount",
            out["amount"] < 0,
            "negative amount",
            out["amount"],
            expected="an amount >= 0",
        )
    else:
        out["amount"] = np.nan
    extra = [c for c in df.columns if c not in DEAL_COLUMNS + DEAL_OPTIONAL]
    for col in extra:
        out[col] = as_text(df[col])
    return out, lead_rows


def check_early(
    df: pd.DataFrame,
    lead_rows: np.ndarray,
    column: str,
    file: str,
    leads: pd.DataFrame,
    policy: str,
) -> tuple[pd.DataFrame, int, np.ndarray]:
    """Events dated before their lead existed: an error, or dropped and counted; the rows
    kept, the number dropped and the mask of kept rows.

    `lead_rows`: each row's lead position in `leads` (from the lead_id check).
    """
    created = timestamps_us(leads["created_at"])[lead_rows]
    early = timestamps_us(df[column]) < created
    if policy == "error":
        fail_rows(
            file,
            column,
            early,
            f"{column} before the lead's created_at",
            df[column],
            expected="events on or after the lead was created (or early_events: drop in dataset.yaml)",
        )
        return df, 0, ~early
    n = int(early.sum())
    return (df.loc[~early].reset_index(drop=True) if n else df), n, ~early


def empty_deals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": pd.Series([], dtype="str"),
            "lead_id": pd.Series([], dtype="str"),
            "created_at": pd.Series([], dtype=TIMESTAMP_DTYPE),
            "closed_at": pd.Series([], dtype=TIMESTAMP_DTYPE),
            "status": pd.Categorical([], categories=list(DEAL_STATUSES)),
            "amount": pd.Series([], dtype="float64"),
        }
    )
