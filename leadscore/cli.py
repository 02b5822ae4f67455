"""`leadscore` command line: one Typer app, one command per job.

Heavy libraries are imported inside the commands so that `leadscore --help` stays fast.
A user mistake (bad data, bad config) prints one clear line and exits 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from features.errors import LeadscoreError

app = typer.Typer(
    name="leadscore",
    help="Predictive lead scoring: point-in-time features, calibrated models, explainable scores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


class EarlyEvents(StrEnum):
    error = "error"
    drop = "drop"


class FileFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


@app.command()
def validate(
    data: Path = typer.Argument(
        ..., help="Dataset folder (leads, activities, deals; CSV or Parquet)."
    ),
    early_events: EarlyEvents | None = typer.Option(
        None, help="Events dated before their lead was created: error, or drop and count them."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Load and check a dataset against the data contract; print a summary or the error."""
    from features.loading import load_dataset
    from features.summary import summarize_dataset

    ds = load_dataset(data, early_events=early_events.value if early_events else None)
    summary = summarize_dataset(ds)
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        print_summary(summary)


@app.command()
def simulate(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the dataset into."),
    leads: int = typer.Option(20_000, "--leads", min=1, help="Number of leads."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed: same seed, same bytes."),
    start: str = typer.Option("2025-01-01", help="First day leads arrive (UTC)."),
    days: float = typer.Option(540.0, min=1, help="Days of arrivals (540 = ~18 months)."),
    file_format: FileFormat = typer.Option(FileFormat.parquet, "--format", help="Table format."),
    overwrite: bool = typer.Option(False, help="Replace the folder if it is not empty."),
) -> None:
    """Simulate a B2B CRM (leads, activities, deals) and its hidden truth (truth.csv)."""
    from pydantic import ValidationError

    from features.contract import format_validation_error
    from simulation.simulator import SimulationConfig
    from simulation.simulator import simulate as run_simulation

    try:
        config = SimulationConfig(
            n_leads=leads, seed=seed, start=start, days=days, format=file_format.value
        )
    except ValidationError as exc:
        raise LeadscoreError(f"simulate: {format_validation_error(exc)}") from exc
    counts = run_simulation(config, out_dir, overwrite=overwrite)
    out.print(
        f"wrote {counts['leads']:,} leads, {counts['activities']:,} activities, "
        f"{counts['deals']:,} deals to {out_dir}"
    )


@app.command()
def features(
    data: Path = typer.Option(..., "--data", help="Dataset folder."),
    out_file: Path = typer.Option(..., "--out", help="Training set to write (.parquet)."),
    config: Path | None = typer.Option(
        None, "--config", help="Feature config YAML (default: built-in defaults)."
    ),
    data_end: str | None = typer.Option(
        None, "--data-end", help="End of observation (ISO-8601); default: latest timestamp."
    ),
    early_events: EarlyEvents | None = typer.Option(
        None, help="Events before their lead was created: error or drop."
    ),
) -> None:
    """Build the labelled point-in-time training set (one row per lead and snapshot)."""
    import pandas as pd

    from features.batch import build_training_set
    from features.config import load_feature_config
    from features.loading import load_dataset
    from features.training_set import write_training_set

    feature_config = load_feature_config(config)
    end = None
    if data_end is not None:
        try:
            end = pd.Timestamp(data_end)
        except ValueError as exc:
            raise LeadscoreError(f"--data-end: not an ISO-8601 timestamp ({data_end!r})") from exc
    ds = load_dataset(data, early_events=early_events.value if early_events else None)
    df, spec, stats = build_training_set(ds, feature_config, data_end=end)
    if df.empty:
        raise LeadscoreError(
            f"{data}: no snapshot survives (all censored or closed); {stats}. "
            "Is the data shorter than the horizon? Try a shorter horizon_days or a later --data-end."
        )
    write_training_set(df, spec, stats, out_file)
    out.print(
        f"wrote {stats['snapshots']:,} snapshots of {df['lead_id'].nunique():,} leads, "
        f"{len(spec.feature_names)} features ({spec.version}) to {out_file}"
    )
    out.print(
        f"positives {stats['positives']:,} ({stats['positives'] / stats['snapshots']:.1%}); "
        f"dropped {stats['dropped_censored']:,} censored and {stats['dropped_closed']:,} already-closed snapshots"
    )


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo"), "--out", help="Working folder of the demo."),
    leads: int = typer.Option(20_000, "--leads", min=100, help="Simulated leads."),
    seed: int = typer.Option(42, "--seed", min=0),
) -> None:
    """The main job end to end on embedded defaults: simulate a CRM, validate, build features."""
    from features.batch import build_training_set
    from features.loading import load_dataset
    from features.summary import summarize_dataset
    from features.training_set import write_training_set
    from simulation.simulator import SimulationConfig
    from simulation.simulator import simulate as run_simulation

    data = out_dir / "crm"
    out.rule("1. simulate a CRM")
    counts = run_simulation(SimulationConfig(n_leads=leads, seed=seed), data, overwrite=True)
    out.print(
        f"{counts['leads']:,} leads, {counts['activities']:,} activities, {counts['deals']:,} deals in {data}"
    )
    out.rule("2. load and validate")
    ds = load_dataset(data)
    print_summary(summarize_dataset(ds))
    out.rule("3. point-in-time training set")
    df, spec, stats = build_training_set(ds)
    path = write_training_set(df, spec, stats, out_dir / "training_set.parquet")
    out.print(
        f"{stats['snapshots']:,} snapshots ({stats['positives'] / max(stats['snapshots'], 1):.1%} positive), "
        f"{len(spec.feature_names)} features ({spec.version}); dropped {stats['dropped_censored']:,} censored "
        f"and {stats['dropped_closed']:,} closed snapshots -> {path}"
    )


def print_summary(s: dict) -> None:
    out.print(f"[bold]{s['path']}[/bold] ({s['kind']} dataset: {', '.join(s['files'].values())})")
    out.print(
        f"{s['leads']:,} leads created {s['created_from'][:10]} .. data end {s['data_end'][:10]}; "
        f"win rate {s['win_rate']:.1%}"
        + (
            f" ({s['won_leads']:,} won leads, revenue {s['won_revenue']:,.0f})"
            if "won_leads" in s
            else ""
        )
    )
    for title, key in (
        ("source", "leads_by_source"),
        ("activity type", "activities_by_type"),
        ("deal status", "deals_by_status"),
    ):
        counts = s[key]
        if not counts:
            continue
        table = Table(title=None, show_edge=False, pad_edge=False)
        table.add_column(title)
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        total = sum(counts.values())
        for name, n in counts.items():
            table.add_row(name, f"{n:,}", f"{n / total:.1%}")
        out.print(table)
    if s["profile_columns"]:
        out.print("profile columns: " + ", ".join(s["profile_columns"]))
    if s["leaky_columns"]:
        out.print("[yellow]declared leaky: " + ", ".join(s["leaky_columns"]) + "[/yellow]")
    for what, n in s["dropped"].items():
        out.print(f"[yellow]dropped {n:,} {what.replace('_', ' ')}[/yellow]")


def main() -> None:
    """Console-script entry point: user errors become one red line and exit code 1."""
    try:
        app()
    except LeadscoreError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
