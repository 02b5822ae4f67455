"""The comparison job: the marketing report, a model next to the points rules on the same
out-of-time leads (HTML and CSV), its figures recorded in the project's MLflow run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadscore.jobs.data import load
from leadscore.jobs.progress import Progress, Recorded
from leadscore.jobs.project import config_path, resolve_rules
from leadscore.scoring.model_ref import DEFAULT_MODEL_URI


@dataclass(frozen=True)
class CompareRequest:
    """data: the dataset folder; model: `models:/NAME@ALIAS`, `models:/NAME/VERSION` or a
    saved scorer folder; rules: a rules YAML (default: the rules packed with the model, else
    the dataset's rules.yaml, else conf/rules.yaml when it fits the data); out: the HTML
    page (the CSV next to it); config: a training config for the test and validation periods
    (default: the model's own); learned: also fit learned points; history: a score history
    whose hand-offs give the time from creation to hand-off, by the line `handoff_grades`
    and `handoff_mql`; costs: spend per lever for the hand-off loop section (which a
    lead_status table in the data also brings)."""

    data: Path
    model: str = DEFAULT_MODEL_URI
    rules: Path | None = None
    out: Path = Path("reports/compare.html")
    config: Path | None = None
    learned: bool = True
    history: str | None = None
    handoff_grades: str = "A"
    handoff_mql: bool = True
    costs: Path | None = None


@dataclass(frozen=True)
class Compared:
    comparison: Any  # leadscore.training.report.Comparison
    html_path: Path
    csv_path: Path
    backtest: Any = None  # the walk-forward backtest the page shows (None: none)
    backtest_source: str | None = None  # where it comes from, in words


def compare(request: CompareRequest, progress: Progress | None = None) -> Compared:
    """The marketing report of `request.model` against the points rules."""
    from leadscore.scoring.mlflow_model import load_scorer
    from leadscore.scoring.mlflow_runs import log_to_project_run
    from leadscore.training.config import TrainConfig, load_train_config
    from leadscore.training.report import compare as run_compare
    from leadscore.training.report_page import write_report

    progress = progress or Recorded()
    handoffs = None
    if request.history is not None:
        from leadscore.jobs.loop import handoff_times

        handoffs = handoff_times(request.history, request.handoff_grades, request.handoff_mql)
    scorer = load_scorer(request.model)
    ds = load(request.data, progress)
    found = resolve_rules(request.rules, ds, packed=scorer.rules.config if scorer.rules else None)
    # The model's own training config (its test and validation periods) unless a config is
    # given: a model trained with other periods is compared on its own split.
    own = scorer.info.get("train_config")
    if request.config is None and own:
        train_config = TrainConfig.model_validate(own)
    else:
        train_config = load_train_config(config_path("train", request.config))
    backtest, backtest_source = model_backtest(request.model, scorer, ds, found.rules,
                                               train_config, progress)  # fmt: skip
    with progress.step("scoring the out-of-time leads with the model and the rules"):
        comp = run_compare(
            ds,
            scorer,
            found.rules,
            train_config,
            learned=request.learned,
            model_label=request.model,
            bootstrap=train_config.bootstrap,
            rules_file=found.source,
            rules_absent=found.absent,
            handoffs=handoffs,
            backtest=backtest,
            backtest_source=backtest_source,
        )
    if ds.lead_status is not None or request.costs is not None:  # the hand-off loop too
        from leadscore.jobs.loop import LoopRequest, kpis

        comp.loop = kpis(
            LoopRequest(
                data=request.data,
                history=request.history,
                grades=request.handoff_grades,
                mql=request.handoff_mql,
                costs=request.costs,
            ),
            progress=progress,
            dataset=ds,
            scorer=scorer,
        )
    for warning in comp.warnings:
        progress.warn(warning)
    html_path, csv_path = write_report(comp, request.out)
    headline = comp.headline.set_index("scorer")
    log_to_project_run(
        {
            f"test_{metric}_{name}": headline.loc[name, metric]
            for name in headline.index
            for metric in ("roc_auc", "same_day_auc", "pr_auc", "brier")
            if headline.loc[name, metric] == headline.loc[name, metric]  # NaN: none
        },
        files=[html_path, csv_path],
        tags={"model": request.model},
    )
    return Compared(comp, html_path, csv_path, backtest, backtest_source)


def model_backtest(model: str, scorer, dataset, rules, config, progress):
    """The walk-forward backtest the page shows, and where it comes from: the one the
    model's training run logged (a registered model), else one run now on this data with the
    model's settings (`config.backtest_origins` origins); (None, why) with one origin."""
    from leadscore.training.backtest import stored_backtest, walk_forward

    if str(model).startswith("models:/"):
        from mlflow import MlflowClient

        from leadscore.scoring.mlflow_model import model_identity

        which = model_identity(model)
        run_id = MlflowClient().get_model_version(which.name, which.version).run_id
        stored = stored_backtest(run_id) if run_id else None
        if stored is not None:
            trained_to = scorer.info.get("trained_to") or scorer.info.get("test_end") or "?"
            return stored, (
                f"the backtest of the model's own training run ({which.name} v{which.version}, "
                f"MLflow run {run_id}, on its training data up to {str(trained_to)[:10]})"
            )
    if config.backtest_origins < 2:
        return None, "no backtest: the model's settings ask for one test window"
    from leadscore.features.batch import build_training_set

    with progress.step(f"walk-forward backtest ({config.backtest_origins} origins)") as detail:
        df, spec, _ = build_training_set(dataset, spec=scorer.spec)
        backtest = walk_forward(
            df, spec, config, dataset, rules, on_step=detail, on_origin=progress.say
        )
    return backtest, (
        f"a backtest run now on this data with the model's settings "
        f"({config.backtest_origins} origins): the model logged none"
    )
