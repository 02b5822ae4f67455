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
    costs: Path | None = typer.Option(
        None,
        "--costs",
        help="Spend per lever (CSV or YAML: source, period_start, period_end, spend): the report's hand-off loop section adds cost per lead, hand-off, accepted lead and won deal, and revenue over spend.",
    ),
) -> None:
    """Marketing report: the model vs the points rules on the same out-of-time leads (HTML + CSV)."""
    from leadscore.jobs.compare import CompareRequest
    from leadscore.jobs.compare import compare as compare_job

    request = CompareRequest(
        data=data, model=model, rules=rules, out=report, config=config, learned=learned,
        history=history, handoff_grades=handoff_grades, handoff_mql=handoff_mql, costs=costs,
    )  # fmt: skip
    done = compare_job(request, progress)
    print_comparison(done.comparison, done.html_path)
    if done.backtest_source:
        out.print(f"backtest: {done.backtest_source}", highlight=False)
    if done.backtest is not None:
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
        "same-day ROC AUC [95% CI]",
        "pooled ROC AUC [95% CI]",
        "PR AUC [95% CI]",
        "Brier [95% CI]",
        "lift top 10% [95% CI]",
    ):
        table.add_column(col, justify="right")
    for r in comp.headline.itertuples():
        table.add_row(
            SCORERS[r.scorer],
            f"{r.same_day_auc:.3f} [{r.same_day_auc_low:.3f}, {r.same_day_auc_high:.3f}]"
            if r.same_day_auc == r.same_day_auc  # NaN: no day with both outcomes
            else "-",
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
                else "capacity-matched day by day, rows without an open deal (the hand-off decision)",
                comp.capacity,
            )
        )
        if not at_creation:  # with deals opening with their leads, every row is printed above
            tables.append(
                ("capacity-matched, every row, pooled over the window", comp.capacity_all)
            )
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
    for col in ("origin", "test window", "rows", "won", "scorer", "same-day ROC AUC",
                "pooled ROC AUC", "PR AUC", "ECE", "wins at the rules' MQLs"):  # fmt: skip
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
            f"{r['same-day ROC AUC']:.3f}"
            if r["same-day ROC AUC"] == r["same-day ROC AUC"]
            else "-",
            f"{r['ROC AUC']:.3f}",
            f"{r['PR AUC']:.3f}",
            f"{r['ECE']:.4f}",
            f"{format_count(wins)} of {format_count(mqls)}" if wins == wins else "-",
            end_section=False,
        )
    out.print(table)
    if any(
        r["wins at the MQLs"] % 1
        for r in table_rows(backtest.summary())
        if r["wins at the MQLs"] == r["wins at the MQLs"]
    ):
        out.print(
            "wins at the rules' MQLs: tied scores at the cut share the places left, so a "
            "fractional count is an expected count",
            highlight=False,
        )
    if backtest.difference is not None:
        point, low, high = backtest.difference
        out.print(
            f"pooled paired ROC AUC difference, model - rules: {point:+.3f} [{low:+.3f}, "
            f"{high:+.3f}] (bootstrap over leads across every origin's rows)"
        )
    if backtest.same_day_difference is not None:
        point, low, high = backtest.same_day_difference
        out.print(
            f"same-day ROC AUC difference (among the leads open on the same day), model - "
            f"rules: {point:+.3f} [{low:+.3f}, {high:+.3f}]: the verdict rests on it"
        )
