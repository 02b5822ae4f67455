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
    err,
    load,
    out,
    spark_history,
    step,
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
) -> None:
    """Score every lead open at --as-of (not snapshots) with the model the endpoint serves, the points rules next to it, worded reasons and each lead's trend over the earlier runs; record the run in the score history (the same as_of again replaces it); write the hand-off events (leads that crossed the hand-off line or changed grade since their last score) and optionally POST them to a webhook."""

    from leadscore.crm.times import utc
    from leadscore.handoff.delivery import WebhookSender, deliver, read_secret, stage
    from leadscore.handoff.events import HandoffLine, write_events
    from leadscore.operations.accounts import (
        AccountLine,
        account_run,
        account_scores_path,
        has_accounts,
    )
    from leadscore.operations.history import ScoreHistory, default_store
    from leadscore.operations.pipeline import write_scores
    from leadscore.operations.runs import score_and_record
    from leadscore.scoring.mlflow_model import load_pinned_scorer
    from leadscore.training.mlflow_runs import log_to_project_run

    line = HandoffLine(mql=handoff_mql, grades=handoff_grades)
    account_line = AccountLine(account_handoff_grades)
    sender = None
    if webhook is not None:  # checked before any work: a missing secret is a mistake
        sender = WebhookSender(webhook, read_secret(webhook_secret_file))
    events_path = events or out_path.with_name(out_path.stem + ".events.jsonl")
    if events_path.suffix.lower() != ".jsonl":
        raise LeadscoreError(f"--events {events_path}: the events file must end in .jsonl")
    when = _when(as_of, "--as-of")
    if out_path.suffix.lower() not in (".parquet", ".csv", ""):
        raise LeadscoreError(
            f"--out {out_path}: the scores file must end in .parquet or .csv "
            "(or be a folder, without a suffix)"
        )
    scorer, which = load_pinned_scorer(model)  # the file names what scored
    spark = spark_history(data, spark_master) if engine == Engine.spark else None
    ds = spark.dataset if spark is not None else load(data)
    data_end = spark.data_end if spark is not None else (None if ds.is_flat else ds.data_end)
    if when is not None and data_end is not None and when > utc(data_end):
        warn(
            f"--as-of {as_of} is after the data's end "
            f"({data_end.isoformat()}): nothing after the end is known",
        )
    scored = None
    if spark is not None:
        from leadscore.operations.spark_scoring import spark_score_pipeline

        with step("scoring the open pipeline on Spark"):
            scored = spark_score_pipeline(spark, scorer, which, when, reasons=reasons)
        spark.close()
    store = None if no_history else ScoreHistory(history or default_store(data))
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    box = None
    if state is not None:
        from leadscore.operations.stream_sync import sync_history
        from leadscore.stream.outbox import StoreOutbox
        from leadscore.stream.stores import open_store

        online = open_store(state)
        if store is not None:
            with step("copying the event stream's scores into the score history"):
                sync_history(online, store)
        if sender is not None:
            box = StoreOutbox(online)
    elif sender is not None:
        from leadscore.handoff.delivery import Outbox, default_outbox

        box = Outbox(outbox or default_outbox(data))

    accounts = None
    if spark is not None and scorer.accounts is not None:
        warn("account rows are scored by the DuckDB engine only: not written with --engine spark")
    elif scorer.accounts is not None and not has_accounts(ds, scorer):
        warn("the model has an account model, but these leads have no account_id: no account rows")
    elif has_accounts(ds, scorer):
        # Before the run is recorded: the previous run's as_of is the one before this run.
        at = when if when is not None else utc(ds.data_end)
        previous = store.latest_as_of(at) if store is not None else None
        with step("scoring the open accounts"):
            accounts = account_run(ds, scorer, which, at, previous, account_line, reasons=reasons)

    def durable(run) -> None:
        """Before the history records the run: its events file and its events in the
        outbox (synced to disk), so that no crash from here on loses an event; then the
        scores files (a full disk under --out fails the run before the history changes)."""
        events = run.events + (accounts[1] if accounts is not None else [])
        write_events(events, events_path)
        if box is not None:
            stage(events, sender, box)
        write_scores(run.scores, out_path)
        if accounts is not None:
            write_scores(accounts[0].frame, account_scores_path(out_path))

    with Progress(
        TextColumn("scoring the open pipeline", markup=False),
        BarColumn(),
        TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("featurising", total=None)
        run = score_and_record(
            ds,
            scorer,
            which,
            when,
            reasons=reasons,
            history=store,
            line=line,
            progress=lambda done, total: bar.update(
                task, completed=done, total=total, description=f"{done:,}/{total:,} leads"
            ),
            before_record=durable,
            scored=scored,
        )
    frame = run.scores
    path = out_path
    print_run(frame, path, store)
    print_events(run.events, events_path, line)
    if accounts is not None:
        print_accounts_run(accounts, account_scores_path(out_path), account_line)
    log_to_project_run(
        {
            "open_leads": len(frame),
            "grade_a": int((frame["grade"] == "A").sum()),
            "handoff_events": len(run.events),
        },
        files=[events_path],
        tags={"model": f"{which.name} v{which.version}"},
    )
    if box is not None:
        report = deliver(sender, box)
        print_delivery(report, sender.shown, box)


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
    from leadscore.operations.monitor import monitor as run_monitor
    from leadscore.operations.monitor_page import log_monitor, write_monitor
    from leadscore.scoring.mlflow_model import load_pinned_scorer

    if out_path.suffix.lower() not in (".html", ".htm"):
        raise LeadscoreError(f"--out {out_path}: the monitoring report is an HTML file (.html)")
    when, reference = _when(as_of, "--as-of"), _when(reference_as_of, "--reference-as-of")
    scorer, which = load_pinned_scorer(model)
    ds = load(data)
    with step("monitoring: the pipeline now, then, and one horizon ago"):
        report = run_monitor(
            ds,
            scorer,
            which,
            as_of=when,
            reference_as_of=reference,
        )
    html_path, json_path = write_monitor(report, out_path)
    print_monitor(report, html_path)
    if log_mlflow:
        import mlflow

        run_id = log_monitor(report, html_path, json_path)
        out.print(f"MLflow run {run_id} ({mlflow.get_tracking_uri()})", highlight=False)


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


def _when(text: str | None, option: str):
    """An option's ISO-8601 time in UTC, or None; a bad one is a user mistake."""
    from leadscore.crm.times import utc

    if text is None or not text.strip():  # '' too: MLproject parameters cannot be left out
        return None
    try:
        return utc(text)
    except ValueError as exc:
        raise LeadscoreError(f"{option} {text!r}: not an ISO-8601 time ({exc})") from exc
