"""The experiment's readout: per arm, leads assigned, hand-offs, matured leads, wins within
the horizon and revenue; the difference in wins per 100 leads assigned (model minus rules)
with a fixed-horizon 95 % interval and an anytime-valid 95 % confidence sequence; how many
more weeks a given difference needs; and the verdict in words.

Intention to treat: a lead counts in the arm its hash gave it, whatever happened to it
(handed off or not, called or not). Its outcome is a win within `horizon_days` of its
creation, known once the horizon has passed (`matured`); the difference is read on the
matured leads only. The verdict reads the confidence sequence, which stays valid however
often the readout is looked at (`leadscore.stats.sequential`); the fixed-horizon interval
is shown next to it for one planned look.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import US_PER_DAY, days_us, to_us
from leadscore.experiment.assignment import MODEL, RULES, in_model_arm
from leadscore.experiment.records import Experiment
from leadscore.features.labels import Timeline
from leadscore.stats.sequential import (
    difference_sd,
    fixed_halfwidth,
    rho_for,
    sequence_halfwidth,
    size_for_halfwidth,
)

PER = 100.0  # the effect's unit: wins per 100 leads assigned
ALPHA = 0.05
WEEK_US = 7 * US_PER_DAY


@dataclass(frozen=True)
class Outcomes:
    """The experiment's leads, one entry each: creation (µs), arm (True: model), whether
    handed off, whether matured at the readout's as_of, won within the horizon, and the
    revenue of those wins."""

    created_us: np.ndarray
    model: np.ndarray
    handed_off: np.ndarray
    matured: np.ndarray
    won: np.ndarray
    revenue: np.ndarray


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    leads: int
    handoffs: int
    handoff_rate: float
    matured: int
    wins: int
    wins_per_100: float
    revenue_per_lead: float


@dataclass(frozen=True)
class Readout:
    """What `leadscore experiment report` prints, writes as JSON and shows on its page.
    effect, low, high: model minus rules, wins per 100 matured leads assigned, with the
    anytime-valid confidence sequence; fixed_low, fixed_high: the fixed-horizon interval."""

    experiment: str
    as_of: str
    started_at: str
    stopped_at: str | None
    share: float
    line: float
    aa: bool
    horizon_days: float
    design: str
    enrolled: int
    arms: list[ArmSummary]
    effect: float
    low: float
    high: float
    fixed_low: float
    fixed_high: float
    decision: str
    verdict: str
    detect: float
    weeks_to_go: float | None
    leads_per_week: float
    first_maturing_at: str | None
    path: list[dict]  # the weekly reads so far: what every Monday's look showed
    warnings: list[str]  # what to check before trusting the verdict

    def as_json(self) -> dict:
        out = asdict(self)
        out["arms"] = {a.arm: {k: v for k, v in asdict(a).items() if k != "arm"} for a in self.arms}
        return out


def outcomes(
    dataset: Dataset,
    experiment: Experiment,
    as_of: pd.Timestamp,
    handed_off: pd.DataFrame,
    only: set[str] | None = None,
) -> tuple[pd.Series, Outcomes]:
    """The experiment's leads in `dataset` (created in its intake and by `as_of`; of those,
    the leads in `only` when given: the disagreements design's) and their outcomes at
    `as_of`; `handed_off`: the hand-offs (lead_id)."""
    timeline = Timeline.of_dataset(dataset)
    when = to_us(as_of)
    created = timeline.created_us
    stop = experiment.stopped_us if experiment.stopped_us is not None else np.iinfo(np.int64).max
    intake = (created >= experiment.started_us) & (created < stop) & (created <= when)
    if only is not None:
        intake &= dataset.leads["lead_id"].astype(str).isin(only).to_numpy()
    mine = np.flatnonzero(intake)
    ids = dataset.leads["lead_id"].astype(str).iloc[mine].reset_index(drop=True)
    horizon = days_us(experiment.horizon_days)
    lead_created = created[mine]
    matured = lead_created + horizon <= when
    rows, deals = timeline.deals_within(mine, lead_created, horizon, won=True)
    won = np.zeros(len(mine), dtype=np.int64)
    revenue = np.zeros(len(mine))
    won[rows] = 1
    np.add.at(revenue, rows, np.nan_to_num(timeline.deal_amount[deals]))
    handed = ids.isin(set(handed_off["lead_id"].astype(str))).to_numpy()
    return ids, Outcomes(
        created_us=lead_created,
        model=in_model_arm(experiment.name, ids, experiment.share),
        handed_off=handed,
        matured=matured,
        won=won,
        revenue=revenue,
    )


def difference(
    model: np.ndarray, won: np.ndarray, *, planned_leads: int, alpha: float = ALPHA
) -> tuple[float, float, float, float, float, float]:
    """(effect, cs_low, cs_high, fixed_low, fixed_high, sd) for matured leads' arms
    (`model`, bool) and outcomes (`won`, 0/1), in wins per 100 leads. Each interval is
    centred on the effect, so it always contains it."""
    model = np.asarray(model, dtype=bool)
    won = np.asarray(won, dtype=np.float64)
    n1, n0 = int(model.sum()), int((~model).sum())
    if n1 == 0 or n0 == 0:
        raise LeadscoreError("both arms need a matured lead before the difference can be read")
    p1, p0 = float(won[model].mean()), float(won[~model].mean())
    n = n1 + n0
    sd = difference_sd(n, n1, p1, n0, p0)
    effect = (p1 - p0) * PER
    cs = float(sequence_halfwidth(n, sd, rho=rho_for(planned_leads, alpha), alpha=alpha)) * PER
    fixed = float(fixed_halfwidth(n, sd)) * PER
    return effect, effect - cs, effect + cs, effect - fixed, effect + fixed, sd


def read_out(
    experiment: Experiment,
    data: Outcomes,
    as_of: pd.Timestamp,
    *,
    detect: float = 1.0,
    enrolled: int | None = None,
) -> Readout:
    """The readout of an experiment from its leads' outcomes at `as_of`; `detect`: the
    difference (wins per 100 leads) the weeks-to-go estimate is for; `enrolled`: the leads
    of its intake (the disagreements design counts fewer). A LeadscoreError before both
    arms have a matured lead."""
    when = to_us(as_of)
    horizon = days_us(experiment.horizon_days)
    if not len(data.created_us):
        what = (
            "no lead on which the two policies disagreed"
            if experiment.design == "disagreements"
            else "no lead created"
        )
        raise LeadscoreError(
            f"experiment {experiment.name!r}: {what} since it started "
            f"({experiment.started_at.isoformat()}) in this data (up to {pd.Timestamp(as_of).isoformat()})"
        )
    first_maturing = int(data.created_us.min()) + horizon
    matured = data.matured
    if not (matured & data.model).any() or not (matured & ~data.model).any():
        raise LeadscoreError(
            f"experiment {experiment.name!r}: no matured lead in "
            f"{'either arm' if not matured.any() else 'one arm'} yet: a lead's outcome is "
            f"known {experiment.horizon_days:g} days after it was created; the first "
            f"matures at {_iso(first_maturing)}"
        )
    effect, low, high, fixed_low, fixed_high, sd = difference(
        data.model[matured], data.won[matured], planned_leads=experiment.planned_leads
    )
    arms = [_arm(name, data, data.model == (name == MODEL)) for name in (RULES, MODEL)]
    weeks_span = max((when - experiment.started_us) / WEEK_US, 1e-9)
    # stopped by the readout's time? (a readout of an earlier day sees it running)
    end = (
        experiment.stopped_us
        if experiment.stopped_us is not None and experiment.stopped_us <= when
        else None
    )
    rate = len(data.created_us) / weeks_span if end is None else 0.0
    weeks = weeks_to_go(
        detect,
        sd,
        created_us=np.sort(data.created_us),
        matured=int(matured.sum()),
        when_us=when,
        horizon_us=horizon,
        leads_per_week=rate,
        planned_leads=experiment.planned_leads,
    )
    decision, verdict = verdict_of(
        effect, low, high, experiment.aa, detect, weeks, stopped=end is not None
    )
    return Readout(
        experiment=experiment.name,
        as_of=pd.Timestamp(as_of).isoformat(),
        started_at=experiment.started_at.isoformat(),
        stopped_at=None if experiment.stopped_at is None else experiment.stopped_at.isoformat(),
        share=experiment.share,
        line=experiment.line,
        aa=experiment.aa,
        horizon_days=experiment.horizon_days,
        design=experiment.design,
        enrolled=len(data.created_us) if enrolled is None else int(enrolled),
        arms=arms,
        effect=effect,
        low=low,
        high=high,
        fixed_low=fixed_low,
        fixed_high=fixed_high,
        decision=decision,
        verdict=verdict,
        detect=detect,
        weeks_to_go=weeks,
        leads_per_week=rate,
        first_maturing_at=_iso(first_maturing),
        path=weekly_path(experiment, data, when),
        warnings=warnings_of(arms, experiment),
    )


def weekly_path(experiment: Experiment, data: Outcomes, when_us: int) -> list[dict]:
    """The readout as each week since the start would have shown it (a week's end, the
    matured leads then, the effect and both intervals), from the first week both arms had a
    matured lead to `when_us`, the readout's own look last: the path the anytime-valid
    interval keeps its promise along."""
    matures = data.created_us + days_us(experiment.horizon_days)
    ends = list(range(experiment.started_us + WEEK_US, when_us, WEEK_US)) + [when_us]
    out = []
    for end in ends:
        done = matures <= end
        if not (done & data.model).any() or not (done & ~data.model).any():
            continue
        effect, low, high, fixed_low, fixed_high, _ = difference(
            data.model[done], data.won[done], planned_leads=experiment.planned_leads
        )
        out.append(
            {"at": _iso(end), "matured": int(done.sum()), "effect": effect, "low": low,
             "high": high, "fixed_low": fixed_low, "fixed_high": fixed_high}
        )  # fmt: skip
    return out


def warnings_of(arms: list[ArmSummary], experiment: Experiment) -> list[str]:
    """What the readout should say before its verdict: arms whose hand-off rates differ
    beyond chance (the matched line no longer matches: sales gets more leads from one arm,
    and the comparison is no longer of which leads alone), and an assignment whose split
    is far from the share (the hash should never do that: a sign that leads are missing)."""
    out = []
    rules, model = arms
    if rules.leads and model.leads and (rules.handoffs + model.handoffs):
        pooled = (rules.handoffs + model.handoffs) / (rules.leads + model.leads)
        se = np.sqrt(pooled * (1 - pooled) * (1 / rules.leads + 1 / model.leads))
        z = (model.handoff_rate - rules.handoff_rate) / se if se > 0 else 0.0
        if abs(z) > 4 and not experiment.aa:
            out.append(
                f"the arms' hand-off rates differ: model {model.handoff_rate:.1%}, rules "
                f"{rules.handoff_rate:.1%} (z = {z:.1f}); the model's line "
                f"({experiment.line:.4f}) no longer matches the rules' rate, so part of the "
                "difference is how many leads sales got, not which"
            )
    n = rules.leads + model.leads
    if n:
        z = (model.leads - experiment.share * n) / np.sqrt(
            n * experiment.share * (1 - experiment.share)
        )
        if abs(z) > 5:
            out.append(
                f"the model arm has {model.leads:,} of {n:,} leads where its share "
                f"{experiment.share:.0%} says about {experiment.share * n:,.0f} (z = {z:.1f}): "
                "are leads missing from the export?"
            )
    return out


def _arm(name: str, data: Outcomes, mask: np.ndarray) -> ArmSummary:
    matured = mask & data.matured
    m = int(matured.sum())
    leads = int(mask.sum())
    handoffs = int((mask & data.handed_off).sum())
    return ArmSummary(
        arm=name,
        leads=leads,
        handoffs=handoffs,
        handoff_rate=handoffs / leads if leads else math.nan,
        matured=m,
        wins=int(data.won[matured].sum()),
        wins_per_100=float(data.won[matured].mean() * PER) if m else math.nan,
        revenue_per_lead=float(data.revenue[matured].mean()) if m else math.nan,
    )


def weeks_to_go(
    detect: float,
    sd: float,
    *,
    created_us: np.ndarray,
    matured: int,
    when_us: int,
    horizon_us: int,
    leads_per_week: float,
    planned_leads: int,
) -> float | None:
    """Weeks until the confidence sequence is narrow enough (half-width at most `detect`
    wins per 100 leads) to tell a difference of that size from none, at the current intake
    (`leads_per_week`) and spread (`sd`): the needed lead must be assigned and then reach
    its horizon. 0: narrow enough now; None: never at this intake (stopped, or no spread
    estimate)."""
    needed = size_for_halfwidth(abs(detect) / PER, sd, rho=rho_for(planned_leads, ALPHA))
    if needed is None:
        return None
    if needed <= matured:
        return 0.0
    if needed <= len(created_us):
        return max(0.0, (int(created_us[needed - 1]) + horizon_us - when_us) / WEEK_US)
    if leads_per_week <= 0:
        return None
    return (needed - len(created_us)) / leads_per_week + horizon_us / WEEK_US


def verdict_of(
    effect: float,
    low: float,
    high: float,
    aa: bool,
    detect: float,
    weeks: float | None,
    *,
    stopped: bool = False,
) -> tuple[str, str]:
    """(decision, verdict): `switch`, `keep the rules` or `not yet sure` (an A/A test:
    `arms differ` or `no difference`), and the sentence that says it."""
    span = f"[{low:.1f}, {high:.1f}]"
    if aa:
        if low > 0 or high < 0:
            return "arms differ", (
                f"both arms follow the rules, yet they differ by {effect:+.1f} deals per 100 "
                f"leads {span}: check the set-up (assignment, hand-offs, outcomes)"
            )
        return "no difference", (
            f"both arms follow the rules and do not differ: {effect:+.1f} deals per 100 "
            f"leads {span}"
        )
    if low > 0:
        return "switch", (
            f"the model's hand-offs win {effect:.1f} more deals per 100 leads {span}: switch"
        )
    if high < 0:
        return "keep the rules", (
            f"the rules do better: the model's hand-offs win {-effect:.1f} fewer deals per "
            f"100 leads {span}: keep the rules"
        )
    if weeks is None:
        more = (
            f"its intake has stopped, and its leads will not tell a difference of {detect:g} "
            "from none"
            if stopped
            else "no end in sight at the current intake"
        )
    elif weeks == 0:
        more = f"a difference of {detect:g} or more would show by now"
    else:
        more = f"about {math.ceil(weeks)} more weeks to tell a difference of {detect:g} from none"
    return "not yet sure", (
        f"not yet sure: the model's hand-offs win {effect:+.1f} deals per 100 leads {span}; {more}"
    )


def _iso(us: int) -> str:
    return pd.Timestamp(int(us), unit="us", tz="UTC").isoformat()
