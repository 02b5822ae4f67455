"""The hand-off loop's four KPIs, by acquisition lever (the first-touch source) and overall:
processing (of the leads handed to sales, how many sales worked, within the SLA and at
all; below 80 % marketing acts), acceptance (accepted / (accepted + rejected) among the
hand-offs sales decided on), lead to opportunity, and win (with the revenue); each with a
95 % bootstrap interval over leads, and with costs per lever when a spend is known.

A hand-off is a lead's first score above the hand-off line in the score history when one
is given (`handoffs`), else every lead at its creation (the CRM puts every new lead in
sales' queue). Sales worked a hand-off when a sales touch (an activity of a sales-touch
type) or a status change other than `new` came at or after it. A hand-off whose SLA runs
past the data's end without a touch yet is left out of the within-SLA rate (still open).
Opportunities and wins count by the data's end: the most recent leads have had less time,
so a window (`start`, `end`) that stops a sales cycle before the data's end compares
levers fairly.

These describe what happened; nothing here is a model feature (the status history never
is: `leadscore.crm.lead_status`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import timestamps_us
from leadscore.crm.touches import sales_touches
from leadscore.handoff.costs import COST_COLUMNS, spend_between
from leadscore.handoff.sla import SlaConfig, first_touch_after
from leadscore.stats.bootstrap import rate_interval, total_interval

PROCESSING_LINE = 0.80  # below this share of hand-offs worked, marketing acts
BY = ("source", "grade", "month")
ALL = "all"
# The KPIs' JSON keys, in the order the tables show them.
RATES = (
    "processing_rate",
    "processing_within_sla",
    "acceptance_rate",
    "opportunity_rate",
    "win_rate",
)


@dataclass(frozen=True)
class LoopFacts:
    """One row per lead created in the window, with what happened to its hand-off."""

    facts: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp  # exclusive
    data_end: pd.Timestamp
    sla: SlaConfig
    handoffs_from: str  # where the hand-offs come from, in words
    has_touches: bool  # sales touches or status changes: processing can be measured
    has_status: bool  # a lead_status table: acceptance can be measured
    has_amounts: bool  # won deals carry amounts: revenue can be measured
    notes: list[str] = field(default_factory=list)


def lead_facts(
    dataset: Dataset,
    *,
    handoffs: pd.DataFrame | None = None,
    grades: pd.Series | None = None,
    sla: SlaConfig | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    handoffs_from: str | None = None,
) -> LoopFacts:
    """Each lead created in [start, end) (default: every lead) with its hand-off, first
    sales touch after it, SLA, sales' first decision, opportunity, win and revenue.

    Args:
        handoffs: lead_id, handed_off_at and optional grade (the score history's first score
            above the hand-off line, `leadscore.jobs.loop.handoff_times`); None: every
            lead is handed off at its creation.
        grades: lead_id -> the model's grade at the hand-off, when `handoffs` has none.
        handoffs_from: how the hand-offs were found, in words, for the page and the CLI.
    """
    if dataset.is_flat:
        raise LeadscoreError(
            "the hand-off loop needs a history (hand-offs, touches, deals over time); a flat "
            "export has one row per lead and no timeline"
        )
    sla = sla or SlaConfig()
    leads = dataset.leads
    data_end = dataset.data_end
    start = pd.Timestamp(start) if start is not None else leads["created_at"].min()
    end = pd.Timestamp(end) if end is not None else data_end + pd.Timedelta(microseconds=1)
    if start >= end:
        raise LeadscoreError(f"--from {start} is not before --to {end}: no lead in the window")
    inside = ((leads["created_at"] >= start) & (leads["created_at"] < end)).to_numpy()
    if not inside.any():
        raise LeadscoreError(
            f"no lead was created between {start.isoformat()} and {end.isoformat()} "
            f"(the data's leads: {leads['created_at'].min().date()} .. "
            f"{leads['created_at'].max().date()})"
        )
    chosen = leads.loc[inside, ["lead_id", "source", "created_at"]].reset_index(drop=True)
    facts = pd.DataFrame(
        {
            "lead_id": chosen["lead_id"].astype(str),
            "source": chosen["source"].astype(str),
            "created_at": chosen["created_at"],
            "month": chosen["created_at"].dt.strftime("%Y-%m"),
        }
    )
    notes: list[str] = []
    if handoffs is None:
        facts["handed_off_at"] = facts["created_at"]
        handoffs_from = handoffs_from or "every lead, at its creation (no score history given)"
    else:
        first = handoffs.assign(lead_id=handoffs["lead_id"].astype(str)).sort_values(
            "handed_off_at", kind="stable"
        )
        first = first.drop_duplicates("lead_id").set_index("lead_id")
        facts["handed_off_at"] = pd.to_datetime(
            facts["lead_id"].map(first["handed_off_at"]), utc=True
        )
        if "grade" in first and grades is None:
            grades = first["grade"]
        handoffs_from = handoffs_from or "the score history's first score above the hand-off line"
    facts["handed_off"] = facts["handed_off_at"].notna()
    facts["grade"] = facts["lead_id"].map(grades).astype(object) if grades is not None else None

    touches = sales_touches(dataset)
    statuses = dataset.lead_status
    handed = facts.loc[facts["handed_off"], ["lead_id", "handed_off_at"]]
    first_touch = first_touch_after(handed, touches, statuses)
    has_touches = touches is not None or (statuses is not None and len(statuses) > 0)
    if not has_touches:
        notes.append(
            "no sales touch and no lead_status table in the data: the processing rate cannot "
            "be measured"
        )
    facts["first_touch_at"] = pd.to_datetime(facts["lead_id"].map(first_touch), utc=True)
    limits = sla.limits(facts["grade"] if grades is not None else None, len(facts))
    facts["sla_due_at"] = facts["handed_off_at"] + limits.to_numpy()
    facts["processed"] = facts["handed_off"] & facts["first_touch_at"].notna()
    facts["within_sla"] = facts["processed"] & (facts["first_touch_at"] <= facts["sla_due_at"])
    # A hand-off still inside its window at the data's end is neither kept nor missed yet.
    facts["sla_settled"] = facts["handed_off"] & (
        facts["within_sla"] | (facts["sla_due_at"] <= data_end)
    )

    facts["decision"] = None
    facts["decided_at"] = pd.NaT
    facts["reason"] = None
    if statuses is not None:
        decided = statuses[statuses["stage"].astype(str).isin(["accepted", "rejected"])]
        decided = decided.assign(lead_id=decided["lead_id"].astype(str))
        decided = decided[decided["lead_id"].isin(handed["lead_id"])]
        # sales' decision on our hand-off: its first one at or after the hand-off
        handed_at = handed.set_index("lead_id")["handed_off_at"]
        at = pd.to_datetime(handed_at.reindex(decided["lead_id"].to_numpy()), utc=True)
        decided = decided[timestamps_us(decided["changed_at"]) >= timestamps_us(at)]
        first_decision = decided.drop_duplicates("lead_id").set_index("lead_id")
        facts["decision"] = facts["lead_id"].map(first_decision["stage"].astype(str))
        facts["decided_at"] = pd.to_datetime(
            facts["lead_id"].map(first_decision["changed_at"]), utc=True
        )
        facts["reason"] = facts["lead_id"].map(first_decision["reason"])
    else:
        notes.append("no lead_status table: the acceptance rate cannot be measured")

    deals = dataset.deals.assign(lead_id=dataset.deals["lead_id"].astype(str))
    won = deals[deals["status"] == "won"]
    facts["opportunity"] = facts["lead_id"].isin(deals["lead_id"]).to_numpy()
    facts["won"] = facts["lead_id"].isin(won["lead_id"]).to_numpy()
    has_amounts = bool(won["amount"].notna().any())
    revenue = won.groupby("lead_id")["amount"].sum(min_count=1)
    facts["revenue"] = facts["lead_id"].map(revenue).fillna(0.0).astype(float)
    return LoopFacts(
        facts=facts,
        start=start,
        end=end,
        data_end=data_end,
        sla=sla,
        handoffs_from=handoffs_from,
        has_touches=has_touches,
        has_status=statuses is not None,
        has_amounts=has_amounts,
        notes=notes,
    )


def kpi_table(
    loop: LoopFacts, by: str = "source", costs: pd.DataFrame | None = None, seed: int = 0
) -> pd.DataFrame:
    """One row per lever (or grade, or month of creation), then the overall row (`all`):
    leads, hand-offs, the four rates with their intervals (`*_low`, `*_high`), the 80 %
    processing line, revenue, and with `costs` (`leadscore.handoff.costs.load_costs`) the
    spend and cost per lead, hand-off, accepted lead and won deal, and revenue over spend.
    A rate the data cannot measure is NaN; without costs the cost columns are absent."""
    if by not in BY:
        raise LeadscoreError(f"--by {by!r}: expected one of {', '.join(BY)}")
    facts = loop.facts
    if by == "grade" and facts["grade"].isna().all():
        raise LeadscoreError(
            "--by grade needs the model's grade at each hand-off: give a score history "
            "(--history) or a model (--model)"
        )
    groups = [(key, g) for key, g in facts.groupby(by, sort=True, dropna=True)]
    rows = [_row(by, str(key), g, loop, seed) for key, g in groups]
    rows.append(_row(by, ALL, facts, loop, seed))
    table = pd.DataFrame(rows)
    if costs is not None and by != "grade":
        table = _with_costs(table, by, costs, loop)
    return table


def _row(by: str, key: str, g: pd.DataFrame, loop: LoopFacts, seed: int) -> dict:
    n = len(g)
    handed = g[g["handed_off"]]
    h = len(handed)
    row: dict = {by: key, "leads": n, "handoffs": h}

    def rate(name: str, numerator: int, denominator: int, measurable: bool = True) -> None:
        if not measurable or denominator == 0:
            row[name], row[f"{name}_low"], row[f"{name}_high"] = np.nan, np.nan, np.nan
            return
        low, high = rate_interval(numerator, denominator, n, seed=seed)
        row[name], row[f"{name}_low"], row[f"{name}_high"] = numerator / denominator, low, high

    processed = int(handed["processed"].sum())
    settled = handed[handed["sla_settled"]]
    row["processed"] = processed if loop.has_touches else np.nan
    rate("processing_rate", processed, h, loop.has_touches)
    row["sla_settled"] = len(settled)
    row["within_sla"] = int(settled["within_sla"].sum()) if loop.has_touches else np.nan
    rate("processing_within_sla", int(settled["within_sla"].sum()), len(settled), loop.has_touches)
    p, high = row["processing_rate"], row["processing_rate_high"]
    row["below_processing_line"] = bool(p < PROCESSING_LINE) if np.isfinite(p) else None
    # Sure when the whole interval is on one side of the line.
    low = row["processing_rate_low"]
    row["processing_line_sure"] = (
        bool(high < PROCESSING_LINE or low >= PROCESSING_LINE) if np.isfinite(p) else None
    )
    accepted = int((handed["decision"] == "accepted").sum())
    rejected = int((handed["decision"] == "rejected").sum())
    row["accepted"] = accepted if loop.has_status else np.nan
    row["rejected"] = rejected if loop.has_status else np.nan
    rate("acceptance_rate", accepted, accepted + rejected, loop.has_status)
    opportunities = int(handed["opportunity"].sum())
    wins = int(handed["won"].sum())
    row["opportunities"], row["wins"] = opportunities, wins
    rate("opportunity_rate", opportunities, h)
    rate("win_rate", wins, h)
    if loop.has_amounts:
        amounts = handed.loc[handed["won"], "revenue"].to_numpy()
        row["revenue"] = float(amounts.sum())
        row["revenue_low"], row["revenue_high"] = total_interval(amounts, n, seed=seed)
    else:
        row["revenue"] = row["revenue_low"] = row["revenue_high"] = np.nan
    return row


def _with_costs(table: pd.DataFrame, by: str, costs: pd.DataFrame, loop: LoopFacts) -> pd.DataFrame:
    """The spend of each row's lever (or month) over the window, and what it bought."""
    spend = []
    for key in table[by]:
        if by == "source":
            source = None if key == ALL else key
            spend.append(spend_between(costs, source, loop.start, loop.end))
        else:  # a month of creation: every lever's spend over that month of the window
            if key == ALL:
                spend.append(spend_between(costs, None, loop.start, loop.end))
                continue
            first = pd.Timestamp(f"{key}-01", tz="UTC")
            spend.append(
                spend_between(
                    costs,
                    None,
                    max(first, loop.start),
                    min(first + pd.offsets.MonthBegin(1), loop.end),
                )
            )
    out = table.copy()
    out["spend"] = spend
    with np.errstate(divide="ignore", invalid="ignore"):
        for column, count in (
            ("cost_per_lead", "leads"),
            ("cost_per_handoff", "handoffs"),
            ("cost_per_accepted", "accepted"),
            ("cost_per_won", "wins"),
        ):
            denominator = out[count].astype(float)
            out[column] = np.where(denominator > 0, out["spend"] / denominator, np.nan)
        out["revenue_over_spend"] = np.where(
            out["spend"] > 0, out["revenue"] / out["spend"], np.nan
        )
    return out[[*table.columns, *COST_COLUMNS]]


def records(table: pd.DataFrame) -> list[dict]:
    """A table as JSON rows: NaN becomes null, NumPy numbers plain ones, times ISO text."""
    return [{k: plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def plain(value):
    """One cell as a JSON value."""
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NaT or value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    return value


def display_table(table: pd.DataFrame, by: str = "source") -> pd.DataFrame:
    """The KPI table as the report and the monitor show it: each rate with its interval in
    one cell ("87.1% (86.0–88.2)"), counts and money as numbers, and `_below` true on the
    rows below the 80 % processing line (highlighted)."""

    def rate(name: str) -> list[str]:
        out = []
        for v, lo, hi in zip(table[name], table[f"{name}_low"], table[f"{name}_high"], strict=True):
            if not np.isfinite(v):
                out.append("–")
            else:
                out.append(f"{v:.1%} ({lo:.1%}–{hi:.1%})")
        return out

    shown = pd.DataFrame(
        {
            by: table[by].astype(str),
            "leads": table["leads"],
            "handoffs": table["handoffs"],
            "worked": rate("processing_rate"),
            "worked_within_sla": rate("processing_within_sla"),
            "accepted": rate("acceptance_rate"),
            "lead_to_opportunity": rate("opportunity_rate"),
            "won": rate("win_rate"),
            "revenue": table["revenue"],
        }
    )
    if "spend" in table:
        for column in COST_COLUMNS:
            shown[column] = table[column]
    shown["_below"] = table["below_processing_line"].fillna(False).astype(bool)
    return shown
