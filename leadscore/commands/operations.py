"""`leadscore score` (the open pipeline, scored and recorded) and `leadscore history LEAD_ID`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from leadscore.console import (
    ENGINE_HELP,
    MODEL_REF_HELP,
    SPARK_MASTER_HELP,
    Engine,
    out,
    progress,
    styled,
    warn,
)
from leadscore.crm.errors import LeadscoreError
from leadscore.scoring.model_ref import DEFAULT_MODEL_URI


def score(
    data: Path = typer.Option(..., "--data", help="Dataset folder: the CRM export to score."),
    out_path: Path = typer.Option(
        ...,
        "--out",
        help="Scores file: .parquet or .csv (written whole, or not at all); a path without a suffix is a folder of Parquet partitioned by as_of (a re-run replaces its partition).",
    ),
    model: str = typer.Option(
        DEFAULT_MODEL_URI,
        "--model",
        help=MODEL_REF_HELP,
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Score the leads open at this ISO-8601 time, with what was known then (default: the data's end).",
    ),
    reasons: bool = typer.Option(
        True, "--reasons/--no-reasons", help="Word the top reasons up and down for each lead."
    ),
    history: str | None = typer.Option(
        None,
        "--history",
        help="Score history: a DuckDB file or a SQLAlchemy URL such as postgresql://... (default: score_history.duckdb in the data folder).",
    ),
    no_history: bool = typer.Option(
        False,
        "--no-history",
        help="Do not read or record the score history (no trends; every lead above the hand-off line is an event).",
    ),
    events: Path | None = typer.Option(
        None,
        "--events",
        help="Hand-off events file, JSONL (default: next to --out, named <out>.events.jsonl).",
    ),
    handoff_grades: str = typer.Option(
        "A",
        "--handoff-grades",
        help="Model grades above the hand-off line, e.g. A or AB ('' for none).",
    ),
    handoff_mql: bool = typer.Option(
        True,
        "--handoff-mql/--no-handoff-mql",
        help="Whether the rules' MQL flag also puts a lead above the hand-off line.",
    ),
    account_handoff_grades: str = typer.Option(
        "A",
        "--account-handoff-grades",
        help="Account grades above the account hand-off line, e.g. A or AB ('' for none); used when the model has an account model and the leads an account_id.",
    ),
    webhook: str | None = typer.Option(
        None,
        "--webhook",
        help="POST the events to this URL, signed with HMAC-SHA256 (secret: $LEADSCORE_WEBHOOK_SECRET or --webhook-secret-file); undelivered events are kept in the outbox and sent first next run.",
    ),
    webhook_secret_file: Path | None = typer.Option(
        None, "--webhook-secret-file", help="A file holding the webhook's signing secret."
    ),
    outbox: Path | None = typer.Option(
        None,
        "--outbox",
        help="Undelivered events, kept for the next run (default: handoff_outbox.jsonl in the data folder).",
    ),
    state: str | None = typer.Option(
        None,
        "--state",
        help="The online store `leadscore serve` keeps (sqlite:///..., postgresql://..., redis://...): the stream's scores are copied into the history first, and hand-offs go through its outbox, so a crossing the stream already handed off is not handed off again.",
    ),
    engine: Engine = typer.Option(Engine.duckdb, "--engine", help=ENGINE_HELP),
    spark_master: str | None = typer.Option(None, "--spark-master", help=SPARK_MASTER_HELP),
    sla_grade_a: str = typer.Option(
        "5m", "--sla-grade-a", help="SLA of a grade-A hand-off: time to the first sales touch."
    ),
    sla: str = typer.Option("1d", "--sla", help="SLA of every other hand-off (5m, 4h, 1d)."),
) -> None:
    """Score every lead open at --as-of (not snapshots) with the model the endpoint serves, the points rules next to it, worded reasons and each lead's trend over the earlier runs; record the run in the score history (the same as_of again replaces it); write the hand-off events (leads that crossed the hand-off line or changed grade since their last score) and optionally POST them to a webhook."""
    from leadscore.jobs.score import ScoreRequest
    from leadscore.jobs.score import score as score_job

    request = ScoreRequest(
        data=data, out=out_path, model=model, as_of=as_of, reasons=reasons, history=history,
        no_history=no_history, events=events, handoff_grades=handoff_grades,
        handoff_mql=handoff_mql, account_handoff_grades=account_handoff_grades,
        webhook=webhook, webhook_secret_file=webhook_secret_file, outbox=outbox, state=state,
        engine=engine.value, spark_master=spark_master, sla_grade_a=sla_grade_a,
        sla_otherwise=sla,
    )  # fmt: skip
    done = score_job(request, progress)
    print_run(done.run.scores, done.out, done.history)
    if done.past_trained_ages:
        out.print(f"note: {done.past_trained_ages}", highlight=False)
    print_events(done.run.events, done.events_path, done.line)
    if done.accounts is not None:
        print_accounts_run(done.accounts, done.accounts_path, done.account_line)
    if done.delivery is not None:
        print_delivery(done.delivery, done.sender.shown, done.outbox)
    if done.sla_misses is not None:
        print_sla_misses(done.sla_misses, request.sla_grade_a, request.sla_otherwise)


def print_sla_misses(missed, grade_a: str, otherwise: str, show: int = 5) -> None:
    """The hand-offs sales did not touch within the SLA: counts, then the most overdue."""
    new = int(missed["new"].sum()) if len(missed) else 0
    untouched = int((~missed["touched_late"]).sum()) if len(missed) else 0
    out.print(
        f"SLA (grade A: {grade_a}, otherwise: {otherwise}): {len(missed):,} hand-offs missed it, "
        f"{new:,} of them in the last day; {untouched:,} still not touched",
        highlight=False,
    )
    for row in missed[~missed["touched_late"]].head(show).itertuples():
        out.print(
            f"  {row.lead_id} (grade {row.grade}): due {row.due_at:%Y-%m-%d %H:%M}, "
            f"{row.late_minutes / 60:,.1f} hours late, not touched yet",
            highlight=False,
        )


def print_accounts_run(accounts, path: Path, line) -> None:
    scores, events = accounts
    frame = scores.frame
    review = sum(e["type"] == "account.review" for e in events)
    out.print(
        f"scored {len(frame):,} open accounts ({int((frame['grade'] == 'A').sum()):,} graded A) "
        f"-> {path}; {len(events):,} crossed the account line ({line.describe()}; {review:,} "
        "of them sent for review: interval too wide)"
    )


def print_events(events: list[dict], path: Path, line, show: int = 0) -> None:
    """The run's hand-off events: counts, and the first `show` of them with their reasons."""
    from leadscore.handoff.events import summarize

    counts = summarize(events)
    out.print(
        f"hand-off events: {counts['crossed_handoff_line']:,} crossed the line ({line.describe()}"
        f"; {counts['review']:,} of them sent for review: interval too wide), "
        f"{counts['grade_up']:,} grades up, {counts['grade_down']:,} down -> {path}"
    )
    # Hand-offs first (what sales acts on), most likely to win first.
    ranked = sorted(events, key=lambda e: (e["type"] != "lead.handoff", -e["probability"]))
    for e in ranked[:show]:
        up = "; ".join(e["reasons_up"][:2]) or "-"
        change = (
            f"grade {e['previous_grade']} -> {e['grade']}"
            if e["previous_grade"]
            else f"grade {e['grade']}"
        )
        out.print(
            f"  {e['lead_id']}: {e['type']}, {change}, p={e['probability']:.3f}, "
            f"rules {e['rule_score'] if e['rule_score'] is not None else '-'}; up: {up}",
            highlight=False,
        )


def print_delivery(report, url: str, box) -> None:
    if report.kept:
        why = "; ".join(
            x for x in (report.failures[-1] if report.failures else "", report.stopped) if x
        )
        warn(
            f"webhook: {report.delivered:,} events delivered, "
            f"{report.kept:,} kept in {box.path} for the next run ({why})",
        )
    else:
        out.print(f"webhook: {report.delivered:,} events delivered to {url}")


def print_run(frame, path: Path, store) -> None:
    if frame.empty:
        out.print(f"no open lead at that time: wrote an empty {path}")
        return
    out.print(
        f"scored {len(frame):,} open leads as of {frame['as_of'].iloc[0].isoformat()} with "
        f"{frame['model_name'].iloc[0]} v{frame['model_version'].iloc[0]} -> {path}"
    )
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("grade")
    table.add_column("model", justify="right")
    table.add_column("rules", justify="right")
    rules = frame["rule_grade"].value_counts()
    model = frame["grade"].value_counts()
    for grade in "ABCD":
        table.add_row(grade, f"{model.get(grade, 0):,}", f"{rules.get(grade, 0):,}")
    out.print(table)
    trends = frame["trend"].value_counts()
    out.print(
        "trend: "
        + ", ".join(f"{t} {trends.get(t, 0):,}" for t in ("improving", "steady", "declining"))
        + f", not enough history {trends.get('not enough history', 0):,}"
    )
    if store is not None:
        out.print(f"history: {store.shown}")


def history(
    lead_id: str = typer.Argument(..., help="The lead's id, as in the CRM export."),
    data: Path | None = typer.Option(
        None, "--data", help="Dataset folder whose score_history.duckdb to read."
    ),
    store: str | None = typer.Option(
        None, "--history", help="Score history: a DuckDB file or a SQLAlchemy URL."
    ),
) -> None:
    """A lead's scores over time, one line per `leadscore score` run: probability, score, grade, rule score and trend."""
    import pandas as pd

    from leadscore.operations.history import ScoreHistory, default_store

    if store is None and data is None:
        raise LeadscoreError("give --data (its score_history.duckdb) or --history")
    found = ScoreHistory(store or default_store(data))
    rows = found.lead(lead_id)
    if rows.empty:
        raise LeadscoreError(f"lead {lead_id!r} has no stored score in {found.shown}")
    table = Table(title=f"lead {lead_id}", show_edge=False, pad_edge=False)
    for col in (
        "as_of",
        "probability",
        "score",
        "grade",
        "rule score",
        "rule grade",
        "trend",
        "model",
    ):
        table.add_column(
            col, justify="right" if col in ("probability", "score", "rule score") else "left"
        )
    for r in rows.itertuples():
        table.add_row(
            r.as_of.isoformat(),
            f"{r.probability:.3f}",
            str(int(r.score)),
            str(r.grade),
            "-" if pd.isna(r.rule_score) else str(int(r.rule_score)),
            "-" if pd.isna(r.rule_grade) else str(r.rule_grade),
            str(r.trend),
            f"{r.model_name} v{r.model_version}",
        )
    out.print(table)


def monitor(
    data: Path = typer.Option(..., "--data", help="Dataset folder: the CRM export as of today."),
    model: str = typer.Option(DEFAULT_MODEL_URI, "--model", help=MODEL_REF_HELP),
    out_path: Path = typer.Option(
        Path("reports/monitor.html"),
        "--out",
        help="The HTML page (a JSON summary is written next to it, for schedulers).",
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Monitor the pipeline at this ISO-8601 time (default: the data's end).",
    ),
    reference_as_of: str | None = typer.Option(
        None,
        "--reference-as-of",
        help="Compare with the pipeline at this time (default: when the model's training data ends, on the same weekday).",
    ),
    log_mlflow: bool = typer.Option(
        True,
        "--mlflow/--no-mlflow",
        help="Log the figures, the verdict and the page to MLflow (experiment leadscore-monitoring).",
    ),
) -> None:
    """Drift of every feature and of the score since the model's training data (PSI against thresholds from the sampling distribution at these sample sizes), calibration on matured outcomes by grade and decile, conversion shifts by source, and a verdict: ok, watch or retrain."""
    from leadscore.jobs.monitor import MonitorRequest
    from leadscore.jobs.monitor import monitor as monitor_job

    request = MonitorRequest(
        data=data, out=out_path, model=model, as_of=as_of, reference_as_of=reference_as_of,
        log_mlflow=log_mlflow,
    )  # fmt: skip
    done = monitor_job(request, progress)
    print_monitor(done.report, done.html_path)
    if done.run_id is not None:
        import mlflow

        out.print(f"MLflow run {done.run_id} ({mlflow.get_tracking_uri()})", highlight=False)


def print_monitor(report, path: Path) -> None:
    colour = {"ok": "green", "watch": "yellow", "retrain": "red"}[report.verdict]
    version = report.model.version
    out.print(
        styled(
            (report.verdict, f"bold {colour}"),
            f": {report.model.name}"
            f"{'' if version == 'local' else f' v{version}'} on the pipeline at "
            f"{report.as_of.date()} ({report.n_current:,} leads) against "
            f"{report.reference_as_of.date()} ({report.n_reference:,})",
        )
    )
    for reason in report.reasons:
        out.print(f"  - {reason}", highlight=False)
    for note in report.notes:
        out.print(f"  note: {note}", highlight=False)
    out.print(styled("report -> ", (str(path), "bold"), f" (and {path.with_suffix('.json').name})"))
