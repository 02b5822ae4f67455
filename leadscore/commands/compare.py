"""`leadscore compare`: the marketing report, model vs points rules on the same out-of-time leads."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from crm.errors import LeadscoreError
from leadscore.console import err, out


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
    from crm.loading import load_dataset
    from rules.config import load_rules
    from scoring.mlflow_model import load_scorer
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


def default_rules_path() -> Path | None:
    """conf/rules.yaml of the working folder, else of the source checkout."""
    import crm

    for base in (Path.cwd(), Path(crm.__file__).resolve().parent.parent):
        if (base / "conf" / "rules.yaml").is_file():
            return base / "conf" / "rules.yaml"
    return None


def print_comparison(comp, html_path: Path | None = None) -> None:
    """The report's headline and capacity-matched tables on the console."""
    from training.report import SCORERS, format_count

    for line in comp.verdict:
        out.print(f"[bold red]{line}[/bold red]", highlight=False)
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
        ("capacity-matched, rows without an open deal (the hand-off decision)", comp.capacity),
        ("capacity-matched, every row", comp.capacity_all),
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
