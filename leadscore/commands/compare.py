"""`leadscore compare`: the marketing report, model vs points rules on the same out-of-time leads."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from leadscore.console import MODEL_REF_HELP, alarm, out, progress
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
    from leadscore.jobs.compare import CompareRequest
    from leadscore.jobs.compare import compare as compare_job

    request = CompareRequest(
        data=data, model=model, rules=rules, out=report, config=config, learned=learned,
        history=history, handoff_grades=handoff_grades, handoff_mql=handoff_mql,
    )  # fmt: skip
    done = compare_job(request, progress)
    print_comparison(done.comparison, done.html_path)
    if done.backtest_source:
        out.print(f"backtest: {done.backtest_source}", highlight=False)
    if done.backtest is not None:
        from leadscore.commands.train import print_backtest

        print_backtest(done.backtest)


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
    at_creation = bool(comp.meta.get("deals_at_creation"))
    tables = []
    if not comp.capacity.empty:
        tables.append(
            (
                "capacity-matched, every row (deals open with their leads: the hand-off decision)"
                if at_creation
                else "capacity-matched, rows without an open deal (the hand-off decision)",
                comp.capacity,
            )
        )
        if not at_creation:  # with deals opening with their leads, every row is printed above
            tables.append(("capacity-matched, every row", comp.capacity_all))
    for title, frame in tables:
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
    if any((frame[["leads", "wins"]] % 1 != 0).any(axis=None) for _, frame in tables):
        out.print(
            "tied scores at the cut share the places left: a fractional count is an expected count",
            highlight=False,
        )
    if html_path is not None:
        out.print(f"report: {html_path} (rows: {html_path.with_suffix('.csv')})")
