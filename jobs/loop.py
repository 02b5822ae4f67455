"""The hand-off loop's jobs: `kpis` (the four KPIs by lever, the rejected leads analysed, costs)
and `plan` (objectives worked back from a sales target). Plain functions: a request in, a
value out; the CLI prints it, the report and the monitor show the same tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.jobs.data import load
from leadscore.jobs.progress import Progress, Recorded
from leadscore.jobs.score import parse_time

# The plan's rates come from leads at least this old by the data's end (a sales cycle).
MATURED_DAYS = 90


@dataclass(frozen=True)
class LoopRequest:
    """data: the CRM export; start / end: ISO-8601 times bounding the leads' creation (end
    exclusive; None: every lead); history: a score history (its first score above the
    hand-off line is each lead's hand-off; None: every lead at its creation); grades / mql:
    that hand-off line; model: a model reference for the grade at each hand-off and at each
    sales decision (None: the history's grades, or none); costs: a spend file (CSV or YAML);
    sla_grade_a / sla_otherwise: the SLA's limits (5m, 1d)."""

    data: Path
    start: str | None = None
    end: str | None = None
    history: str | None = None
    grades: str = "A"
    mql: bool = True
    model: str | None = None
    costs: Path | None = None
    sla_grade_a: str = "5m"
    sla_otherwise: str = "1d"


@dataclass(frozen=True)
class Kpis:
    by: str
    table: pd.DataFrame  # `leadscore.handoff.kpis.kpi_table`
    loop: Any  # leadscore.handoff.kpis.LoopFacts
    rejections: Any  # leadscore.handoff.rejections.Rejections
    notes: list[str] = field(default_factory=list)
    display: pd.DataFrame | None = None  # the table as the report and the monitor show it


@dataclass(frozen=True)
class Planned:
    plan: Any  # leadscore.handoff.plan.Plan
    loop: Any
    notes: list[str] = field(default_factory=list)


def loop_facts(request: LoopRequest, progress: Progress, dataset=None, scorer=None):
    """The dataset, the loop's per-lead facts and the scorer (`scorer`, else the request's
    model loaded, else None); `dataset` when the caller has it loaded."""
    from leadscore.handoff.kpis import lead_facts
    from leadscore.jobs.score import sla_config

    start = parse_time(request.start, "--from")
    end = parse_time(request.end, "--to")
    sla = sla_config(request.sla_grade_a, request.sla_otherwise)
    ds = dataset if dataset is not None else load(request.data, progress)
    handoffs = None
    if request.history is not None:
        with progress.step(f"reading the hand-offs from {request.history}"):
            handoffs = handoff_times(request.history, request.grades, request.mql)
    if scorer is None and request.model is not None:
        from leadscore.scoring.mlflow_model import load_pinned_scorer

        with progress.step(f"loading {request.model}"):
            scorer, _ = load_pinned_scorer(request.model)
    loop = lead_facts(ds, handoffs=handoffs, sla=sla, start=start, end=end)
    if scorer is not None and handoffs is None:
        from leadscore.handoff.rejections import scored_at

        with progress.step("grading each lead at its hand-off"):
            handed = loop.facts[loop.facts["handed_off"]]
            graded = scored_at(ds, scorer, handed["lead_id"], handed["handed_off_at"], before=False)
        grades = graded.set_index("lead_id")["grade"]
        loop = lead_facts(
            ds, handoffs=handoffs, grades=grades, sla=sla, start=start, end=end,
            handoffs_from=loop.handoffs_from,
        )  # fmt: skip
    return ds, loop, scorer


def kpis(
    request: LoopRequest,
    by: str = "source",
    progress: Progress | None = None,
    dataset=None,
    scorer=None,
) -> Kpis:
    """The four KPIs per lever (or grade, or month), the rejected leads analysed, costs.
    `dataset` and `scorer`: already loaded by the caller (the report, the monitor)."""
    from leadscore.handoff.costs import load_costs, unmatched_sources
    from leadscore.handoff.kpis import display_table, kpi_table
    from leadscore.handoff.rejections import analyse_rejections, scored_at

    progress = progress or Recorded()
    costs = load_costs(request.costs) if request.costs is not None else None
    ds, loop, scorer = loop_facts(request, progress, dataset, scorer)
    notes = list(loop.notes)
    if costs is not None:
        no_spend, no_leads = unmatched_sources(costs, sorted(loop.facts["source"].unique()))
        if no_spend:
            notes.append(f"no spend for {', '.join(no_spend)}: its cost columns are empty")
        if no_leads:
            notes.append(f"spend for {', '.join(no_leads)}, which has no lead in the window")
        if by == "grade":
            notes.append("costs are per lever: they are shown by source and by month")
    table = kpi_table(loop, by=by, costs=costs)
    scored = None
    if scorer is not None and loop.has_status:
        decided = loop.facts[loop.facts["decision"].notna()]
        with progress.step(f"scoring the {len(decided):,} decided leads as sales saw them"):
            scored = scored_at(ds, scorer, decided["lead_id"], decided["decided_at"])
    horizon = scorer.spec.horizon_days if scorer is not None else None
    rejections = analyse_rejections(loop, scored, horizon)
    return Kpis(by, table, loop, rejections, notes, display_table(table, by))


def plan(
    request: LoopRequest,
    wins: float,
    period: str = "90d",
    max_growth: float | None = None,
    progress: Progress | None = None,
) -> Planned:
    """Leads, hand-offs, accepted leads and opportunities needed per lever for `wins` won
    deals in `period`; by default from the leads created up to 90 days before the data's
    end (their outcomes have had a sales cycle to come in)."""
    from leadscore.handoff.costs import load_costs
    from leadscore.handoff.plan import DEFAULT_MAX_GROWTH, make_plan
    from leadscore.handoff.sla import parse_duration

    progress = progress or Recorded()
    if not str(period).strip()[-1:].isalpha():
        raise LeadscoreError(f"--period {period!r}: give a unit, such as 90d or 12w")
    days = parse_duration(period, "--period") / pd.Timedelta(days=1)
    costs = load_costs(request.costs) if request.costs is not None else None
    notes = []
    ds = load(request.data, progress)
    if request.end is None:
        matured = ds.data_end - pd.Timedelta(days=MATURED_DAYS)
        request = _replace(request, end=matured.isoformat())
        notes.append(
            f"rates from the leads created up to {matured.date()} ({MATURED_DAYS} days before "
            "the data's end: later leads have not had a sales cycle yet; --to changes it)"
        )
    _, loop, _ = loop_facts(request, progress, ds)
    made = make_plan(
        loop,
        wins,
        days,
        costs=costs,
        max_growth=DEFAULT_MAX_GROWTH if max_growth is None else max_growth,
    )
    return Planned(made, loop, notes + list(loop.notes) + list(made.notes))


def _replace(request: LoopRequest, **changes) -> LoopRequest:
    from dataclasses import replace

    return replace(request, **changes)


def kpis_json(result: Kpis) -> dict:
    """What `kpis --json` prints: one row per lever (or grade, month) and the overall row."""
    from leadscore.handoff.kpis import ALL, PROCESSING_LINE, records

    loop = result.loop
    rows = records(result.table)
    rj = result.rejections
    return {
        "from": loop.start.isoformat(),
        "to": loop.end.isoformat(),
        "by": result.by,
        "handoffs": loop.handoffs_from,
        "sla": loop.sla.describe(),
        "processing_line": PROCESSING_LINE,
        "rows": [r for r in rows if r[result.by] != ALL],
        "overall": next(r for r in rows if r[result.by] == ALL),
        "rejections": {
            "findings": rj.findings,
            "by_reason": records(rj.by_reason),
            "by_lever": records(rj.by_lever),
            "by_grade": records(rj.by_grade),
            "groups": records(rj.groups),
            "won_anyway": records(rj.won_anyway),
        },
        "notes": result.notes,
    }


def plan_json(result: Planned) -> dict:
    """What `plan --json` prints: the lever rows of today's mix (`levers`) and of the mix that
    needs the fewest leads, the totals, and notes."""
    from leadscore.handoff.kpis import plain, records

    p = result.plan
    return {
        "wins": p.wins,
        "period_days": p.period_days,
        "from": result.loop.start.isoformat(),
        "to": result.loop.end.isoformat(),
        "levers": records(p.levers),
        "fewest_leads": {"levers": records(p.fewest)},
        "totals": {k: plain(v) for k, v in p.totals.items()},
        "notes": result.notes,
    }


def handoff_times(history: str, grades: str, mql: bool):
    """Each lead's first score above the hand-off line in a score history (lead_id,
    handed_off_at, and the model's grade at that score)."""
    from leadscore.handoff.events import HandoffLine, first_above_line
    from leadscore.operations.history import ScoreHistory

    line = HandoffLine(mql=mql, grades=grades)
    rows = ScoreHistory(history).read()
    if rows.empty:
        raise LeadscoreError(f"--history {history}: no stored score")
    return first_above_line(rows, line)
