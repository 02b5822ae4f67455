"""Objectives worked back from a sales target: for N won deals in a period, the leads,
hand-offs (MQLs), accepted leads and opportunities each lever needs, from the rates measured
over a window of the data (`leadscore.handoff.kpis.LoopFacts`).

Two mixes: today's (each lever keeps its share of the leads) and the one that needs the
fewest leads (the best-converting levers first, each grown at most `max_growth` times its
run rate; past every cap, the best lever takes the rest and a note says so). In both,
the sum over levers of leads_needed x lead_to_won is N. What today's run rate delivers over
the period, and the shortfall, come next; with costs, the budget each mix needs at today's
cost per lead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.handoff.costs import spend_between
from leadscore.handoff.kpis import LoopFacts
from leadscore.stats.bootstrap import rate_interval

DEFAULT_MAX_GROWTH = 2.0


@dataclass(frozen=True)
class Plan:
    wins: float
    period_days: float
    window_days: float
    levers: pd.DataFrame  # today's mix: one row per lever
    fewest: pd.DataFrame  # the mix that needs the fewest leads
    totals: dict  # leads needed (with interval) per mix, run rate, shortfall, budgets
    notes: list[str] = field(default_factory=list)


def lever_rates(loop: LoopFacts) -> pd.DataFrame:
    """Per lever over the window: leads and the share of them handed off, accepted, with an
    opportunity and won (lead_to_won with its interval)."""
    f = loop.facts
    rows = []
    for source, g in f.groupby("source", sort=True):
        n = len(g)
        wins = int(g["won"].sum())
        low, high = rate_interval(wins, n, n)
        rows.append(
            {
                "source": source,
                "leads": n,
                "lead_to_handoff": float(g["handed_off"].mean()),
                "lead_to_accepted": float((g["decision"] == "accepted").mean())
                if loop.has_status
                else np.nan,
                "lead_to_opportunity": float(g["opportunity"].mean()),
                "wins": wins,
                "lead_to_won": wins / n,
                "lead_to_won_low": low,
                "lead_to_won_high": high,
            }
        )
    return pd.DataFrame(rows)


def make_plan(
    loop: LoopFacts,
    wins: float,
    period_days: float,
    *,
    costs: pd.DataFrame | None = None,
    max_growth: float | None = DEFAULT_MAX_GROWTH,
) -> Plan:
    """The leads each lever needs for `wins` won deals in `period_days`, at today's mix and
    at the mix that needs the fewest leads; run rate, shortfall and (with costs) budget."""
    if not wins > 0:
        raise LeadscoreError(f"--wins {wins}: the target is a number of won deals above 0")
    if not period_days > 0:
        raise LeadscoreError(f"--period: {period_days} days; a period longer than zero")
    rates = lever_rates(loop)
    total_leads = int(rates["leads"].sum())
    total_wins = int(rates["wins"].sum())
    if total_wins == 0:
        raise LeadscoreError(
            f"no lead created in the window won a deal ({total_leads:,} leads): there is no "
            "rate to plan from; widen the window (--from, --to)"
        )
    window_end = min(loop.end, loop.data_end)
    window_days = max((window_end - loop.start) / pd.Timedelta(days=1), 1e-9)
    notes: list[str] = []
    rate = total_wins / total_leads
    low, high = rate_interval(total_wins, total_leads, total_leads)

    today = rates.copy()
    share = today["leads"] / total_leads
    needed = wins / rate
    today["share_of_leads"] = share
    today["leads_needed"] = needed * share
    today["leads_needed_low"] = wins / high * share
    today["leads_needed_high"] = wins / low * share if low > 0 else np.inf
    _stages(today)

    run_leads = today["leads"] * period_days / window_days
    today["run_rate_leads"] = run_leads
    today["run_rate_wins"] = run_leads * today["lead_to_won"]
    fewest, capped = _fewest(rates, wins, run_leads.to_numpy(), max_growth)
    if capped:
        notes.append(
            f"even with every lever grown to {max_growth:g} times its run rate the target is "
            f"out of reach: {capped} takes the rest, beyond its cap"
        )
    expected = float(today["run_rate_wins"].sum())
    totals = {
        "lead_to_won": rate,
        "lead_to_won_low": low,
        "lead_to_won_high": high,
        "leads_needed": needed,
        "leads_needed_low": wins / high,
        "leads_needed_high": wins / low if low > 0 else None,
        "fewest_leads_needed": float(fewest["leads_needed"].sum()),
        "run_rate_leads": float(run_leads.sum()),
        "run_rate_wins": expected,
        "shortfall_wins": max(0.0, wins - expected),
        "extra_leads_needed": max(0.0, needed - float(run_leads.sum())),
    }
    if costs is not None:
        for frame in (today, fewest):
            spend = np.array(
                [spend_between(costs, s, loop.start, window_end) for s in frame["source"]]
            )
            frame["cost_per_lead"] = np.where(frame["leads"] > 0, spend / frame["leads"], np.nan)
            frame["budget"] = frame["leads_needed"] * frame["cost_per_lead"]
        missing = today.loc[today["cost_per_lead"].isna(), "source"].tolist()
        if missing:
            notes.append(
                f"no spend for {', '.join(missing)}: its budget is unknown, and the totals "
                "leave it out"
            )
        totals["budget"] = float(today["budget"].sum(min_count=1))
        totals["fewest_budget"] = float(fewest["budget"].sum(min_count=1))
    return Plan(wins, period_days, window_days, today, fewest, totals, notes)


def _stages(frame: pd.DataFrame) -> None:
    """The hand-offs, accepted leads and opportunities the leads needed bring."""
    frame["handoffs_needed"] = frame["leads_needed"] * frame["lead_to_handoff"]
    frame["accepted_needed"] = frame["leads_needed"] * frame["lead_to_accepted"]
    frame["opportunities_needed"] = frame["leads_needed"] * frame["lead_to_opportunity"]


def _fewest(
    rates: pd.DataFrame, wins: float, run_leads: np.ndarray, max_growth: float | None
) -> tuple[pd.DataFrame, str | None]:
    """The best-converting levers first, each up to `max_growth` x its run rate."""
    out = rates.copy()
    order = sorted(
        range(len(out)), key=lambda i: (-out["lead_to_won"].iloc[i], str(out["source"].iloc[i]))
    )
    needed = np.zeros(len(out))
    remaining = wins
    for i in order:
        r = out["lead_to_won"].iloc[i]
        if remaining <= 0 or r <= 0:
            break
        cap = np.inf if max_growth is None else max_growth * run_leads[i]
        take = min(cap, remaining / r)
        needed[i] = take
        remaining -= take * r
    capped = None
    if remaining > 1e-9 * wins:
        best = order[0]
        needed[best] += remaining / out["lead_to_won"].iloc[best]
        capped = str(out["source"].iloc[best])
    out["share_of_leads"] = needed / needed.sum()
    out["leads_needed"] = needed
    _stages(out)
    return out, capped
