"""`leadscore experiment start|stop|list|report|simulate`: the randomised hand-off
experiment, model against rules (`leadscore.jobs.experiment`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from leadscore.console import out, progress, styled, warn

app = typer.Typer(
    help="Randomised hand-off experiments: new leads handed off by the rules or by the model, at random and in equal numbers, and the wins per lead counted.",
    no_args_is_help=True,
)

DATA_HELP = "Dataset folder: its score history (score_history.duckdb) holds the experiments."
HISTORY_HELP = "The score history's store instead: a DuckDB file or a SQLAlchemy URL (give `leadscore score` and `leadscore serve` the same)."
AT_HELP = "When, as an ISO-8601 time (default: now)."


@app.command("start")
def start(
    name: str = typer.Argument(..., help="The experiment's name (its arms come from it)."),
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    history: str | None = typer.Option(None, "--history", help=HISTORY_HELP),
    share: float = typer.Option(0.5, "--share", help="The model arm's share of the new leads."),
    line: float | None = typer.Option(
        None,
        "--line",
        help="The model arm's hand-off line, a probability (default: matched to the rules' hand-off rate on the leads of the score history).",
    ),
    at: str | None = typer.Option(None, "--at", help="When the intake starts: " + AT_HELP),
    planned_leads: int = typer.Option(
        20_000,
        "--planned-leads",
        help="The number of matured leads the readout will count (with --design disagreements, the disagreeing ones) at which the anytime-valid interval is tightest; fixed now, before any outcome.",
    ),
    horizon_days: float = typer.Option(
        90.0, "--horizon-days", help="A lead's wins count this many days after its creation."
    ),
    aa: bool = typer.Option(
        False, "--aa", help="An A/A test: both arms hand off by the rules (checks the set-up)."
    ),
    design: str = typer.Option(
        "all",
        "--design",
        help="Which leads the readout counts: all (every lead of the intake, the default) or disagreements (only the leads on which the two policies disagreed at some score; more power, an effect per disagreeing lead).",
    ),
) -> None:
    """Start an experiment: each lead created from now on is assigned the rules' or the model's hand-off policy by a keyed hash of the experiment and its id."""
    from leadscore.jobs.experiment import StartRequest
    from leadscore.jobs.experiment import start as run

    done = run(
        StartRequest(
            name=name,
            data=data,
            history=history,
            share=share,
            line=line,
            at=at,
            planned_leads=planned_leads,
            horizon_days=horizon_days,
            aa=aa,
            design=design,
        )
    )
    e, m = done.experiment, done.matched
    matched = (
        f"matched to the rules' hand-off rate {m.rules_rate:.1%} on {m.leads:,} scored leads "
        f"(the model's rate at the line: {m.model_rate:.1%})"
        if m is not None
        else "as given"
    )
    out.print(
        f"experiment {e.name} started at {e.started_at.isoformat()} in {done.store}: "
        f"{e.share:.0%} of new leads to the model arm, its line p >= {e.line:.4f} {matched}",
        highlight=False,
    )


@app.command("stop")
def stop(
    name: str = typer.Argument(..., help="The experiment's name."),
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    history: str | None = typer.Option(None, "--history", help=HISTORY_HELP),
    at: str | None = typer.Option(None, "--at", help="When the intake ends: " + AT_HELP),
) -> None:
    """Stop an experiment taking new leads; the leads it has keep their arms."""
    from leadscore.jobs.experiment import stop as run

    e = run(name, data, history, at)
    out.print(f"experiment {e.name} stopped at {e.stopped_at.isoformat()}", highlight=False)


@app.command("list")
def list_(
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    history: str | None = typer.Option(None, "--history", help=HISTORY_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the experiments as JSON."),
) -> None:
    """List the experiments of a score history."""
    from leadscore.jobs.experiment import list_experiments

    found = list_experiments(data, history)
    if as_json:
        out.print_json(json.dumps([e.as_json() for e in found]))
        return
    if not found:
        out.print("no experiments", highlight=False)
    for e in found:
        until = f"until {e.stopped_at.isoformat()}" if e.stopped_at is not None else "running"
        kind = (" (A/A)" if e.aa else "") + (
            ", disagreements only" if e.design == "disagreements" else ""
        )
        out.print(
            f"{e.name}{kind}: from {e.started_at.isoformat()} {until}; model arm "
            f"{e.share:.0%}, line p >= {e.line:.4f}",
            highlight=False,
        )


@app.command("report")
def report(
    name: str = typer.Argument(..., help="The experiment's name."),
    data: Path = typer.Option(
        ..., "--data", help="Dataset folder: the CRM export whose deals are the outcomes."
    ),
    history: str | None = typer.Option(None, "--history", help=HISTORY_HELP),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Read out at this ISO-8601 time (default: the data's end)."
    ),
    detect: float = typer.Option(
        1.0,
        "--detect",
        help="The difference, in wins per 100 leads, the weeks-to-go estimate is for.",
    ),
    page: Path | None = typer.Option(
        None, "--out", help="Write the readout's page here (.html; its JSON next to it)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the readout as JSON."),
) -> None:
    """Read out an experiment: per arm, leads, hand-offs, matured leads, wins and revenue; the difference in wins per 100 leads (model minus rules) with an anytime-valid and a fixed-horizon 95 % interval; the verdict."""
    from leadscore.crm.csv_out import json_ready
    from leadscore.jobs.experiment import ReportRequest
    from leadscore.jobs.experiment import report as run

    done = run(
        ReportRequest(name=name, data=data, history=history, as_of=as_of, detect=detect, out=page),
        progress,
    )
    r = done.readout
    if as_json:
        out.print_json(json.dumps(json_ready(r.as_json())))
        return
    if r.design == "disagreements":
        counted = sum(a.leads for a in r.arms)
        out.print(
            f"design: the {counted:,} of {r.enrolled:,} leads on which the two policies disagreed",
            highlight=False,
        )
    for a in r.arms:
        out.print(
            f"{a.arm:>5}: {a.leads:,} leads, {a.handoffs:,} handed off ({a.handoff_rate:.1%}), "
            f"{a.matured:,} matured, {a.wins:,} wins ({a.wins_per_100:.1f} per 100), "
            f"revenue per lead {a.revenue_per_lead:,.0f}",
            highlight=False,
        )
    out.print(
        f"difference (model - rules): {r.effect:+.2f} wins per 100 leads; anytime-valid "
        f"[{r.low:.2f}, {r.high:.2f}], fixed-horizon [{r.fixed_low:.2f}, {r.fixed_high:.2f}]",
        highlight=False,
    )
    for text in r.warnings:
        warn(text)
    colour = {"switch": "green", "not yet sure": "yellow", "no difference": "green"}
    out.print(styled((r.verdict, colour.get(r.decision, "red"))), highlight=False)
    if done.page is not None:
        out.print(f"page: {done.page} (JSON: {done.json_path})", highlight=False)


@app.command("simulate")
def simulate(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the world into."),
    leads: int = typer.Option(10_000, "--leads", help="Leads in the experiment period."),
    share: float = typer.Option(0.5, "--share", help="The model arm's share of the leads."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed: same seed, same world."),
    name: str = typer.Option("simulated-experiment", "--name", help="The experiment's name."),
    aa: bool = typer.Option(False, "--aa", help="Both arms hand off by the rules (an A/A test)."),
    capacity: float | None = typer.Option(
        None, "--capacity", help="Hand-offs per day sales can touch fast (default: all of them)."
    ),
    overwrite: bool = typer.Option(False, help="Replace the folder if it is not empty."),
    design: str = typer.Option(
        "all", "--design", help="The experiment's design: all or disagreements (see start)."
    ),
) -> None:
    """Simulate a CRM whose sales team reacts to hand-offs: a pre-period under the rules (the history a model is trained on), then the experiment; the true effect goes to OUT/truth/experiment.json."""
    from leadscore.jobs.experiment import SimulateRequest
    from leadscore.jobs.experiment import simulate as run

    done = run(
        SimulateRequest(
            out=out_dir,
            leads=leads,
            share=share,
            seed=seed,
            name=name,
            aa=aa,
            capacity=capacity,
            overwrite=overwrite,
            design=design,
        )
    )
    t = done.truth
    out.print(
        f"wrote {done.out}: experiment {t['name']} on {t['leads']:,} leads, true effect "
        f"{t['effect']:+.2f} wins per 100 leads (the offline capacity-matched comparison "
        f"says {t['offline_capacity_matched_effect']:+.2f}); read it with: leadscore "
        f"experiment report {t['name']} --data {done.out}",
        highlight=False,
    )
