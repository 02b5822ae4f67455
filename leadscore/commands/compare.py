"""`leadscore compare`: the marketing report, model vs points rules on the same out-of-time leads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.table import Table

from leadscore.console import MODEL_REF_HELP, alarm, load, out, step, warn
from leadscore.crm.errors import LeadscoreError
from leadscore.scoring.model_ref import DEFAULT_MODEL_URI


def compare(
    data: Path = typer.Option(..., "--data", help="Dataset folder."),
    model: str = typer.Option(
        DEFAULT_MODEL_URI,
        "--model",
        help=MODEL_REF_HELP,
    ),
    rules: Path | None = typer.Option(
        None,
        "--rules",
        help="Points rules YAML (default: the rules packed with the model, else the dataset's rules.yaml, else conf/rules.yaml when it fits the data).",
    ),
    report: Path = typer.Option(Path("reports/compare.html"), "--out", help="HTML report path."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Training config YAML: test and validation periods (default: the model's own, else conf/train.yaml of the working folder, else the package's).",
    ),
    learned: bool = typer.Option(
        True, "--learned/--no-learned", help="Also fit and show learned points."
    ),
    history: str | None = typer.Option(
        None,
        "--history",
        help="A score history (DuckDB file or SQLAlchemy URL) of `leadscore score` runs and the event stream: the report adds the time from each lead's creation to its hand-off.",
    ),
    handoff_grades: str = typer.Option(
        "A", "--handoff-grades", help="Model grades above the hand-off line (with --history)."
    ),
    handoff_mql: bool = typer.Option(
        True,
        "--handoff-mql/--no-handoff-mql",
        help="Whether the rules' MQL flag also puts a lead above the hand-off line (with --history).",
    ),
) -> None:
    """Marketing report: the model vs the points rules on the same out-of-time leads (HTML + CSV)."""
    from leadscore.project import config_path
    from leadscore.scoring.mlflow_model import load_scorer
    from leadscore.training.config import TrainConfig, load_train_config
    from leadscore.training.mlflow_runs import log_to_project_run
    from leadscore.training.report import compare as run_compare
    from leadscore.training.report_page import write_report

    handoffs = None
    if history is not None:
        handoffs = _handoffs(history, handoff_grades, handoff_mql)
    scorer = load_scorer(model)
    ds = load(data)
    found = resolve_rules(rules, ds, packed=scorer.rules.config if scorer.rules else None)
    # The model's own training config (its test and validation periods) unless --config says
    # otherwise: a model trained with other periods is compared on its own split.
    own = scorer.info.get("train_config")
    if config is None and own:
        train_config = TrainConfig.model_validate(own)
    else:
        train_config = load_train_config(config_path("train", config))
    with step("scoring the out-of-time leads with the model and the rules"):
        comp = run_compare(
            ds,
            scorer,
            found.rules,
            train_config,
            learned=learned,
            model_label=model,
            bootstrap=train_config.bootstrap,
            rules_file=found.source,
            rules_absent=found.absent,
            handoffs=handoffs,
        )
    for warning in comp.warnings:
        warn(warning)
    html_path, csv_path = write_report(comp, report)
    print_comparison(comp, html_path)
    headline = comp.headline.set_index("scorer")
    log_to_project_run(
        {
            f"test_{metric}_{scorer}": headline.loc[scorer, metric]
            for scorer in headline.index
            for metric in ("roc_auc", "pr_auc", "brier")
        },
        files=[html_path, csv_path],
        tags={"model": model},
    )


def _handoffs(history: str, grades: str, mql: bool):
    """Each lead's first score above the hand-off line in a score history (lead_id,
    handed_off_at)."""
    from leadscore.handoff.events import HandoffLine
    from leadscore.operations.history import ScoreHistory

    line = HandoffLine(mql=mql, grades=grades)
    rows = ScoreHistory(history).read()
    if rows.empty:
        raise LeadscoreError(f"--history {history}: no stored score")
    above = rows[line.above(rows["grade"], rows["mql"])]
    first = above.sort_values("as_of").drop_duplicates("lead_id")
    return first[["lead_id", "as_of"]].rename(columns={"as_of": "handed_off_at"})


@dataclass(frozen=True)
class FoundRules:
    rules: object  # RulesConfig | None
    source: str  # where they came from (a file, or "packed with the model")
    absent: str = ""  # why there are none


def resolve_rules(explicit: Path | None, dataset, packed=None) -> FoundRules:
    """Marketing's rules for a dataset: `--rules` (its errors are the user's), else the
    rules packed with the model, else the dataset folder's own `rules.yaml`, else
    conf/rules.yaml when it fits the data; otherwise none, with the reason."""
    from leadscore.rules.config import check_rules, load_rules

    if explicit is not None:
        return FoundRules(load_rules(explicit), str(explicit))
    if packed is not None:
        return FoundRules(packed, "the rules packed with the model")
    own = Path(dataset.path) / "rules.yaml"
    if own.is_file():
        return FoundRules(load_rules(own), str(own))
    default = default_rules_path()
    if default is None:
        return FoundRules(None, "", "no rules file (pass --rules, or `leadscore rules init`)")
    rules = load_rules(default)
    try:
        check_rules(rules, dataset, file=str(default))
    except LeadscoreError as exc:
        return FoundRules(
            None,
            "",
            f"{default} does not fit this data ({exc}); `leadscore rules init --data "
            f"{dataset.path}` writes a template for it",
        )
    return FoundRules(rules, str(default))


def default_rules_path() -> Path | None:
    """conf/rules.yaml of the working folder, else the package's (`leadscore.project`)."""
    from leadscore.project import config_path

    return config_path("rules")


def print_comparison(comp, html_path: Path | None = None) -> None:
    """The report's headline and capacity-matched tables on the console."""
    from leadscore.pages.html import format_count
    from leadscore.training.report_tables import SCORERS

    for line in comp.verdict:
        alarm(line, console=out)
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
    for title, frame in (
        ()
        if comp.capacity.empty
        else (
            (
                "capacity-matched, every row (deals open with their leads: the hand-off decision)"
                if comp.meta.get("deals_at_creation")
                else "capacity-matched, rows without an open deal (the hand-off decision)",
                comp.capacity,
            ),
            ("capacity-matched, every row", comp.capacity_all),
        )
    ):
        cap = Table(title=title, show_edge=False)
        for col in ("handed to sales", "leads", "wins", "win rate", "share of wins", "revenue"):
            cap.add_column(col, justify="right")
        for r in frame.to_dict("records"):
            cap.add_row(
                r["handed to sales"],
                format_count(r["leads"]),
                format_count(r["wins"]),
                f"{r['win_rate']:.1%}" if r["leads"] else "-",
                f"{r['share_of_all_wins']:.1%}",
                f"{r['revenue']:,.0f}" if r["revenue"] == r["revenue"] else "-",  # NaN: no amounts
            )
        out.print(cap)
    if html_path is not None:
        out.print(f"report: {html_path} (rows: {html_path.with_suffix('.csv')})")
