"""A dataset at a glance: what `leadscore validate` prints."""

from __future__ import annotations

import pandas as pd

from leadscore.crm.columns import id_like_columns
from leadscore.crm.dataset import Dataset


def summarize_dataset(ds: Dataset) -> dict:
    """Counts, date range and win rate of a validated dataset, as plain JSON-able values."""
    leads = ds.leads
    summary: dict = {
        "path": str(ds.path),
        "files": ds.files,
        "kind": "flat" if ds.is_flat else "history",
        "leads": int(len(leads)),
        "created_from": _iso(ds.data_start),
        "data_end": _iso(ds.data_end),
        "leads_by_source": _counts(leads["source"]),
        "profile_columns": list(ds.profile_columns),
        "leaky_columns": list(ds.spec.columns.leaky),
        "id_like_columns": id_like_columns(
            ds.leads, list(ds.profile_columns), ds.spec.columns.keep
        ),
        "time_order": ds.spec.time_order,
        "activities": int(len(ds.activity_table)),
        "activities_by_type": dict(
            sorted(ds.activity_table.type_counts().items(), key=lambda kv: -kv[1])
        ),
        "deals": int(len(ds.deals)),
        "deals_by_status": _counts(ds.deals["status"]),
        "dropped": dict(ds.dropped),
    }
    if ds.is_flat:
        summary["win_rate"] = float(leads[ds.label_column].mean())
    else:
        won = ds.deals.loc[ds.deals["status"] == "won", "lead_id"].unique()
        summary["won_leads"] = int(len(won))
        summary["win_rate"] = float(len(won) / len(leads))
        # Revenue only when won deals carry amounts: an export without an amount column (or
        # with every amount blank) has no revenue to show, not a revenue of 0.
        amounts = ds.deals.loc[ds.deals["status"] == "won", "amount"]
        summary["won_revenue"] = float(amounts.sum()) if amounts.notna().any() else None
    return summary


def _counts(values: pd.Series) -> dict[str, int]:
    counts = values.value_counts(dropna=False)
    return {str(k): int(v) for k, v in counts.items() if v > 0}


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat() if pd.notna(ts) else ""
