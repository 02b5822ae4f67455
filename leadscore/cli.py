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
# Piped or captured output (CI logs, scripts) gets room for the tables instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


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
def train(
    data: Path = typer.Option(
        ...,
        "--data",
        help="Dataset folder (also used for example payloads and the champion comparison).",
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Training config YAML (default: built-in defaults)."
    ),
    features_config: Path | None = typer.Option(
        None, "--features-config", help="Feature config YAML."
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", help="MLflow experiment (default from the config)."
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="Registered model name (default lead-scoring)."
    ),
    training_set: Path | None = typer.Option(
        None, "--training-set", help="Use this training set instead of building one."
    ),
    allow_leaky: bool = typer.Option(
        False, "--allow-leaky", help="Keep features the leakage audit would exclude."
    ),
    rules: Path | None = typer.Option(
        None,
        "--rules",
        help="Points rules YAML scored next to the model (default: conf/rules.yaml when it fits the data).",
    ),
) -> None:
    """Train, calibrate and evaluate out of time; compare with the points rules; log to
    MLflow (with the comparison report); register; champion/challenger."""
    run_training(
        data, config, features_config, experiment, model_name, training_set, allow_leaky, rules
    )


def run_training(
    data,
    config,
    features_config,
    experiment,
    model_name,
    training_set,
    allow_leaky,
    rules_path=None,
    show_comparison=True,
):
    """`leadscore train`, callable from the demo: returns (TrainResult, RunOutcome,
    Comparison or None)."""
    import tempfile

    import pandas as pd

    from features.batch import build_training_set
    from features.config import load_feature_config
    from features.loading import load_dataset
    from features.payloads import lead_payloads
    from features.training_set import read_training_set
    from training.config import load_train_config
    from training.fit import fit_models
    from training.tracking import log_and_register

    train_config = load_train_config(config)
    updates = {k: v for k, v in {"experiment": experiment, "model_name": model_name}.items() if v}
    train_config = train_config.model_copy(update=updates)
    feature_config = load_feature_config(features_config)
    ds = load_dataset(data)
    if training_set is not None:
        df, spec, stats = read_training_set(training_set)
    else:
        df, spec, stats = build_training_set(ds, feature_config)
    end = pd.Timestamp(stats["data_end"]) if stats.get("data_end") else None
    references = {}
    if (Path(data) / "truth.csv").is_file():
        from simulation.oracle import oracle_probability, read_truth

        truth = read_truth(data)
        references["oracle"] = lambda test: oracle_probability(
            truth, test["lead_id"].to_numpy(), test["as_of"].to_numpy(), spec.horizon_days
        )
    result = fit_models(
        df,
        spec,
        train_config,
        declared_leaky=ds.spec.columns.leaky,
        allow_leaky=allow_leaky,
        references=references,
        info={"source": str(data)},
    )
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    comparison = _compare_for_training(ds, result, df, train_config, rules_path)
    example_ids = result.test["lead_id"].drop_duplicates().head(2).tolist()
    with tempfile.TemporaryDirectory(prefix="leadscore-report-") as tmp:
        report_dir = None
        if comparison is not None:
            from training.report import write_report

            write_report(comparison, Path(tmp) / "compare.html")
            report_dir = Path(tmp)
        outcome = log_and_register(
            result,
            config=train_config,
            feature_config=feature_config.model_dump(),
            training_set=df,
            source=str(data),
            example_payloads=lead_payloads(ds, example_ids, iso=True),
            features_for=lambda other: build_training_set(ds, spec=other, data_end=end)[0],
            report_dir=report_dir,
        )
    print_training(result, outcome, train_config.model_name)
    if comparison is not None and show_comparison:
        print_comparison(comparison)
    return result, outcome, comparison


def _compare_for_training(ds, result, df, train_config, rules_path):
    """The rules next to the new model (their calibration is packed with it, so that the
    endpoint returns rule scores too); None when no rules apply to this dataset."""
    from features.rules import load_rules
    from training.report import compare

    path = rules_path or default_rules_path()
    if path is None:
        err.print("[yellow]warning:[/yellow] no rules file: no comparison report (see --rules)")
        return None
    rules = load_rules(path)
    try:
        comparison = compare(
            ds,
            result.scorer,
            rules,
            train_config,
            training_set=df,
            model_label="this run",
            bootstrap=train_config.bootstrap,
            rules_file=str(path),
        )
    except LeadscoreError as exc:
        if rules_path is not None:  # rules asked for explicitly: their error is the user's
            raise
        err.print(
            f"[yellow]warning:[/yellow] default rules skipped ({exc}); pass --rules for this dataset",
            highlight=False,
        )
        return None
    for warning in comparison.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    result.scorer.rules = comparison.rule_scorer
    return comparison


def default_rules_path() -> Path | None:
    """conf/rules.yaml of the working folder, else of the source checkout."""
    import features

    for base in (Path.cwd(), Path(features.__file__).resolve().parent.parent):
        if (base / "conf" / "rules.yaml").is_file():
            return base / "conf" / "rules.yaml"
    return None


def print_comparison(comp, html_path: Path | None = None) -> None:
    """The report's headline and capacity-matched tables on the console."""
    from training.report import SCORERS

    table = Table(title="model vs points rules (out-of-time test)", show_edge=False)
    for col in (
        "scorer",
        "ROC AUC [95% CI]",
        "PR AUC [95% CI]",
        "Brier [95% CI]",
        "lift top 10% [95% CI]",
    ):
        table.add_column(col, justify="right")
    for r in comp.headline.itertuples():
        table.add_row(
            SCORERS[r.scorer],
            f"{r.roc_auc:.3f} [{r.roc_auc_low:.3f}, {r.roc_auc_high:.3f}]",
            f"{r.pr_auc:.3f} [{r.pr_auc_low:.3f}, {r.pr_auc_high:.3f}]",
            f"{r.brier:.4f} [{r.brier_low:.4f}, {r.brier_high:.4f}]",
            f"{r.lift_top_decile:.2f} [{r.lift_top_decile_low:.2f}, {r.lift_top_decile_high:.2f}]",
        )
    out.print(table)
    cap = Table(
        title="capacity-matched: as many leads to sales as the rules' MQLs", show_edge=False
    )
    for col in ("handed to sales", "leads", "wins", "win rate", "share of wins", "revenue"):
        cap.add_column(col, justify="right")
    for r in comp.capacity.to_dict("records"):
        cap.add_row(
            r["handed to sales"],
            f"{r['leads']:,}",
            f"{r['wins']:,}",
            f"{r['win_rate']:.1%}" if r["leads"] else "-",
            f"{r['share_of_all_wins']:.1%}",
            f"{r['revenue']:,.0f}" if r["revenue"] == r["revenue"] else "-",  # NaN: no amounts
        )
    out.print(cap)
    if html_path is not None:
        out.print(f"report: {html_path} (rows: {html_path.with_suffix('.csv')})")


def print_training(result, outcome, model_name: str) -> None:
    split = result.split
    out.print(
        f"train {int(split.train.sum()):,} / validation {int(split.validation.sum()):,} / test {int(split.test.sum()):,} snapshots "
        f"(test from {split.test_start.date()}; {split.purged:,} train snapshots purged: label window not closed "
        f"before validation); calibration: {result.calibration['method']}; {result.params['features_used']} features, "
        f"{result.params['best_iteration']} rounds"
    )
    table = Table(title="out-of-time test", show_edge=False)
    for col in (
        "scorer",
        "ROC AUC [95% CI]",
        "PR AUC",
        "Brier",
        "log loss",
        "ECE",
        "lift top 10%",
        "capture top 10%",
    ):
        table.add_column(col, justify="right")
    for name, m in result.metrics.items():
        low, high = m["roc_auc_ci"]
        table.add_row(
            name,
            f"{m['roc_auc']:.3f} [{low:.3f}, {high:.3f}]",
            f"{m['pr_auc']:.3f}",
            f"{m['brier']:.4f}",
            f"{m['log_loss']:.4f}",
            f"{m['ece']:.4f}",
            f"{m['lift_top_decile']:.2f}",
            f"{m['capture_top_decile']:.1%}",
        )
    out.print(table)
    if len(result.by_age):
        by_age = Table(title="test ROC AUC by lead age", show_edge=False)
        for col in result.by_age.columns:
            by_age.add_column(str(col), justify="right")
        for row in result.by_age.itertuples(index=False):
            by_age.add_row(
                *[
                    f"{v:.3f}" if isinstance(v, float) and not float(v).is_integer() else str(v)
                    for v in row
                ]
            )
        out.print(by_age)
    verdict = "champion" if outcome.promoted else "challenger only"
    out.print(
        f"registered {model_name} v{outcome.version} ({verdict}: {outcome.reason}); MLflow run {outcome.run_id}"
    )


@app.command()
def compare(
    data: Path = typer.Option(..., "--data", help="Dataset folder."),
    model: str = typer.Option(
        "models:/lead-scoring@champion",
        "--model",
        help="models:/<name>@<alias>, models:/<name>/<version>, or a saved scorer folder.",
    ),
    rules: Path | None = typer.Option(
        None, "--rules", help="Points rules YAML (default: conf/rules.yaml)."
    ),
    report: Path = typer.Option(Path("reports/compare.html"), "--out", help="HTML report path."),
    config: Path | None = typer.Option(
        None, "--config", help="Training config YAML (test and validation periods)."
    ),
    learned: bool = typer.Option(
        True, "--learned/--no-learned", help="Also fit and show learned points."
    ),
) -> None:
    """Marketing report: the model vs the points rules on the same out-of-time leads (HTML + CSV)."""
    from features.loading import load_dataset
    from features.mlflow_model import load_scorer
    from features.rules import load_rules
    from training.config import load_train_config
    from training.report import compare as run_compare
    from training.report import write_report

    path = rules or default_rules_path()
    if path is None:
        raise LeadscoreError("no rules file: pass --rules RULES.yaml")
    rules_config = load_rules(path)
    scorer = load_scorer(model)
    ds = load_dataset(data)
    train_config = load_train_config(config)
    comp = run_compare(
        ds,
        scorer,
        rules_config,
        train_config,
        learned=learned,
        model_label=model,
        bootstrap=train_config.bootstrap,
        rules_file=str(path),
    )
    for warning in comp.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    html_path, _ = write_report(comp, report)
    print_comparison(comp, html_path)


import_app = typer.Typer(
    help="Import a CRM export or a public dataset into a dataset folder.", no_args_is_help=True
)
app.add_typer(import_app, name="import")


@import_app.command("csv")
def import_csv(
    leads: Path = typer.Option(..., "--leads", help="The export's leads (or contacts) CSV."),
    activities: Path | None = typer.Option(None, "--activities", help="Activities CSV."),
    deals: Path | None = typer.Option(None, "--deals", help="Deals (opportunities) CSV."),
    mapping: Path = typer.Option(
        ..., "--mapping", help="Mapping YAML: columns, values, dates, outcome, leaky columns."
    ),
    out_dir: Path = typer.Option(..., "--out", help="Dataset folder to write."),
    file_format: FileFormat = typer.Option(FileFormat.parquet, "--format", help="Table format."),
    overwrite: bool = typer.Option(False, help="Replace the folder if it is not empty."),
) -> None:
    """Map a CRM export's columns, values and dates into the data contract, validate it,
    and write a dataset folder (nothing is written when it does not validate)."""
    from features.mapping import load_mapping

    _run_import(
        load_mapping(mapping),
        mapping.name,
        leads=leads,
        activities=activities,
        deals=deals,
        out_dir=out_dir,
        file_format=file_format,
        overwrite=overwrite,
    )


@import_app.command("xeducation")
def import_xeducation(
    leads: Path = typer.Argument(..., help="X Education's Leads.csv."),
    out_dir: Path = typer.Option(..., "--out", help="Dataset folder to write."),
    file_format: FileFormat = typer.Option(FileFormat.parquet, "--format", help="Table format."),
    overwrite: bool = typer.Option(False, help="Replace the folder if it is not empty."),
) -> None:
    """Import the public X Education leads export with its built-in mapping ('Select' is
    missing, Lead Number is the time order, the sales-entered columns are declared leaky)."""
    from features.mapping import builtin_mapping_path, load_mapping

    path = builtin_mapping_path("xeducation")
    _run_import(
        load_mapping(path),
        "the built-in xeducation mapping",
        leads=leads,
        out_dir=out_dir,
        file_format=file_format,
        overwrite=overwrite,
    )
    out.print(f"next: leadscore train --data {out_dir} --rules conf/xeducation/rules.yaml")


def _run_import(mapping, mapping_name, *, file_format, **paths_and_options) -> None:
    """Import with `features.mapping.import_tables`; print the renames and the summary."""
    from features.mapping import import_tables
    from features.summary import summarize_dataset

    result = import_tables(
        mapping, file_format=file_format.value, mapping_file=mapping_name, **paths_and_options
    )
    for table, names in result.columns.items():
        renamed = {k: v for k, v in names.items() if k != v}
        if renamed:
            out.print(
                f"{table}: " + ", ".join(f"{k!r} -> {v}" for k, v in renamed.items()),
                highlight=False,
            )
    print_summary(summarize_dataset(result.dataset))
    out.print(f"wrote {result.dataset.path}")


rules_app = typer.Typer(help="Points rules: learn a scorecard from data.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("suggest")
def rules_suggest(
    data: Path = typer.Option(..., "--data", help="Dataset folder."),
    out_path: Path = typer.Option(
        Path("conf/rules.suggested.yaml"), "--out", help="Where to write the suggested rules."
    ),
    max_rules: int = typer.Option(30, "--max-rules", min=1, help="At most this many point items."),
    mql_share: float = typer.Option(
        0.15, "--mql-share", min=0.001, max=0.999, help="Share of leads reaching the MQL threshold."
    ),
    config: Path | None = typer.Option(None, "--config", help="Training config YAML."),
    features_config: Path | None = typer.Option(None, "--features-config"),
) -> None:
    """Fit a small, sparse points scorecard (L1 logistic regression on binned features,
    rounded to whole points) in the rules' YAML format, for marketing to read and edit."""
    from sklearn.metrics import roc_auc_score

    from features.batch import build_training_set
    from features.config import load_feature_config
    from features.loading import load_dataset
    from features.rules import RuleScorer, batch_rule_inputs
    from training.config import load_train_config
    from training.scorecard import suggest_rules
    from training.splits import split_training_set

    train_config = load_train_config(config)
    ds = load_dataset(data)
    df, spec, _ = build_training_set(ds, load_feature_config(features_config))
    split = split_training_set(df, spec, train_config)
    train, val, test = df[split.train], df[split.validation], df[split.test]
    s = suggest_rules(
        ds, train, val, max_rules=max_rules, mql_share=mql_share, seed=train_config.seed
    )
    lines = [
        f"# Suggested by `leadscore rules suggest` from {data} ({len(train):,} train rows).",
        f"# {s.nonzero} point items (L1 strength C={s.c:.4g}); validation ROC AUC {s.validation_auc:.3f}.",
    ]
    if len(test) and test["label"].nunique() == 2:
        x = batch_rule_inputs(s.rules, ds, test["lead_id"], test["as_of"])
        auc = roc_auc_score(test["label"], RuleScorer(s.rules).rule_scores(x))
        lines.append(f"# Out-of-time test ROC AUC {auc:.3f} on {len(test):,} rows.")
    lines.append("# Edit freely: this is the same format as conf/rules.yaml.")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n" + s.rules.to_yaml())
    out.print("\n".join(line[2:] for line in lines[1:-1]))
    out.print(f"wrote {out_path}")


@app.command()
def models(model_name: str = typer.Option("lead-scoring", "--model-name")) -> None:
    """List registered model versions with their aliases and test metrics."""
    from training.tracking import list_versions

    rows = list_versions(model_name)
    if not rows:
        raise LeadscoreError(
            f"no registered versions of {model_name!r} (train one with `leadscore train`)"
        )
    table = Table(show_edge=False)
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*[str(v) for v in row.values()])
    out.print(table)


@app.command()
def promote(
    version: str = typer.Argument(..., help="Version to make champion."),
    model_name: str = typer.Option("lead-scoring", "--model-name"),
) -> None:
    """Move the `champion` alias to a version explicitly."""
    from training.tracking import promote as promote_version

    promote_version(model_name, version)
    out.print(f"{model_name} v{version} is now champion")


@app.command()
def serve(
    port: int = typer.Option(3000, "--port", min=1, max=65535),
    host: str = typer.Option("127.0.0.1", "--host", help="0.0.0.0 to accept other machines."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Worker processes (default: cores + 1; one more than the cores keeps the CPU "
        "busy while a worker waits on Python's lock).",
    ),
) -> None:
    """Serve the champion model over HTTP (BentoML): POST /score, GET /metadata."""
    import os
    import subprocess

    from serving.config import ServeConfig
    from serving.process import default_workers, serve_command, workers_env

    if not ServeConfig.from_env().api_keys:
        raise LeadscoreError(
            "LEADSCORE_API_KEYS is empty: set one or more API keys (comma-separated) before serving"
        )
    workers = workers or default_workers()
    err.print(f"serving on http://{host}:{port} with {workers} workers")
    env = {**os.environ, **workers_env(workers)}
    sys.exit(subprocess.call(serve_command(host, port), env=env))


@app.command()
def bento(
    model_name: str = typer.Option("lead-scoring", "--model-name"),
    alias: str = typer.Option("champion", "--alias"),
) -> None:
    """Pack a registered model into a bento: BentoML model store, then `bentoml build`."""
    import os
    import subprocess

    import serving
    from serving.model import export_to_bentoml

    tag = export_to_bentoml(model_name, alias)
    out.print(f"exported {model_name}@{alias} to the BentoML model store as {tag}")
    root = Path(serving.__file__).resolve().parent.parent
    if not (root / "bentofile.yaml").is_file():
        raise LeadscoreError(f"{root}: no bentofile.yaml (run from a source checkout)")
    env = {**os.environ, "LEADSCORE_PACKED_MODEL": tag}
    code = subprocess.call([sys.executable, "-m", "bentoml", "build", "."], env=env, cwd=root)
    if code:
        raise LeadscoreError(f"bentoml build failed (exit {code})")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo"), "--out", help="Working folder of the demo."),
    leads: int = typer.Option(20_000, "--leads", min=100, help="Simulated leads."),
    seed: int = typer.Option(42, "--seed", min=0),
) -> None:
    """The main job end to end on embedded defaults: simulate a CRM, validate, build
    features, train, serve, and report the model against the points rules."""
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
    out.rule("4. train, calibrate, evaluate out of time; MLflow")
    result, _, comparison = run_training(
        data, None, None, None, None, path, False, show_comparison=False
    )
    out.rule("5. serve the champion (BentoML) and score a few leads")
    serve_demo(ds, result, out_dir)
    if comparison is not None:
        from training.report import write_report

        out.rule("6. the marketing report: model vs points rules")
        html_path, _ = write_report(comparison, out_dir / "reports" / "compare.html")
        print_comparison(comparison, html_path)


def serve_demo(ds, result, out_dir: Path) -> None:
    """Start the real server with a fresh API key, score three leads, show a curl, stop."""
    import json
    import secrets

    import httpx
    import mlflow

    from features.payloads import lead_payloads
    from serving.process import Server

    key = secrets.token_urlsafe(24)
    # The best, a middling and the weakest lead of the test set, each at its own as_of,
    # with what the CRM knew then.
    ranked = result.test.sort_values("p_model", ascending=False).reset_index(drop=True)
    picks = ranked.iloc[[0, len(ranked) // 2, len(ranked) - 1]]
    payloads = {p["lead_id"]: p for p in lead_payloads(ds, picks["lead_id"], iso=True)}
    bodies = []
    for row in picks.itertuples():
        when = row.as_of.isoformat()
        lead = payloads[row.lead_id]
        lead = {
            **lead,
            "activities": [a for a in lead["activities"] if a["occurred_at"] <= when],
            "deals": [d for d in lead["deals"] if d["created_at"] <= when],
        }
        bodies.append({"leads": [lead], "as_of": when})
    request_path = out_dir / "score_request.json"
    request_path.parent.mkdir(parents=True, exist_ok=True)
    request_path.write_text(json.dumps(bodies[0]))
    with Server(
        env={"LEADSCORE_API_KEYS": key, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
    ) as server:
        for body in bodies:
            response = httpx.post(
                f"{server.base}/score",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            response.raise_for_status()
            s = response.json()["scores"][0]
            up = "; ".join(r["text"] for r in s["reasons"]["positive"][:2]) or "-"
            down = "; ".join(r["text"] for r in s["reasons"]["negative"][:2]) or "-"
            rules = (
                f"; rules: {s['rule_score']} points, grade {s['rule_grade']}, {'MQL' if s['mql'] else 'not MQL'}"
                if s.get("rule_score") is not None
                else ""
            )
            out.print(
                f"{s['lead_id']} at {body['as_of'][:10]}: p={s['probability']:.3f}, score {s['score']}, grade {s['grade']} "
                f"(model v{s['model']['version']}){rules}\n    up: {up}\n    down: {down}"
            )
        out.print(
            f"server was at {server.base}; try it yourself with `LEADSCORE_API_KEYS={key} leadscore serve --port 3000` and:"
        )
        out.print(
            f"curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
            f"-d @{request_path} http://127.0.0.1:3000/score",
            soft_wrap=True,
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
    if s.get("time_order"):
        out.print(
            f"[yellow]created_at is synthetic: the export has no dates; leads follow the order "
            f"of {s['time_order']!r}[/yellow]"
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
