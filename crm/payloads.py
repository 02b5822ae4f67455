"""Lead payloads (what the CRM sends the scoring endpoint) built from a dataset."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.lead_index import lead_positions


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
        payload = {
            "lead_id": lead_id,
            "created_at": stamp(record["created_at"]),
            "source": _plain(record["source"]),
            "profile": profile,
            "activities": acts_by_lead.get(lead_id, []),
            "deals": deals_by_lead.get(lead_id, []),
        }
        if "account_id" in record:
            payload["account_id"] = _plain(record["account_id"])
        payloads.append(payload)
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


def dataset_events(dataset: Dataset, until: pd.Timestamp | None = None) -> list[dict[str, Any]]:
    """A dataset's history as the CRM's events (`POST /events`), in time order: a `lead`
    event at each creation (its profile and source), each activity, and each deal opened at
    its creation and closed (won or lost) at its close; only what happened at or before
    `until`. Ids are derived from the rows, so the same export gives the same events."""
    stamp = _iso_or_none
    limit = None if until is None else pd.Timestamp(until)
    rows: list[tuple[pd.Timestamp, int, dict[str, Any]]] = []
    leads = dataset.leads
    for lead in leads.itertuples(index=False):
        record = lead._asdict()
        rows.append(
            (
                record["created_at"],
                0,
                {
                    "event_id": f"lead-{record['lead_id']}",
                    "type": "lead",
                    "lead_id": str(record["lead_id"]),
                    "occurred_at": stamp(record["created_at"]),
                    "created_at": stamp(record["created_at"]),
                    "source": _plain(record["source"]),
                    "profile": {c: _plain(record[c]) for c in dataset.profile_columns},
                },
            )
        )
    acts = dataset.activity_table.frame(leads["lead_id"], np.arange(len(leads)))
    if len(acts):
        cols = {
            c: acts[c].to_numpy(dtype=object)
            for c in ("lead_id", "activity_type", "value", "campaign")
            if c in acts
        }
        times = acts["occurred_at"]
        for i in range(len(acts)):
            rows.append(
                (
                    times.iloc[i],
                    1,
                    {
                        "event_id": f"activity-{i}",
                        "type": "activity",
                        "lead_id": str(cols["lead_id"][i]),
                        "occurred_at": stamp(times.iloc[i]),
                        "activity_type": str(cols["activity_type"][i]),
                        "value": _plain(cols["value"][i]) if "value" in cols else None,
                        "campaign": _plain(cols["campaign"][i]) if "campaign" in cols else None,
                    },
                )
            )
    for deal in dataset.deals.itertuples(index=False):
        d = deal._asdict()
        base = {
            "type": "deal",
            "lead_id": str(d["lead_id"]),
            "deal_id": str(d["deal_id"]),
            "created_at": stamp(d["created_at"]),
            "amount": _plain(d.get("amount")),
        }
        rows.append(
            (
                d["created_at"],
                2,
                {
                    **base,
                    "event_id": f"deal-{d['deal_id']}-open",
                    "occurred_at": stamp(d["created_at"]),
                    "status": "open",
                    "closed_at": None,
                },
            )
        )
        if d["status"] in ("won", "lost") and not pd.isna(d["closed_at"]):
            rows.append(
                (
                    d["closed_at"],
                    3,
                    {
                        **base,
                        "event_id": f"deal-{d['deal_id']}-{d['status']}",
                        "occurred_at": stamp(d["closed_at"]),
                        "status": d["status"],
                        "closed_at": stamp(d["closed_at"]),
                    },
                )
            )
    rows.sort(key=lambda r: (r[0], r[1]))
    return [e for t, _, e in rows if limit is None or t <= limit]


def _iso_or_none(ts: Any) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()
