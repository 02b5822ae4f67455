"""`leadscore train`: fit, calibrate, evaluate out of time, compare with the rules, log and register."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from leadscore.commands.compare import print_backtest, print_comparison
from leadscore.console import out, progress

# Options `train` and `retrain` share (one declaration each, reused as defaults).
CONFIG = typer.Option(
    None,
    "--config",
    help="Training config YAML (default: conf/train.yaml of the working folder, else the package's).",
)
FEATURES_CONFIG = typer.Option(
    None,
    "--features-config",
    help="Feature config YAML (default: conf/features.yaml of the working folder, else the package's).",
)
EXPERIMENT = typer.Option(None, "--experiment", help="MLflow experiment (default from the config).")
MODEL_NAME = typer.Option(
    None, "--model-name", help="Registered model name (default lead-scoring)."
)
RULES = typer.Option(
    None,
    "--rules",
    help="Points rules YAML scored next to the model (default: the dataset's rules.yaml, else conf/rules.yaml of the working folder or the package's, when it fits the data).",
)


def train(
    data: Path = typer.Option(
        ...,
        "--data",
        help="Dataset folder (also used for example payloads and the champion comparison).",
    ),
    config: Path | None = CONFIG,
    features_config: Path | None = FEATURES_CONFIG,
    experiment: str | None = EXPERIMENT,
    model_name: str | None = MODEL_NAME,
    training_set: Path | None = typer.Option(
        None, "--training-set", help="Use this training set instead of building one."
    ),
    allow_leaky: bool = typer.Option(
        False, "--allow-leaky", help="Keep features the leakage audit would exclude."
    ),
    rules: Path | None = RULES,
) -> None:
    """Train, calibrate and evaluate out of time; compare with the points rules; log to MLflow (with the comparison report); register; champion/challenger."""
    from leadscore.jobs.train import TrainRequest
    from leadscore.jobs.train import train as train_job

    request = TrainRequest(
        data=data, config=config, features_config=features_config, experiment=experiment,
        model_name=model_name, training_set=training_set, allow_leaky=allow_leaky, rules=rules,
    )  # fmt: skip
    training = train_job(request, progress)
    print_training(training.result, training.outcome, training.config.model_name)
    if training.comparison is not None:
        print_comparison(training.comparison)


def print_training(result, outcome, model_name: str) -> None:
    split = result.split
    out.print(
        f"train {int(split.train.sum()):,} / validation {int(split.validation.sum()):,} / test {int(split.test.sum()):,} snapshots "
        f"(test from {split.test_start.date()}; {split.purged:,} train snapshots purged: label window not closed "
        f"before validation); calibration: {result.calibration['method']}; {result.params['features_used']} features, "
        f"{result.params['best_iteration']} rounds"
    )
    segments = result.scorer.segments
    if segments is not None and segments.evidence:
        shares = [e["weight"] for e in segments.evidence.values()]
        out.print(
            f"calibrated per {segments.column}: {len(shares)} segments, each keeping "
            f"{min(shares):.0%}-{max(shares):.0%} of its own correction (the rest: the global "
            "calibration; the report judges each segment)"
        )
    if result.segment_champions is not None:
        print_segment_champions(result.segment_champions)
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
    if result.backtest is not None:
        print_backtest(result.backtest)
    if result.shipped is not None:
        s = result.shipped
        out.print(
            "these figures describe the evaluated procedure (trained before "
            f"{split.validation_start.date()}, tested from {split.test_start.date()}); the model "
            f"that ships is refit on every matured snapshot: {s['rows']:,} snapshots "
            f"({s['leads_won']:,} won leads), {s['first_as_of'][:10]} to {s['last_as_of'][:10]}, "
            f"{s['rounds']} rounds, calibrated ({s['calibration']['method']}) by "
            f"{s['calibration']['fitted_by']}"
        )
    if len(result.by_age):
        by_age = Table(title="test ROC AUC by lead age", show_edge=False)
        for col in result.by_age.columns:
            by_age.add_column(str(col), justify="right")
        for row in result.by_age.to_dict("records"):
            by_age.add_row(
                f"{row.pop('age_days'):g}",  # 0, 3, 7 ... (an age of 0.5 days stays 0.5)
                f"{row.pop('rows'):,}",
                *[f"{v:.3f}" for v in row.values()],
            )
        out.print(by_age)
    if result.accounts is not None:
        print_accounts(result.accounts)
    verdict = "champion" if outcome.promoted else "challenger only"
    out.print(
        f"registered {model_name} v{outcome.version} ({verdict}: {outcome.reason}); MLflow run {outcome.run_id}"
    )


def print_segment_champions(champions) -> None:
    """The gate per segment: who serves each segment, and why."""
    table = Table(title=f"who serves each {champions.column}", show_edge=False)
    for col in (
        "segment",
        "rows",
        "train wins",
        "AUC shared / own",
        "log loss own - shared",
        "served by",
    ):
        table.add_column(col, justify="right")
    for r in champions.table.to_dict("records"):
        gated = "own_auc" in r and r["own_auc"] == r["own_auc"]
        table.add_row(
            r["segment"], f"{r['rows']:,}", f"{r['train_wins']:,}",
            f"{r['shared_auc']:.3f} / {r['own_auc']:.3f}" if gated else "-",
            r["log_loss_difference"] if gated else "-",
            f"{r['served_by']} ({r['why']})",
        )  # fmt: skip
    out.print(table)
    out.print(
        "the test figures below are the routed model's: each segment scored by the model that serves it"
        if champions.shipped
        else "no segment is surely better served by its own model: the shared model serves them all"
    )


def print_accounts(accounts) -> None:
    """The account model on its test accounts, next to what a team does without it."""
    from leadscore.training.accounts import ACCOUNT_SCORERS

    s = accounts.split
    table = Table(
        title=f"accounts: out-of-time test ({s['test_rows']:,} account snapshots, "
        f"{s['test_positives']:,} won)",
        show_edge=False,
    )
    for col in ("account scorer", "ROC AUC [95% CI]", "PR AUC", "Brier", "ECE"):
        table.add_column(col, justify="right")
    for name, m in accounts.metrics.items():
        low, high = m["roc_auc_ci"]
        table.add_row(
            ACCOUNT_SCORERS.get(name, name),
            f"{m['roc_auc']:.3f} [{low:.3f}, {high:.3f}]",
            f"{m['pr_auc']:.3f}",
            f"{m['brier']:.4f}",
            f"{m['ece']:.4f}",
        )
    out.print(table)
    if len(accounts.capacity):
        rules, model = accounts.capacity.iloc[0], accounts.capacity.iloc[1]
        out.print(
            f"accounts handed to sales: the rules (a contact at the MQL threshold) hand "
            f"{rules['accounts']:,.0f} test accounts over, {rules['wins']:,.0f} of which won; "
            f"the account model's top {model['accounts']:,.0f}: {model['wins']:,.0f} won"
        )


# `leadscore retrain`'s exit codes, for a scheduler (1 stays a user mistake, as everywhere).
PROMOTED, KEPT_NOT_BETTER, KEPT_UNTRUSTED = 0, 3, 4


def retrain(
    data: Path = typer.Option(..., "--data", help="Dataset folder: the CRM export as of today."),
    config: Path | None = CONFIG,
    features_config: Path | None = FEATURES_CONFIG,
    experiment: str | None = EXPERIMENT,
    model_name: str | None = MODEL_NAME,
    rules: Path | None = RULES,
) -> None:
    """For a scheduler: train on today's data, gate, and promote. The new version becomes champion only when it is trusted and the champion gate finds it not surely worse than the champion on the same rows (every backtest origin's rows the champion had not seen). Exit codes: 0 promoted; 3 registered as challenger, the champion stays (surely worse, or no different); 4 registered, not promoted (do not trust this model); 1 a mistake in the input (nothing registered); any other code: the run failed, and no alias moved."""
    from leadscore.jobs.train import TrainRequest
    from leadscore.jobs.train import retrain as retrain_job

    request = TrainRequest(
        data=data, config=config, features_config=features_config, experiment=experiment,
        model_name=model_name, rules=rules,
    )  # fmt: skip
    done = retrain_job(request, progress)
    training = done.training
    print_training(training.result, training.outcome, training.config.model_name)
    if done.kept is None:
        return
    out.print(f"the champion stays ({done.kept}): exit {_KEPT[done.kept]}")
    raise typer.Exit(_KEPT[done.kept])


_KEPT = {"not better": KEPT_NOT_BETTER, "untrusted": KEPT_UNTRUSTED}
