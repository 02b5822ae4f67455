"""The training job: build the point-in-time training set, fit and calibrate, backtest, refit
the model that ships, pack the points rules and the account model with it, compare with
the rules, log to MLflow and register, gate and promote. `leadscore train`, `retrain`, the
demo, the notebooks and the tests run this one sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.features.config import FeatureConfig
from leadscore.jobs.data import load
from leadscore.jobs.progress import Progress, Recorded
from leadscore.jobs.project import config_path, resolve_rules

if TYPE_CHECKING:  # imported where used: importing the jobs (`score`, `monitor`) loads no training
    from leadscore.training.config import TrainConfig


@dataclass(frozen=True)
class TrainRequest:
    """What to train on and how.

    data: the dataset folder (also the example payloads and the champion's comparison).
    config / features_config: a YAML path, a config object, or None (the lookup order of
        `leadscore.jobs.project`: conf/ of the working folder, else the package's).
    experiment / model_name: override the training config's.
    training_set: a training-set file to use instead of building one.
    allow_leaky: keep features the leakage audit would exclude.
    rules: a points-rules YAML (default: the dataset's rules.yaml, else conf/rules.yaml when
        it fits the data).
    require_trusted: never promote a model with a "do not trust" banner (`retrain`).
    """

    data: Path
    config: Path | TrainConfig | None = None
    features_config: Path | FeatureConfig | None = None
    experiment: str | None = None
    model_name: str | None = None
    training_set: Path | None = None
    allow_leaky: bool = False
    rules: Path | None = None
    require_trusted: bool = False

    def train_config(self) -> TrainConfig:
        from leadscore.training.config import TrainConfig, load_train_config

        config = (
            self.config
            if isinstance(self.config, TrainConfig)
            else load_train_config(config_path("train", self.config))
        )
        updates = {"experiment": self.experiment, "model_name": self.model_name}
        return config.model_copy(update={k: v for k, v in updates.items() if v})

    def feature_config(self) -> FeatureConfig:
        from leadscore.features.config import load_feature_config

        if isinstance(self.features_config, FeatureConfig):
            return self.features_config
        return load_feature_config(config_path("features", self.features_config))


@dataclass(frozen=True)
class Training:
    """A training run: what was fitted (`TrainResult`, its scorer complete with the rules
    and the account model), what the registry did (`RunOutcome`), the comparison with the
    rules (`Comparison`, None without one) and the config it ran with."""

    result: Any
    outcome: Any
    comparison: Any
    config: TrainConfig


def train(request: TrainRequest, progress: Progress | None = None) -> Training:
    """Train, calibrate and evaluate out of time; compare with the points rules; log to
    MLflow (with the comparison report); register; champion/challenger."""
    import pandas as pd

    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.batch import build_training_set
    from leadscore.features.training_set import read_training_set
    from leadscore.training.backtest import walk_forward
    from leadscore.training.fit import fit_models
    from leadscore.training.refit import ship
    from leadscore.training.run_log import rules_metrics
    from leadscore.training.scratch import scratch_dir
    from leadscore.training.tracking import log_and_register

    progress = progress or Recorded()
    data = Path(request.data)
    train_config = request.train_config()
    feature_config = request.feature_config()
    ds = load(data, progress)
    with progress.step("building the point-in-time training set"):
        if request.training_set is not None:
            df, spec, stats = read_training_set(request.training_set)
        else:
            df, spec, stats = build_training_set(ds, feature_config)
    end = pd.Timestamp(stats["data_end"]) if stats.get("data_end") else None
    references = {}
    if (data / "truth.csv").is_file():
        from leadscore.simulation.oracle import oracle_probability, read_truth

        truth = read_truth(data)
        references["oracle"] = lambda test: oracle_probability(
            truth, test["lead_id"].to_numpy(), test["as_of"].to_numpy(), spec.horizon_days
        )
    with progress.step("training LightGBM and the baseline, calibrating, testing") as detail:
        result = fit_models(
            df,
            spec,
            train_config,
            declared_leaky=ds.spec.columns.leaky,
            keep_columns=ds.spec.columns.keep,
            allow_leaky=request.allow_leaky,
            references=references,
            info={"source": str(data)},
            on_step=detail,
        )
    if train_config.backtest_origins > 1:
        with progress.step("walk-forward backtest") as detail:
            found = resolve_rules(request.rules, ds)
            backtest = walk_forward(
                df, spec, train_config, ds, found.rules, evaluated=result, on_step=detail,
                on_origin=progress.say,
            )  # fmt: skip
        result = replace(result, backtest=backtest)
        for note in backtest.notes:
            progress.warn(note)
    if train_config.refit:
        with progress.step("refitting the model that ships on every matured snapshot") as detail:
            result = ship(result, df, train_config, on_step=detail)
    if train_config.segments is not None and train_config.segments.champions:
        from leadscore.training.segment_champions import (
            fit_segment_champions,
            with_segment_champions,
        )

        with progress.step("one model per segment, gated per segment") as detail:
            champions = fit_segment_champions(
                df, spec, train_config, result, declared_leaky=ds.spec.columns.leaky,
                keep_columns=ds.spec.columns.keep, allow_leaky=request.allow_leaky,
                on_step=detail,
            )  # fmt: skip
            result = with_segment_champions(result, champions, df, train_config)
    for line in result.untrusted:
        progress.alarm(line, prefix="do not trust this model:")
    for warning in result.warnings:
        progress.warn(warning)
    with progress.step("comparing with the points rules"):
        result, comparison = _compare_for_training(
            ds, result, df, train_config, request.rules, progress
        )
    result, comparison = _train_accounts(ds, result, comparison, train_config, data, progress)
    example_ids = result.test["lead_id"].drop_duplicates().head(2).tolist()
    with (
        progress.step("logging to MLflow and registering the model"),
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
            require_trusted=request.require_trusted,
            rules_metrics=rules_metrics(comparison),
        )
    return Training(result, outcome, comparison, train_config)


@dataclass(frozen=True)
class Retrained:
    """`retrain`'s decision: the training, and why the champion stays (None: promoted)."""

    training: Training
    kept: str | None  # "not better", "untrusted", or None when the new version was promoted


def retrain(request: TrainRequest, progress: Progress | None = None) -> Retrained:
    """For a scheduler: train on today's data, gate, and promote only a trusted model that
    the champion gate finds not surely worse than the champion on the same rows."""
    training = train(replace(request, require_trusted=True), progress)
    outcome = training.outcome
    return Retrained(training, None if outcome.promoted else outcome.kept)


def _train_accounts(ds, result, comparison, train_config, data, progress):
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
        with progress.step("training the account model") as detail:
            accounts = fit_accounts(
                ds, result.scorer, train_config, excluded=result.leakage.excluded,
                references=references, on_step=detail,
            )  # fmt: skip
    except LeadscoreError as exc:
        progress.warn(f"no account model: {exc}")
        return result, comparison
    for warning in accounts.warnings:
        progress.warn(warning)
    result = replace(
        result, scorer=result.scorer.with_parts(accounts=accounts.scorer), accounts=accounts
    )
    if comparison is not None:
        meta = {**comparison.meta, "account_every_days": f"{train_config.accounts.every_days:g}"}
        comparison = replace(comparison, meta=meta, **account_tables(accounts))
    return result, comparison


def _compare_for_training(ds, result, df, train_config, rules_path, progress):
    """Marketing's rules calibrated on the model's validation rows and packed with it (so
    that the endpoint returns rule scores too), then the model next to them and learned
    points on the training's own split; without rules that fit the data, the report is
    model vs learned points and says why. Returns the result whose scorer carries the rules,
    and the comparison."""
    from leadscore.training.fit import fit_rules
    from leadscore.training.report import compare

    found = resolve_rules(rules_path, ds)
    if found.rules is None:
        progress.warn(f"no points rules: {found.absent}")
        rule_scorer = None
    else:
        rule_scorer = fit_rules(found.rules, ds, df[result.split.validation])
    result = replace(result, scorer=result.scorer.with_parts(rules=rule_scorer))
    comparison = compare(
        ds,
        result.scorer,
        found.rules,
        train_config,
        training_set=df,
        split=result.split,
        rule_scorer=rule_scorer,
        backtest=result.backtest,
        model_label="this run",
        bootstrap=train_config.bootstrap,
        rules_file=found.source,
        rules_absent=found.absent,
    )
    for warning in comparison.warnings:
        progress.warn(warning)
    return result, comparison
