"""Marketing's KPIs in the comparison report: wins per grade of the model and of the rules,
speed to lead, and the processing rate of MQLs.

All are computed on the report's out-of-time test rows (a row is a lead at one snapshot) and
the leads seen in them. They describe; they are not features: speed to lead uses every sales
touch in the export, whenever it happened.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset

# Their home is leadscore.crm.touches (the hand-off loop's KPIs use them too).
from leadscore.crm.touches import no_sales_touch, sales_touches  # noqa: F401
from leadscore.scoring.grades import GRADES

# Time from a lead's creation to its first sales touch, the buckets sales teams use.
SPEED_BUCKETS = (
    ("under 5 minutes", pd.Timedelta(0), pd.Timedelta(minutes=5)),
    ("5-60 minutes", pd.Timedelta(minutes=5), pd.Timedelta(hours=1)),
    ("1-24 hours", pd.Timedelta(hours=1), pd.Timedelta(days=1)),
    ("later", pd.Timedelta(days=1), None),
)
NEVER = "never (by the data's end)"
# An MQL counts as processed when sales touched it within these many days of becoming one.
PROCESSING_DAYS = (1, 2, 7)


def grade_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per scorer (model grades; rule grades when there are rules) and grade A-D: rows,
    distinct leads, wins, win rate, and the grade's share of all wins."""
    out = []
    y = rows["label"].to_numpy(dtype=float)
    total = y.sum()
    for scorer, column in (("model", "grade"), ("rules", "rule_grade")):
        if column not in rows or rows[column].isna().all():
            continue
        grades = rows[column].astype(str).to_numpy()
        for grade in GRADES:
            mask = grades == grade
            wins = float(y[mask].sum())
            out.append(
                {
                    "scorer": scorer,
                    "grade": grade,
                    "rows": int(mask.sum()),
                    "leads": int(rows.loc[mask, "lead_id"].nunique()),
                    "wins": wins,
                    "win_rate": wins / mask.sum() if mask.any() else np.nan,
                    "share_of_all_wins": wins / total if total else np.nan,
                }
            )
    return pd.DataFrame(out)


def _per_lead(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per lead of the test rows: won within the horizon after any of its rows."""
    return rows.groupby("lead_id", sort=True).agg(won=("label", "max")).reset_index()


def speed_to_lead(
    dataset: Dataset, rows: pd.DataFrame, touches: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Leads of the test rows by the delay from creation to their first sales touch (under 5
    minutes, 5-60 minutes, 1-24 hours, later, never): leads, share, wins, win rate. Empty
    when the data records no sales touch."""
    touches = touches if touches is not None else sales_touches(dataset)
    if touches is None:
        return pd.DataFrame()
    leads = _per_lead(rows)
    created = dataset.leads.set_index("lead_id")["created_at"]
    first = touches.groupby("lead_id")["occurred_at"].min()
    delay = leads["lead_id"].map(first) - leads["lead_id"].map(created)
    label = pd.Series(NEVER, index=leads.index, dtype=object)
    for name, low, high in SPEED_BUCKETS:
        inside = delay >= low if high is None else (delay >= low) & (delay < high)
        label[inside.fillna(False).to_numpy(bool)] = name
    # A touch logged before the lead's creation time (an import artefact) counts as at once.
    label[(delay < pd.Timedelta(0)).fillna(False).to_numpy(bool)] = SPEED_BUCKETS[0][0]
    out = []
    for name in [b[0] for b in SPEED_BUCKETS] + [NEVER]:
        mask = (label == name).to_numpy()
        wins = int(leads.loc[mask, "won"].sum())
        out.append(
            {
                "first_sales_touch": name,
                "leads": int(mask.sum()),
                "share_of_leads": mask.mean() if len(mask) else np.nan,
                "wins": wins,
                "win_rate": wins / mask.sum() if mask.any() else np.nan,
            }
        )
    return pd.DataFrame(out)


def processing_rate(
    dataset: Dataset, rows: pd.DataFrame, touches: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Of the leads that became MQL in the test rows (their first MQL snapshot), the share
    sales touched within 1, 2 and 7 days after it. Empty without rules or sales touches."""
    touches = touches if touches is not None else sales_touches(dataset)
    if touches is None or "mql" not in rows or not rows["mql"].any():
        return pd.DataFrame()
    mql_at = rows.loc[rows["mql"].astype(bool)].groupby("lead_id")["as_of"].min()
    after = touches.merge(mql_at.rename("mql_at").reset_index(), on="lead_id")
    after = after[after["occurred_at"] >= after["mql_at"]]
    first = (after["occurred_at"] - after["mql_at"]).groupby(after["lead_id"]).min()
    delay = mql_at.index.to_series().map(first)
    n = len(mql_at)
    out = [
        {
            "touched_by_sales": f"within {days} day{'s' if days > 1 else ''} of becoming MQL",
            "mqls": n,
            "touched": int((delay <= pd.Timedelta(days=days)).sum()),
        }
        for days in PROCESSING_DAYS
    ]
    out.append(
        {
            "touched_by_sales": "never after becoming MQL",
            "mqls": n,
            "touched": int(delay.isna().sum()),
        }
    )
    frame = pd.DataFrame(out)
    frame["share"] = frame["touched"] / n
    return frame


def handoff_speed(dataset: Dataset, handoffs: pd.DataFrame) -> pd.DataFrame:
    """Leads handed off to sales by the time from their creation to the hand-off (under 5
    minutes, 5-60 minutes, 1-24 hours, later): leads, share, won since (a won deal closed
    after the hand-off) and its rate. `handoffs`: one row per lead, `lead_id` and
    `handed_off_at` (its first score above the hand-off line in the score history, batch
    runs and the event stream alike). Empty when none."""
    if handoffs is None or not len(handoffs):
        return pd.DataFrame()
    leads = dataset.leads.set_index("lead_id")["created_at"]
    known = handoffs[handoffs["lead_id"].isin(leads.index)]
    at = pd.to_datetime(known["handed_off_at"], utc=True).reset_index(drop=True)
    ids = known["lead_id"].reset_index(drop=True)
    delay = at - pd.to_datetime(ids.map(leads), utc=True)
    deals = dataset.deals
    won = deals[deals["status"] == "won"].groupby("lead_id")["closed_at"].max()
    won_after = (pd.to_datetime(ids.map(won), utc=True) > at).fillna(False).to_numpy(bool)
    out = []
    for name, low, high in SPEED_BUCKETS:
        inside = (delay >= low) if high is None else (delay >= low) & (delay < high)
        if name == SPEED_BUCKETS[0][0]:
            inside = inside | (delay < pd.Timedelta(0))  # scored before the CRM's creation time
        mask = inside.fillna(False).to_numpy(bool)
        n = int(mask.sum())
        out.append(
            {
                "handed_off": name,
                "leads": n,
                "share_of_handoffs": n / len(ids),
                "won_since": int(won_after[mask].sum()),
                "win_rate": won_after[mask].mean() if n else np.nan,
                "median_minutes": float(delay[mask].median() / pd.Timedelta(minutes=1))
                if n
                else np.nan,
            }
        )
    return pd.DataFrame(out)
