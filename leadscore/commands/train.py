"""`leadscore train`: fit, calibrate, evaluate out of time, compare with the rules, log and register."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table

from leadscore.commands.compare import print_comparison, resolve_rules
from leadscore.console import alarm, load, out, step, warn

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
    require_trusted=False,
):
    """`leadscore train`, callable from the demo and `retrain`: returns (TrainResult,
    RunOutcome, Comparison or None). `require_trusted`: never promote a model with a
    "do not trust" banner."""
    import pandas as pd

    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.batch import build_training_set
    from leadscore.features.config import load_feature_config
    from leadscore.features.training_set import read_training_set
    from leadscore.project import config_path
    from leadscore.training.backtest import walk_forward
    from leadscore.training.config import load_train_config
    from leadscore.training.fit import fit_models
    from leadscore.training.refit import ship
    from leadscore.training.run_log import rules_metrics
    from leadscore.training.scratch import scratch_dir
    from leadscore.training.tracking import log_and_register

    train_config = load_train_config(config_path("train", config))
    updates = {k: v for k, v in {"experiment": experiment, "model_name": model_name}.items() if v}
    train_config = train_config.model_copy(update=updates)
    feature_config = load_feature_config(config_path("features", features_config))
    ds = load(data)
    with step("building the point-in-time training set"):
        if training_set is not None:
            df, spec, stats = read_training_set(training_set)
        else:
            df, spec, stats = build_training_set(ds, feature_config)
    end = pd.Timestamp(stats["data_end"]) if stats.get("data_end") else None
    references = {}
    if (Path(data) / "truth.csv").is_file():
        from leadscore.simulation.oracle import oracle_probability, read_truth

        truth = read_truth(data)
        references["oracle"] = lambda test: oracle_probability(
            truth, test["lead_id"].to_numpy(), test["as_of"].to_numpy(), spec.horizon_days
        )
    with step("training LightGBM and the baseline, calibrating, testing") as detail:
        result = fit_models(
            df,
            spec,
            train_config,
            declared_leaky=ds.spec.columns.leaky,
            keep_columns=ds.spec.columns.keep,
            allow_leaky=allow_leaky,
            references=references,
            info={"source": str(data)},
            on_step=detail,
        )
    if train_config.backtest_origins > 1:
        with step("walk-forward backtest") as detail:
            found = resolve_rules(rules_path, ds)
            backtest = walk_forward(
                df, spec, train_config, ds, found.rules, evaluated=result, on_step=detail
            )
        result = replace(result, backtest=backtest)
        for note in backtest.notes:
            warn(note)
    if train_config.refit:
        with step("refitting the model that ships on every matured snapshot") as detail:
            result = ship(result, df, train_config, on_step=detail)
    if train_config.segments is not None and train_config.segments.champions:
        from leadscore.training.segment_champions import (
            fit_segment_champions,
            with_segment_champions,
        )

        with step("one model per segment, gated per segment") as detail:
            champions = fit_segment_champions(
                df, spec, train_config, result, declared_leaky=ds.spec.columns.leaky,
                keep_columns=ds.spec.columns.keep, allow_leaky=allow_leaky, on_step=detail,
            )  # fmt: skip
            result = with_segment_champions(result, champions, df, train_config)
    for line in result.untrusted:
        alarm(line, prefix="do not trust this model:")
    for warning in result.warnings:
        warn(warning)
    with step("comparing with the points rules"):
        comparison = _compare_for_training(ds, result, df, train_config, rules_path)
    result, comparison = _train_accounts(ds, result, comparison, train_config, data)
    example_ids = result.test["lead_id"].drop_duplicates().head(2).tolist()
    with (
        step("logging to MLflow and registering the model"),
        scratch_dir() as tmp,  # swept by a later run if this one is killed
    ):
        report_dir = None
        if comparison is not None:
            from leadscore.training.report_page import write_report

            write_report(comparison, tmp / "compare.html")
            report_dir = tmp
        outcome = log_and_register(
            result,
            config=train_config,
            feature_config=feature_config.model_dump(),
            training_set=df,
            source=str(data),
            example_payloads=lead_payloads(ds, example_ids, iso=True),
            features_for=lambda other: build_training_set(ds, spec=other, data_end=end)[0],
            report_dir=report_dir,
            data_columns=["lead_id", "source", *ds.profile_columns],
            require_trusted=require_trusted,
            rules_metrics=rules_metrics(comparison),
        )
    print_training(result, outcome, train_config.model_name)
    if comparison is not None and show_comparison:
        print_comparison(comparison)
    return result, outcome, comparison


def _train_accounts(ds, result, comparison, train_config, data):
    """The account model, when the leads have accounts and the config does not switch it
    off: fitted after the rules are packed (the account comparison reads them), carried by
    the lead scorer, and tabled in the report. A dataset too thin for it is told so and
    the lead model goes on alone."""
    if train_config.accounts is None or ds.is_flat or "account_id" not in ds.leads:
        return result, comparison
    from leadscore.crm.errors import LeadscoreError
    from leadscore.training.accounts import account_tables, fit_accounts

    references = {}
    truth_path = Path(data) / "truth.csv"
    if truth_path.is_file():
        from leadscore.simulation.oracle import account_oracle_probability, read_truth

        truth = read_truth(data)
        if "account_id" in truth:
            horizon = result.scorer.spec.horizon_days
            references["oracle"] = lambda test: account_oracle_probability(
                truth, test["account_id"].to_numpy(), test["as_of"].to_numpy(), horizon
            )
    try:
        with step("training the account model") as detail:
            accounts = fit_accounts(
                ds, result.scorer, train_config, excluded=result.leakage.excluded,
                references=references, on_step=detail,
            )  # fmt: skip
    except LeadscoreError as exc:
        warn(f"no account model: {exc}")
        return result, comparison
    for warning in accounts.warnings:
        warn(warning)
    result.scorer.accounts = accounts.scorer
    result = replace(result, accounts=accounts)
    if comparison is not None:
        meta = {**comparison.meta, "account_every_days": f"{train_config.accounts.every_days:g}"}
        comparison = replace(comparison, meta=meta, **account_tables(accounts))
    return result, comparison


def _compare_for_training(ds, result, df, train_config, rules_path):
    """Marketing's rules calibrated on the model's validation rows and packed with it (so
    that the endpoint returns rule scores too), then the model next to them and learned
    points on the training's own split; without rules that fit the data, the report is
    model vs learned points and says why."""
    from leadscore.training.fit import fit_rules
    from leadscore.training.report import compare

    found = resolve_rules(rules_path, ds)
    if found.rules is None:
        warn(f"no points rules: {found.absent}")
        result.scorer.rules = None
    else:
        result.scorer.rules = fit_rules(found.rules, ds, df[result.split.validation])
    comparison = compare(
        ds,
        result.scorer,
        found.rules,
        train_config,
        training_set=df,
        split=result.split,
        rule_scorer=result.scorer.rules,
        backtest=result.backtest,
        model_label="this run",
        bootstrap=train_config.bootstrap,
        rules_file=found.source,
        rules_absent=found.absent,
    )
    for warning in comparison.warnings:
        warn(warning)
    return comparison


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


def print_backtest(backtest) -> None:
    """The walk-forward backtest: per origin, then every origin's rows pooled, a row per
    scorer (`leadscore.training.backtest.table_rows`)."""
    from leadscore.pages.html import format_count
    from leadscore.training.backtest import table_rows
    from leadscore.training.report_tables import SCORERS

    table = Table(
        title=f"walk-forward backtest ({len(backtest.origins)} of {backtest.asked} origins)",
        show_edge=False,
    )
    for col in ("origin", "test window", "rows", "won", "scorer", "ROC AUC", "PR AUC", "ECE",
                "wins at the rules' MQLs"):  # fmt: skip
        table.add_column(col, justify="right")
    last = None
    for r in table_rows(backtest.summary()):
        first = r["origin"] != last
        last = r["origin"]
        mqls, wins = r["MQLs"], r["wins at the MQLs"]
        table.add_row(
            r["origin"] if first else "",
            r["test window"] if first else "",
            f"{r['rows']:,}" if first else "",
            f"{r['wins']:,}" if first else "",
            SCORERS[r["scorer"]],
            f"{r['ROC AUC']:.3f}",
            f"{r['PR AUC']:.3f}",
            f"{r['ECE']:.4f}",
            f"{format_count(wins)} of {format_count(mqls)}" if wins == wins else "-",
            end_section=False,
        )
    out.print(table)
    if backtest.difference is not None:
        point, low, high = backtest.difference
        out.print(
            f"pooled paired ROC AUC difference, model - rules: {point:+.3f} [{low:+.3f}, "
            f"{high:+.3f}] (bootstrap over leads across every origin's rows)"
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
    _, outcome, _ = run_training(
        data,
        config,
        features_config,
        experiment,
        model_name,
        None,
        False,
        rules,
        show_comparison=False,
        require_trusted=True,
    )
    if outcome.promoted:
        return
    out.print(f"the champion stays ({outcome.kept}): exit {_KEPT[outcome.kept]}")
    raise typer.Exit(_KEPT[outcome.kept])


_KEPT = {"not better": KEPT_NOT_BETTER, "untrusted": KEPT_UNTRUSTED}
