"""The hand-off experiment's jobs: `start`, `stop`, `list`, `report` and `simulate`
(`leadscore experiment ...`, the benchmark and the tests call these).

The experiments live in the score history's store (`--history`, or score_history.duckdb in
the data folder), where `leadscore score` and the event stream's service find them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.jobs.progress import Progress, Recorded
from leadscore.jobs.score import parse_time

PLANNED_LEADS = 20_000
HORIZON_DAYS = 90.0


def experiment_store(data: Path | None, history: str | None):
    """The experiments' store: `history` (a DuckDB file or SQLAlchemy URL), else the score
    history of the data folder."""
    from leadscore.experiment.records import ExperimentStore
    from leadscore.operations.history import default_store

    if history is None and data is None:
        raise LeadscoreError("give --data (its score history) or --history (the store)")
    return ExperimentStore(history or default_store(data))


@dataclass(frozen=True)
class StartRequest:
    """name; share: the model arm's share of the new leads; line: the model arm's
    probability line (None: matched to the rules' hand-off rate on the score history's
    leads); at: when the intake starts (None: now); planned_leads: the size the confidence
    sequence is tightest at; horizon_days: how long after its creation a lead's wins count;
    aa: both arms by the rules (an A/A test); design: the leads the readout counts, `all`
    or `disagreements` (fixed now, before any outcome)."""

    name: str
    data: Path | None = None
    history: str | None = None
    share: float = 0.5
    line: float | None = None
    at: str | None = None
    planned_leads: int = PLANNED_LEADS
    horizon_days: float = HORIZON_DAYS
    aa: bool = False
    design: str = "all"


@dataclass(frozen=True)
class Started:
    experiment: Any  # leadscore.experiment.records.Experiment
    matched: Any  # leadscore.experiment.policy.MatchedLine, None when the line was given
    store: str


def start(request: StartRequest) -> Started:
    """Record a new experiment, its model line matched to the rules' hand-off rate."""
    from leadscore.crm.times import to_us, utc
    from leadscore.experiment.policy import matched_line, per_lead_extremes
    from leadscore.experiment.records import DESIGNS, Experiment, check_name
    from leadscore.operations.history import ScoreHistory

    check_name(request.name)
    if request.design not in DESIGNS:
        raise LeadscoreError(f"--design {request.design!r}: one of {', '.join(DESIGNS)}")
    if not 0.0 < request.share < 1.0:
        raise LeadscoreError(f"--share {request.share:g}: the model arm's share must be in (0, 1)")
    if request.line is not None and not 0.0 <= request.line <= 1.0:
        raise LeadscoreError(f"--line {request.line:g}: a probability in [0, 1]")
    if request.planned_leads < 100:
        raise LeadscoreError(f"--planned-leads {request.planned_leads}: at least 100")
    if request.horizon_days <= 0:
        raise LeadscoreError(f"--horizon-days {request.horizon_days:g}: must be positive")
    store = experiment_store(request.data, request.history)
    at = parse_time(request.at, "--at") or utc(pd.Timestamp.now(tz="UTC"))
    matched = None
    if request.line is None:
        max_p, ever_mql = per_lead_extremes(ScoreHistory(store.store).read())
        matched = matched_line(max_p, ever_mql)
        if not ever_mql.any():
            raise LeadscoreError(
                f"{store.shown}: the rules handed off none of the {matched.leads:,} scored "
                "leads (no MQL in the score history): nothing to match the model's line to; "
                "give --line"
            )
    experiment = Experiment(
        name=request.name,
        started_us=to_us(at),
        share=float(request.share),
        line=float(request.line if matched is None else matched.line),
        rules_rate=None if matched is None else matched.rules_rate,
        matched_leads=0 if matched is None else matched.leads,
        planned_leads=int(request.planned_leads),
        horizon_days=float(request.horizon_days),
        aa=bool(request.aa),
        design=request.design,
    )
    store.start(experiment)
    return Started(experiment, matched, store.shown)


def stop(name: str, data: Path | None = None, history: str | None = None, at: str | None = None):
    """End an experiment's intake (now, or `at`); its leads keep their arms."""
    from leadscore.crm.times import utc

    store = experiment_store(data, history)
    when = parse_time(at, "--at") or utc(pd.Timestamp.now(tz="UTC"))
    return store.stop(name, when)


def list_experiments(data: Path | None = None, history: str | None = None) -> list:
    return experiment_store(data, history).list()


@dataclass(frozen=True)
class ReportRequest:
    """name; data: the CRM export the outcomes are read from; history: the store (None:
    the data folder's score history); as_of: the readout's time (None: the data's end);
    detect: the difference (wins per 100 leads) the weeks-to-go estimate is for; out: the
    page (HTML; its JSON next to it), None: no page."""

    name: str
    data: Path
    history: str | None = None
    as_of: str | None = None
    detect: float = 1.0
    out: Path | None = None


@dataclass(frozen=True)
class Reported:
    readout: Any  # leadscore.experiment.readout.Readout
    page: Path | None
    json_path: Path | None


def report(request: ReportRequest, progress: Progress | None = None) -> Reported:
    """The experiment's readout on the data's outcomes, and its page."""
    from leadscore.crm.times import utc
    from leadscore.experiment.page import write_report
    from leadscore.experiment.policy import disagreed, handed_off_in_history
    from leadscore.experiment.readout import outcomes, read_out
    from leadscore.jobs.data import load
    from leadscore.operations.history import ScoreHistory

    progress = progress or Recorded()
    if not request.detect > 0:
        raise LeadscoreError(
            f"--detect {request.detect:g}: a positive number of wins per 100 leads"
        )
    store = experiment_store(request.data, request.history)
    experiment = store.get(request.name)  # an unknown name fails before the data is read
    if request.out is not None and Path(request.out).suffix.lower() != ".html":
        raise LeadscoreError(f"--out {request.out}: the page must end in .html")
    ds = load(request.data, progress)
    when = parse_time(request.as_of, "--as-of") or utc(ds.data_end)
    # Its hand-offs: those recorded as they were sent, and those the score history shows
    # (a lead scored above its arm's line, by the batch or by the stream).
    rows = ScoreHistory(store.store).read(before=when + pd.Timedelta(microseconds=1))
    handed = set(store.handoffs(request.name)["lead_id"].astype(str))
    handed |= handed_off_in_history(rows, experiment)
    handed_df = pd.DataFrame({"lead_id": sorted(handed)})
    intake, data = outcomes(ds, experiment, when, handed_df)
    enrolled = len(intake)
    if experiment.design == "disagreements":
        _, data = outcomes(ds, experiment, when, handed_df, only=disagreed(rows, experiment))
    readout = read_out(experiment, data, when, detect=request.detect, enrolled=enrolled)
    page = json_path = None
    if request.out is not None:
        page, json_path = write_report(readout, Path(request.out))
    return Reported(readout, page, json_path)


@dataclass(frozen=True)
class SimulateRequest:
    """The closed-loop world (`leadscore.simulation.experiment_world.WorldConfig`'s knobs)
    written to `out`, its experiment recorded in out/score_history.duckdb."""

    out: Path
    leads: int = 10_000
    share: float = 0.5
    seed: int = 0
    name: str = "simulated-experiment"
    aa: bool = False
    capacity: float | None = None
    overwrite: bool = False
    design: str = "all"


@dataclass(frozen=True)
class Simulated:
    out: Path
    experiment: Any
    truth: dict


def simulated_world(config):
    """Run the closed-loop world with the experiment's own assignment and line matching."""
    from leadscore.experiment.assignment import in_model_arm
    from leadscore.experiment.policy import matched_line
    from leadscore.simulation.experiment_world import run_world

    return run_world(
        config,
        assign=lambda ids: in_model_arm(config.name, ids, config.share),
        match=lambda p, mql: matched_line(p, mql).line,
    )


def simulate(request: SimulateRequest) -> Simulated:
    """Simulate a world where policy matters, and record its experiment and hand-offs in
    the score history's store of the folder, so `leadscore experiment report` reads it."""
    from leadscore.experiment.assignment import MODEL, RULES
    from leadscore.experiment.records import Experiment, ExperimentStore, check_name
    from leadscore.operations.history import ScoreHistory, default_store
    from leadscore.simulation.experiment_world import (
        HORIZON_DAYS as WORLD_HORIZON,
    )
    from leadscore.simulation.experiment_world import (
        WorldConfig,
        truth,
        world_scores,
        world_tables,
        write_world,
    )

    check_name(request.name)
    Experiment(  # a bad design is refused before the world is simulated
        name=request.name, started_us=0, share=0.5, line=0.0, rules_rate=None,
        matched_leads=0, planned_leads=100, horizon_days=1.0, design=request.design,
    )  # fmt: skip
    try:
        config = WorldConfig(
            leads=request.leads,
            share=request.share,
            seed=request.seed,
            name=request.name,
            aa=request.aa,
            capacity=request.capacity,
        )
    except ValueError as exc:
        raise LeadscoreError(f"experiment simulate: {str(exc).splitlines()[-1].strip()}") from exc
    world = simulated_world(config)
    planned = request.leads
    if request.design == "disagreements":  # as many as the pre-period says will disagree
        differ = world.pre_handed != (world.pre_probability >= world.line)
        planned = int(round(request.leads * float(differ.mean())))
    planned = max(100, planned)
    out = write_world(world, request.out, overwrite=request.overwrite)
    experiment = Experiment(
        name=request.name,
        started_us=world.started_us,
        stopped_us=world.stopped_us,
        share=request.share,
        line=world.line,
        rules_rate=world.rules_rate,
        matched_leads=int((2 * len(world.pre.lead_id)) // 3),
        planned_leads=planned,
        horizon_days=WORLD_HORIZON,
        aa=request.aa,
        design=request.design,
    )
    # the scores the batch would have stored (each lead's at its creation), then the record
    ScoreHistory(default_store(out)).append(world_scores(world))
    store = ExperimentStore(default_store(out))
    store.start(experiment)
    handed = world_tables(world)["handoffs"]
    arms = dict(zip(world.exp.lead_id, world.exp_model_arm, strict=True))
    store.record_handoffs(
        {
            "experiment": request.name,
            "lead_id": lead,
            "arm": MODEL if arms[lead] else RULES,
            "as_of": pd.Timestamp(int(us), unit="us", tz="UTC").isoformat(),
            "event_id": f"simulated-{lead}",
            "type": "lead.handoff",
        }
        for lead, us in zip(handed["lead_id"], handed["handed_off_us"], strict=True)
    )
    return Simulated(out, experiment, json.loads(json.dumps(truth(world))))
