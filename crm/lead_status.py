"""The lead-status history: what sales did with each lead (working, accepted, rejected), read
from the optional `lead_status` table and mapped to stages by `dataset.yaml` (and the big
CRMs' usual values, `leadscore.crm.contract.DEFAULT_STATUS_STAGES`).

It is sales' reaction to our hand-off, so it is never a model feature: the feature engines
never read this table, and the leakage audit excludes a profile column that holds such
values (`status_like_columns`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.crm.cells import (
    TIMESTAMP_DTYPE,
    as_text,
    fail_rows,
    parse_lead_ids,
    parse_timestamps,
    require_columns,
)
from leadscore.crm.contract import (
    STAGES,
    STATUS_COLUMNS,
    STATUS_OPTIONAL,
    DatasetSpec,
    status_key,
)

# A profile column whose values are this share of known statuses is a status, not a profile.
STATUS_LIKE_SHARE = 0.8
STATUS_LIKE_NAMES = ("status", "lead_status", "lead status", "leadstatus")


def normalise_lead_status(
    df: pd.DataFrame, file: str, leads: pd.DataFrame, spec: DatasetSpec
) -> tuple[pd.DataFrame, np.ndarray]:
    """The status table typed and checked: every lead_id known, `changed_at` a timestamp,
    every status mapped to a stage, a reason only on a rejection. Adds `stage`; returns the
    frame and each row's lead position in `leads` (for the early-event check)."""
    require_columns(df, file, STATUS_COLUMNS)
    out = pd.DataFrame(index=df.index)
    out["lead_id"], lead_rows = parse_lead_ids(leads, file, df)
    out["changed_at"] = parse_timestamps(df, file, "changed_at", required=True)
    status = as_text(df["status"])
    fail_rows(
        file,
        "status",
        status.isna(),
        "empty status",
        expected="the lead's status, such as Working - Contacted or Unqualified",
    )
    mapping = spec.status_map
    stage = status.map(lambda v: mapping.get(status_key(v)))
    fail_rows(
        file,
        "status",
        stage.isna(),
        "unknown lead status",
        status,
        expected="a status dataset.yaml maps to a stage (status_stages: {new, working, "
        "accepted, rejected: [values]}) or one the big CRMs use (Working - Contacted, "
        "Qualified, Unqualified, IN_PROGRESS, ...)",
    )
    out["status"] = status.astype("str")
    out["stage"] = pd.Categorical(stage, categories=list(STAGES))
    reason = as_text(df["reason"]) if "reason" in df.columns else pd.Series(None, index=df.index)
    fail_rows(
        file,
        "reason",
        reason.notna() & (stage != "rejected"),
        "a reason on a status that is not a rejection",
        status,
        expected="a reason only where sales rejected the lead (stage rejected)",
    )
    out["reason"] = reason.astype(object)
    out["owner"] = (
        as_text(df["owner"]).astype(object)
        if "owner" in df.columns
        else pd.Series(None, index=df.index, dtype=object)
    )
    extra = [c for c in df.columns if c not in STATUS_COLUMNS + STATUS_OPTIONAL]
    for col in extra:
        out[col] = as_text(df[col])
    return out, lead_rows


def sort_status(frame: pd.DataFrame) -> pd.DataFrame:
    """Each lead's changes in time order (ties: the order of the file)."""
    return frame.sort_values(["lead_id", "changed_at"], kind="stable").reset_index(drop=True)


def empty_lead_status() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": pd.Series([], dtype="str"),
            "changed_at": pd.Series([], dtype=TIMESTAMP_DTYPE),
            "status": pd.Series([], dtype="str"),
            "stage": pd.Categorical([], categories=list(STAGES)),
            "reason": pd.Series([], dtype=object),
            "owner": pd.Series([], dtype=object),
        }
    )


def status_like_columns(
    leads: pd.DataFrame, columns: list[str], spec: DatasetSpec | None = None
) -> dict[str, str]:
    """Profile columns that hold sales' lead status rather than a profile attribute (named
    like one, or most of their values are lead-status values): column -> why, in words.
    Sales' reaction to a hand-off is never a feature."""
    mapping = (spec or DatasetSpec()).status_map
    out = {}
    for col in columns:
        if col not in leads:
            continue
        values = as_text(leads[col].astype(object)).dropna()
        if status_key(col) in {status_key(n) for n in STATUS_LIKE_NAMES}:
            out[col] = "named like the lead's status (sales' reaction to a hand-off)"
            continue
        if not len(values) or pd.api.types.is_numeric_dtype(leads[col]):
            continue
        known = values.map(lambda v: status_key(v) in mapping)
        # One generic word ("Open", "New") shared with a profile column is no evidence.
        distinct = {status_key(v) for v in values[known].unique()}
        if known.mean() >= STATUS_LIKE_SHARE and len(distinct) >= 2:
            out[col] = (
                f"{known.mean():.0%} of its values are lead statuses "
                f"({', '.join(sorted(distinct)[:3])}): sales' reaction to a hand-off"
            )
    return out
