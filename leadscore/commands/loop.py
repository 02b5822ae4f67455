"""`leadscore kpis` and `leadscore plan`: the hand-off loop with sales, measured and planned."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from leadscore.console import out, progress, styled

HISTORY_HELP = "Score history (a DuckDB file or a SQLAlchemy URL): each lead's first score above the hand-off line is its hand-off (default: every lead is handed to sales at its creation)."
MODEL_HELP = "A model (models:/<name>@<alias>, models:/<name>/<version>, or a saved scorer folder): grades each lead at its hand-off (the SLA by grade, --by grade) and as sales saw it when deciding (the rejected leads by grade, expected wins)."
COSTS_HELP = "Spend per lever: a CSV or YAML file with source, period_start, period_end, spend; adds cost per lead, hand-off, accepted lead and won deal, and revenue over spend (without it those columns are absent)."


class By(StrEnum):
    source = "source"
    grade = "grade"
    month = "month"


def kpis(
    data: Path = typer.Option(..., "--data", help="Dataset folder: the CRM export."),
    start: str | None = typer.Option(
        None, "--from", help="Leads created from this ISO-8601 time on (default: the first)."
    ),
    end: str | None = typer.Option(
        None, "--to", help="Leads created before this ISO-8601 time (default: every lead)."
    ),
    by: By = typer.Option(By.source, "--by", help="One row per lever (source), grade or month."),
    history: str | None = typer.Option(None, "--history", help=HISTORY_HELP),
    handoff_grades: str = typer.Option(
        "A", "--handoff-grades", help="With --history: model grades above the hand-off line."
    ),
    handoff_mql: bool = typer.Option(
        True,
        "--handoff-mql/--no-handoff-mql",
        help="With --history: whether the rules' MQL flag also puts a lead above the line.",
    ),
    model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    costs: Path | None = typer.Option(None, "--costs", help=COSTS_HELP),
    sla_grade_a: str = typer.Option(
        "5m", "--sla-grade-a", help="SLA of a grade-A hand-off: time to the first sales touch."
    ),
    sla: str = typer.Option("1d", "--sla", help="SLA of every other hand-off (5m, 4h, 1d)."),
    as_json: bool = typer.Option(False, "--json", help="Print the KPIs as JSON."),
) -> None:
    """The four KPIs marketing steers by, per acquisition lever and overall: processing (hand-offs sales worked, within the SLA and at all; below 80 % is flagged), acceptance (accepted / decided, from the lead_status table), lead to opportunity and win, with revenue; each with its 95 % interval.

    Then the leads sales rejected, analysed: findings first, by reason, lever and (with --model) the model's grade."""
    from leadscore.jobs.loop import LoopRequest, kpis_json
    from leadscore.jobs.loop import kpis as kpis_job

    request = LoopRequest(
        data=data, start=start, end=end, history=history, grades=handoff_grades,
        mql=handoff_mql, model=model, costs=costs, sla_grade_a=sla_grade_a, sla_otherwise=sla,
    )  # fmt: skip
    result = kpis_job(request, by.value, progress)
    if as_json:
        out.print_json(json.dumps(kpis_json(result)))
        return
    print_kpis(result)


def plan(
    data: Path = typer.Option(..., "--data", help="Dataset folder: the CRM export."),
    wins: float = typer.Option(..., "--wins", help="The sales target: won deals in the period."),
    period: str = typer.Option("90d", "--period", help="The target's period: 90d, 12w, 365d."),
    start: str | None = typer.Option(
        None, "--from", help="Rates from the leads created from this ISO-8601 time on."
    ),
    end: str | None = typer.Option(
        None,
        "--to",
        help="Rates from the leads created before this ISO-8601 time (default: 90 days before the data's end, so that their outcomes are in).",
    ),
    max_growth: float = typer.Option(
        2.0,
        "--max-growth",
        min=1.0,
        help="The fewest-leads mix grows a lever to at most this many times its run rate.",
    ),
    history: str | None = typer.Option(None, "--history", help=HISTORY_HELP),
    costs: Path | None = typer.Option(None, "--costs", help=COSTS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Work a sales target back to objectives per lever: the leads, hand-offs (MQLs), accepted leads and opportunities needed for --wins won deals in --period, from the rates measured per lever, at today's lever mix and at the mix that needs the fewest leads.

    Then what today's run rate delivers, the shortfall, and with --costs the budget."""
    from leadscore.jobs.loop import LoopRequest, plan_json
    from leadscore.jobs.loop import plan as plan_job

    request = LoopRequest(data=data, start=start, end=end, history=history, costs=costs)
    result = plan_job(request, wins, period, max_growth, progress)
    if as_json:
        out.print_json(json.dumps(plan_json(result)))
        return
    print_plan(result)


def _pct(value: float, low: float | None = None, high: float | None = None) -> str:
    if value is None or value != value:
        return "–"
    text = f"{value:.0%}"
    if low is not None and low == low:
        text += f" ({low:.0%}–{high:.0%})"
    return text


def _money(value) -> str:
    return "–" if value is None or value != value else f"{value:,.0f}"


def print_kpis(result) -> None:
    from leadscore.handoff.kpis import ALL, PROCESSING_LINE

    loop, table, by = result.loop, result.table, result.by
    out.print(
        f"{int(table.loc[table[by] == ALL, 'leads'].iloc[0]):,} leads created "
        f"{loop.start.date()} .. {min(loop.end, loop.data_end).date()}; hand-offs: "
        f"{loop.handoffs_from}; SLA {loop.sla.describe()}",
        highlight=False,
    )
    for _, row in table.iterrows():
        if row["below_processing_line"]:
            sure = "" if row["processing_line_sure"] else " (the interval reaches the line)"
            out.print(
                styled(
                    (
                        f"{by} {row[by]}: sales worked {row['processing_rate']:.0%} of its "
                        f"hand-offs, below the {PROCESSING_LINE:.0%} line{sure}: act",
                        "red",
                    )
                ),
                highlight=False,
            )
    grid = Table(show_edge=False, pad_edge=False)
    columns = [
        (by, lambda r: str(r[by])),
        ("leads", lambda r: f"{int(r['leads']):,}"),
        ("hand-offs", lambda r: f"{int(r['handoffs']):,}"),
        (
            "worked",
            lambda r: (
                _pct(r["processing_rate"], r["processing_rate_low"], r["processing_rate_high"])
                + (" !" if r["below_processing_line"] else "")
            ),
        ),
        ("within SLA", lambda r: _pct(r["processing_within_sla"])),
        (
            "accepted",
            lambda r: _pct(
                r["acceptance_rate"], r["acceptance_rate_low"], r["acceptance_rate_high"]
            ),
        ),
        (
            "lead to opp.",
            lambda r: _pct(
                r["opportunity_rate"], r["opportunity_rate_low"], r["opportunity_rate_high"]
            ),
        ),
        ("won", lambda r: _pct(r["win_rate"], r["win_rate_low"], r["win_rate_high"])),
        ("revenue", lambda r: _money(r["revenue"])),
    ]
    if "spend" in table:
        columns += [
            ("spend", lambda r: _money(r["spend"])),
            ("per lead", lambda r: _money(r["cost_per_lead"])),
            ("per won", lambda r: _money(r["cost_per_won"])),
            (
                "revenue/spend",
                lambda r: (
                    "–"
                    if r["revenue_over_spend"] != r["revenue_over_spend"]
                    else f"{r['revenue_over_spend']:.1f}"
                ),
            ),
        ]
    for name, _ in columns:
        grid.add_column(name, justify="left" if name == by else "right")
    for _, row in table.iterrows():
        grid.add_row(*(cell(row) for _, cell in columns))
    out.print(grid)
    rj = result.rejections
    out.print(styled(("rejected leads", "bold")))
    for finding in rj.findings:
        out.print(f"- {finding}", highlight=False)
    if len(rj.by_reason):
        reasons = Table(show_edge=False, pad_edge=False)
        for name in ("reason", "rejected", "share", "won later"):
            reasons.add_column(name, justify="left" if name == "reason" else "right")
        for _, r in rj.by_reason.iterrows():
            reasons.add_row(
                str(r["reason"]),
                f"{int(r['rejected']):,}",
                _pct(r["share"]),
                str(int(r["won_later"])),
            )
        out.print(reasons)
    for note in [*result.notes, *rj.notes]:
        out.print(f"note: {note}", highlight=False)


def print_plan(result) -> None:
    p = result.plan
    t = p.totals
    out.print(
        f"{p.wins:g} won deals in {p.period_days:g} days at {t['lead_to_won']:.1%} lead to won "
        f"({t['lead_to_won_low']:.1%}–{t['lead_to_won_high']:.1%}): "
        f"{t['leads_needed']:,.0f} leads at today's mix ({t['leads_needed_low']:,.0f}–"
        + (f"{t['leads_needed_high']:,.0f}" if t["leads_needed_high"] is not None else "?")
        + f"), {t['fewest_leads_needed']:,.0f} at the mix that needs the fewest",
        highlight=False,
    )
    out.print(
        f"today's run rate: {t['run_rate_leads']:,.0f} leads and {t['run_rate_wins']:,.1f} wins "
        f"in {p.period_days:g} days; shortfall {t['shortfall_wins']:,.1f} wins "
        f"({t['extra_leads_needed']:,.0f} more leads at today's mix)",
        highlight=False,
    )
    if "budget" in t:
        out.print(
            f"budget at today's cost per lead: {_money(t['budget'])} (fewest-leads mix: "
            f"{_money(t['fewest_budget'])})",
            highlight=False,
        )
    for title, frame in (("today's mix", p.levers), ("fewest leads", p.fewest)):
        grid = Table(title=title, show_edge=False, pad_edge=False)
        names = ["source", "lead to won", "leads", "hand-offs", "accepted", "opportunities"]
        if "budget" in frame:
            names.append("budget")
        for name in names:
            grid.add_column(name, justify="left" if name == "source" else "right")
        for _, r in frame.iterrows():
            cells = [
                str(r["source"]),
                _pct(r["lead_to_won"], r["lead_to_won_low"], r["lead_to_won_high"]),
                f"{r['leads_needed']:,.0f}",
                f"{r['handoffs_needed']:,.0f}",
                "–"
                if r["accepted_needed"] != r["accepted_needed"]
                else f"{r['accepted_needed']:,.0f}",
                f"{r['opportunities_needed']:,.0f}",
            ]
            if "budget" in frame:
                cells.append(_money(r["budget"]))
            grid.add_row(*cells)
        out.print(grid)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
