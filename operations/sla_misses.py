"""The daily batch's SLA report: the hand-offs in the score history (each lead's first score
above the hand-off line) that sales did not touch within the SLA by the run's as_of
(`leadscore.handoff.sla`, the rule the event stream applies too)."""

from __future__ import annotations

import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.touches import sales_touches
from leadscore.handoff.events import HandoffLine, first_above_line
from leadscore.handoff.sla import SlaConfig, first_touch_after, sla_misses

# A miss that fell due within this long before the run is new in this run.
NEW_WITHIN = pd.Timedelta(days=1)


def batch_sla_misses(
    dataset: Dataset, history_rows: pd.DataFrame, line: HandoffLine, as_of, sla: SlaConfig
) -> pd.DataFrame:
    """The hand-offs that missed their SLA by `as_of` (`sla_misses`' columns), with `new`:
    fell due in the day before `as_of` (what this daily run found). Empty without a history
    or a hand-off; touches and status changes after `as_of` are not known yet."""
    if history_rows is None or history_rows.empty:
        return sla_misses(
            pd.DataFrame(columns=["lead_id", "handed_off_at"]), pd.Series(dtype=object), as_of, sla
        )
    now = pd.Timestamp(as_of)
    known = history_rows[pd.to_datetime(history_rows["as_of"], utc=True) <= now]
    handoffs = first_above_line(known, line)
    touches = sales_touches(dataset)
    if touches is not None:
        touches = touches[touches["occurred_at"] <= now]
    statuses = dataset.lead_status
    if statuses is not None:
        statuses = statuses[statuses["changed_at"] <= now]
    first = first_touch_after(handoffs, touches, statuses)
    missed = sla_misses(handoffs, first, now, sla)
    missed["new"] = missed["due_at"] > now - NEW_WITHIN
    return missed
