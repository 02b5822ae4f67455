"""Lead payloads (what the CRM sends the scoring endpoint) built from a dataset."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from crm.lead_index import lead_positions
from crm.loading import Dataset


def lead_payloads(
    dataset: Dataset, lead_ids: Iterable[str], *, iso: bool = False
) -> list[dict[str, Any]]:
    """One payload per lead id (in the order given) with its profile, activities and deals.

    Args:
        iso: timestamps as ISO-8601 text (as JSON carries them) instead of Timestamps.
    """
    ids = list(lead_ids)
    wanted = pd.Index(ids)
    leads = dataset.leads.set_index("lead_id").loc[wanted]
    stamp = (
        (lambda ts: None if pd.isna(ts) else ts.isoformat())
        if iso
        else (lambda ts: None if pd.isna(ts) else ts)
    )
    acts = dataset.activity_table.frame(
        dataset.leads["lead_id"],
        lead_positions(pd.Series(ids, dtype="str"), dataset.leads["lead_id"]),
    )
    deals = dataset.deals[dataset.deals["lead_id"].isin(wanted)]
    acts_by_lead = _rows_by_lead(acts, ["activity_type", "occurred_at", "value", "campaign"], stamp)
    deals_by_lead = _rows_by_lead(
        deals, ["deal_id", "created_at", "closed_at", "status", "amount"], stamp
    )
    payloads = []
    for lead_id, row in zip(ids, leads.itertuples(index=False), strict=True):
        record = row._asdict()
        profile = {c: _plain(record[c]) for c in dataset.profile_columns}
        payloads.append(
            {
                "lead_id": lead_id,
                "created_at": stamp(record["created_at"]),
                "source": _plain(record["source"]),
                "profile": profile,
                "activities": acts_by_lead.get(lead_id, []),
                "deals": deals_by_lead.get(lead_id, []),
            }
        )
    return payloads


def _rows_by_lead(df: pd.DataFrame, columns: list[str], stamp) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    if df.empty:
        return out
    lead_ids = df["lead_id"].to_numpy()
    cols = {c: df[c].to_numpy(dtype=object) for c in columns}
    for i, lead_id in enumerate(lead_ids):
        row = {}
        for c in columns:
            v = cols[c][i]
            row[c] = stamp(v) if isinstance(v, pd.Timestamp) or c.endswith("_at") else _plain(v)
        out.setdefault(lead_id, []).append(row)
    return out


def _plain(value: Any) -> Any:
    """JSON-friendly scalars: NaN/None -> None, NumPy numbers -> Python numbers."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
