"""A dataset at a glance: what `leadscore validate` prints."""

from __future__ import annotations

import numpy as np
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
        "profile_types": {
            c: "category" if isinstance(leads[c].dtype, pd.CategoricalDtype) else "number"
            for c in ds.profile_columns
        },
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
    if ds.lead_status is not None:  # only when the export has one: other summaries unchanged
        status = ds.lead_status
        summary["lead_status"] = int(len(status))
        summary["lead_status_by_stage"] = _counts(status["stage"])
        summary["leads_with_status"] = int(status["lead_id"].nunique())
    if ds.is_flat:
        summary["win_rate"] = float(leads[ds.label_column].mean())
        outcome = leads[ds.label_column].to_numpy(dtype=float)
    else:
        won = ds.deals.loc[ds.deals["status"] == "won", "lead_id"].unique()
        outcome = leads["lead_id"].isin(won).to_numpy(dtype=float)
        summary["won_leads"] = int(len(won))
        summary["win_rate"] = float(len(won) / len(leads))
        # Revenue only when won deals carry amounts: an export without an amount column (or
        # with every amount blank) has no revenue to show, not a revenue of 0.
        amounts = ds.deals.loc[ds.deals["status"] == "won", "amount"]
        summary["won_revenue"] = float(amounts.sum()) if amounts.notna().any() else None
    summary["code_like_columns"] = code_like_columns(leads, summary["profile_types"], outcome)
    return summary


CODE_MIN_VALUES = 20  # distinct whole numbers before a number column may be a code
CODE_AUC_BAND = 0.05  # the outcome follows the order when the value's AUC is this far from 0.5


def code_like_columns(leads: pd.DataFrame, types: dict[str, str], won: np.ndarray) -> dict:
    """Number columns that look like codes read as numbers (an officer id, a law article):
    whole numbers, many distinct values, and a win rate that does not follow their order
    (ROC AUC of the value within 0.5 +- CODE_AUC_BAND). Column -> why, in words."""
    out = {}
    for col, kind in types.items():
        if kind != "number":
            continue
        values = pd.to_numeric(leads[col], errors="coerce").to_numpy(dtype=float)
        known = np.isfinite(values)
        x, y = values[known], won[known]
        distinct = np.unique(x)
        if len(distinct) < CODE_MIN_VALUES or not np.all(x == np.round(x)):
            continue
        if not (0 < y.sum() < len(y)):
            continue
        ranks = pd.Series(x).rank().to_numpy()
        positives = y == 1
        auc = (ranks[positives].sum() - positives.sum() * (positives.sum() + 1) / 2) / (
            positives.sum() * (~positives).sum()
        )
        if abs(auc - 0.5) < CODE_AUC_BAND:
            out[col] = (
                f"{len(distinct):,} distinct whole numbers, and the win rate does not follow "
                f"their order (ROC AUC {auc:.2f})"
            )
    return out


def _counts(values: pd.Series) -> dict[str, int]:
    counts = values.value_counts(dropna=False)
    return {str(k): int(v) for k, v in counts.items() if v > 0}


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat() if pd.notna(ts) else ""
