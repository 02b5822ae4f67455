"""`leadscore validate`, `simulate` and `features`: datasets in, checked datasets and training sets out."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from leadscore.console import (
    ENGINE_HELP,
    SPARK_MASTER_HELP,
    EarlyEvents,
    Engine,
    FileFormat,
    load,
    out,
    print_summary,
    spark_history,
    step,
)
from leadscore.crm.errors import LeadscoreError


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
    from leadscore.crm.summary import summarize_dataset

    ds = load(data, early_events=early_events.value if early_events else None)
    summary = summarize_dataset(ds)
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        print_summary(summary)


def simulate(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the dataset into."),
    leads: int = typer.Option(20_000, "--leads", min=1, help="Number of leads."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed: same seed, same bytes."),
    start: str = typer.Option("2025-01-01", help="First day leads arrive (UTC)."),
    days: float = typer.Option(540.0, min=1, help="Days of arrivals (540 = ~18 months)."),
    file_format: FileFormat = typer.Option(FileFormat.parquet, "--format", help="Table format."),
    overwrite: bool = typer.Option(False, help="Replace the folder if it is not empty."),
    drift_after: str | None = typer.Option(
        None,
        "--drift-after",
        help="Plant drift: leads created from this date on differ (see --drift); for trying monitoring.",
    ),
    drift: str = typer.Option(
        "source_mix,conversion,behaviour",
        "--drift",
        help="Which drifts, comma-separated: source_mix (more leads from weak sources), conversion (a third of the win rate), behaviour (fewer marketing traces for the same intent).",
    ),
    contacts_per_account: float | None = typer.Option(
        None,
        "--contacts-per-account",
        min=1.0,
        help="Group leads into accounts (buying groups) of this many contacts on average, with an account_id column; contacts share the company and part of their buying interest (default: no accounts).",
    ),
    lead_status: bool = typer.Option(
        False,
        "--lead-status",
        help="Also write lead_status: what sales did with each lead it worked (Working - Contacted, then Qualified, or Unqualified with a reason); the other files stay those of the same seed without it.",
    ),
) -> None:
    """Simulate a B2B CRM (leads, activities, deals) and its hidden truth (truth.csv)."""
    from pydantic import ValidationError

    from leadscore.crm.contract import format_validation_error
    from leadscore.simulation.config import AccountsConfig, SimulationConfig
    from leadscore.simulation.simulator import simulate as run_simulation

    try:
        accounts = (
            AccountsConfig(contacts_mean=contacts_per_account)
            if contacts_per_account is not None
            else None
        )
        config = SimulationConfig(
            n_leads=leads,
            seed=seed,
            start=start,
            days=days,
            format=file_format.value,
            drift_after=drift_after,
            drift=tuple(k.strip() for k in drift.split(",") if k.strip()),
            accounts=accounts,
            lead_status=lead_status,
        )
    except ValidationError as exc:
        raise LeadscoreError(f"simulate: {format_validation_error(exc)}") from exc
    with step(f"simulating {leads:,} leads"):
        counts = run_simulation(config, out_dir, overwrite=overwrite)
    out.print(
        f"wrote {counts['leads']:,} leads, {counts['activities']:,} activities, "
        f"{counts['deals']:,} deals"
        + (f", {counts['lead_status']:,} lead statuses" if "lead_status" in counts else "")
        + f" to {out_dir}"
    )


def features(
    data: Path = typer.Option(..., "--data", help="Dataset folder."),
    out_file: Path = typer.Option(..., "--out", help="Training set to write (.parquet)."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Feature config YAML (default: conf/features.yaml of the working folder, else the package's).",
    ),
    data_end: str | None = typer.Option(
        None, "--data-end", help="End of observation (ISO-8601); default: latest timestamp."
    ),
    early_events: EarlyEvents | None = typer.Option(
        None, help="Events before their lead was created: error or drop."
    ),
    engine: Engine = typer.Option(Engine.duckdb, "--engine", help=ENGINE_HELP),
    spark_master: str | None = typer.Option(None, "--spark-master", help=SPARK_MASTER_HELP),
) -> None:
    """Build the labelled point-in-time training set (one row per lead and snapshot); `leadscore train --training-set` trains on it."""
    import pandas as pd

    from leadscore.features.batch import training_set_chunks
    from leadscore.features.config import load_feature_config
    from leadscore.features.training_set import write_training_set
    from leadscore.jobs.project import config_path

    feature_config = load_feature_config(config_path("features", config))
    end = None
    if data_end is not None:
        try:
            end = pd.Timestamp(data_end)
        except ValueError as exc:
            raise LeadscoreError(f"--data-end: not an ISO-8601 timestamp ({data_end!r})") from exc
    policy = early_events.value if early_events else None
    if engine == Engine.spark:
        from leadscore.features.spark_engine import spark_training_set

        history = spark_history(data, spark_master, early_events=policy)
        with step("building the point-in-time training set on Spark"):
            df, spec, stats = spark_training_set(history, feature_config, data_end=end)
        history.close()
        chunks = iter([df])
    else:
        ds = load(data, early_events=policy)
        spec, stats, chunks = training_set_chunks(ds, feature_config, data_end=end)
    if not stats["snapshots"]:
        raise LeadscoreError(
            f"{data}: no snapshot survives (all censored or closed); {stats}. "
            "Is the data shorter than the horizon? Try a shorter horizon_days or a later --data-end."
        )
    with step("building the point-in-time training set"):
        # Chunk by chunk into the file: the whole set is never in memory.
        write_training_set(chunks, spec, stats, out_file)
    out.print(
        f"wrote {stats['snapshots']:,} snapshots of {stats['leads']:,} leads, "
        f"{len(spec.feature_names)} features ({spec.version}) to {out_file}"
    )
    out.print(
        f"positives {stats['positives']:,} ({stats['positives'] / stats['snapshots']:.1%}); "
        f"dropped {stats['dropped_censored']:,} censored and {stats['dropped_closed']:,} already-closed snapshots"
    )
