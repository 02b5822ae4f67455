"""Sales touches: the activities of the types `dataset.yaml` calls sales touches (calls,
meetings, sales e-mails by default), one definition for speed to lead and the processing
rate of the marketing report and of the hand-off loop's KPIs."""

from __future__ import annotations

import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.times import from_us


def sales_touches(dataset: Dataset) -> pd.DataFrame | None:
    """The export's sales touches (lead_id, occurred_at), or None when it records none.
    Computed once per report: the activity table can hold tens of millions of rows."""
    kinds = set(dataset.spec.sales_touch_types)
    table = dataset.activity_table
    if dataset.is_flat or not kinds or table.empty:
        return None
    events = table.events(kinds=kinds)
    if not len(events["lead"]):
        return None
    return pd.DataFrame(
        {
            "lead_id": dataset.leads["lead_id"].take(events["lead"]).reset_index(drop=True),
            "occurred_at": from_us(events["t_us"]),
        }
    )


def no_sales_touch(dataset: Dataset, touches: pd.DataFrame | None = None) -> str | None:
    """Why speed to lead and the processing rate cannot be measured (None when they can;
    `touches`: `sales_touches(dataset)` when already at hand)."""
    if dataset.is_flat:
        return "the data has no activity history, so no sales touch"
    if not dataset.spec.sales_touch_types:
        return (
            "no activity type is declared a sales touch (dataset.yaml activity_groups.sales_touch)"
        )
    if (touches if touches is not None else sales_touches(dataset)) is None:
        return "no activity of a sales-touch type in the data"
    return None
