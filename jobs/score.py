"""The daily scoring job: every lead open at `as_of` scored with the model the endpoint
serves, the run recorded in the score history, its hand-off events written, staged in the
outbox and delivered. `leadscore score`, the demo's week and the tests run this one job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadscore.crm.errors import LeadscoreError
from leadscore.jobs.data import load, spark_history
from leadscore.jobs.progress import Progress, Recorded
from leadscore.scoring.model_ref import DEFAULT_MODEL_URI


@dataclass(frozen=True)
class ScoreRequest:
    """data: the CRM export; out: the scores file (.parquet, .csv, or a folder of Parquet by
    as_of); model: `models:/NAME@ALIAS`, `models:/NAME/VERSION` or a saved scorer folder;
    as_of: an ISO-8601 time (None: the data's end); history: a DuckDB file or SQLAlchemy URL
    (None: score_history.duckdb in the data folder; `no_history`: none at all); events: the
    hand-off events file (None: next to `out`); the hand-off lines (`handoff_grades`,
    `handoff_mql`, `account_handoff_grades`); webhook, its secret file and the outbox;
    state: the stream's online store (its scores copied into the history first, hand-offs
    through its outbox); engine: duckdb or spark (`spark_master`)."""

    data: Path
    out: Path
    model: str = DEFAULT_MODEL_URI
    as_of: str | None = None
    reasons: bool = True
    history: str | None = None
    no_history: bool = False
    events: Path | None = None
    handoff_grades: str = "A"
    handoff_mql: bool = True
    account_handoff_grades: str = "A"
    webhook: str | None = None
    webhook_secret_file: Path | None = None
    outbox: Path | None = None
    state: str | None = None
    engine: str = "duckdb"
    spark_master: str | None = None
    sla_grade_a: str = "5m"
    sla_otherwise: str = "1d"


@dataclass(frozen=True)
class Scored:
    """A scoring run: the run (scores, events; `operations.runs`), the account rows and
    events (None without accounts), where the files are, the hand-off lines, the history
    (None: none), and the webhook's delivery report (None: no webhook)."""

    run: Any
    accounts: Any
    out: Path
    events_path: Path
    accounts_path: Path | None
    line: Any
    account_line: Any
    history: Any
    delivery: Any
    sender: Any
    outbox: Any
    past_trained_ages: str | None = None  # the open leads older than the model's ages
    # the history's hand-offs that missed the SLA by as_of (`operations.sla_misses`; None:
    # no history, or the Spark engine, whose activities stay on the cluster)
    sla_misses: Any = None


def parse_time(text: str | None, option: str):
    """An option's ISO-8601 time in UTC, or None; a bad one is a user mistake."""
    from leadscore.crm.times import utc

    if text is None or not text.strip():  # '' too: MLproject parameters cannot be left out
        return None
    try:
        return utc(text)
    except ValueError as exc:
        raise LeadscoreError(f"{option} {text!r}: not an ISO-8601 time ({exc})") from exc


def experiment_line(line, store: str, dataset):
    """The hand-off line with the store's experiments on top (their leads handed off by
    their arm's policy, `leadscore.experiment.policy`), and the experiments' store; the
    line as it was and None when the store has no experiment."""
    import pandas as pd

    from leadscore.crm.times import timestamps_us
    from leadscore.experiment.policy import ExperimentLine
    from leadscore.experiment.records import ExperimentStore

    experiments = ExperimentStore(store)
    found = experiments.list()
    if not found:
        return line, None
    created = pd.Series(
        timestamps_us(dataset.leads["created_at"]),
        index=dataset.leads["lead_id"].astype(str).to_numpy(),
    )
    return ExperimentLine(line, found, created), experiments


def score(request: ScoreRequest, progress: Progress | None = None) -> Scored:
    """Score every lead open at `as_of`, record the run, hand the crossings off."""
    import numpy as np

    from leadscore.crm.times import utc
    from leadscore.handoff.accounts import AccountLine
    from leadscore.handoff.delivery import WebhookSender, deliver, read_secret, stage
    from leadscore.handoff.events import HandoffLine, write_events
    from leadscore.operations.accounts import account_run, account_scores_path, has_accounts
    from leadscore.operations.history import ScoreHistory, default_store
    from leadscore.operations.pipeline import past_trained_ages, write_scores
    from leadscore.operations.runs import score_and_record
    from leadscore.scoring.mlflow_model import load_pinned_scorer
    from leadscore.scoring.mlflow_runs import log_to_project_run

    progress = progress or Recorded()
    data, out_path = Path(request.data), Path(request.out)
    line = HandoffLine(mql=request.handoff_mql, grades=request.handoff_grades)
    account_line = AccountLine(request.account_handoff_grades)
    sender = None
    if request.webhook is not None:  # checked before any work: a missing secret is a mistake
        sender = WebhookSender(request.webhook, read_secret(request.webhook_secret_file))
    events_path = request.events or out_path.with_name(out_path.stem + ".events.jsonl")
    if events_path.suffix.lower() != ".jsonl":
        raise LeadscoreError(f"--events {events_path}: the events file must end in .jsonl")
    when = parse_time(request.as_of, "--as-of")
    sla = sla_config(request.sla_grade_a, request.sla_otherwise)
    if out_path.suffix.lower() not in (".parquet", ".csv", ""):
        raise LeadscoreError(
            f"--out {out_path}: the scores file must end in .parquet or .csv "
            "(or be a folder, without a suffix)"
        )
    scorer, which = load_pinned_scorer(request.model)  # the file names what scored
    spark = None
    if request.engine == "spark":
        spark = spark_history(data, request.spark_master, progress)
        ds = spark.dataset
    else:
        ds = load(data, progress)
    data_end = spark.data_end if spark is not None else (None if ds.is_flat else ds.data_end)
    if when is not None and data_end is not None and when > utc(data_end):
        progress.warn(
            f"--as-of {request.as_of} is after the data's end "
            f"({data_end.isoformat()}): nothing after the end is known",
        )
    scored = None
    if spark is not None:
        from leadscore.operations.spark_scoring import spark_score_pipeline

        with progress.step("scoring the open pipeline on Spark"):
            scored = spark_score_pipeline(spark, scorer, which, when, reasons=request.reasons)
        spark.close()
    store = None if request.no_history else ScoreHistory(request.history or default_store(data))
    experiments = None
    if store is not None:
        line, experiments = experiment_line(line, store.store, ds)

    box = None
    if request.state is not None:
        from leadscore.handoff.outbox import StoreOutbox
        from leadscore.operations.stream_sync import sync_history
        from leadscore.stream.stores import open_store

        online = open_store(request.state)
        if store is not None:
            with progress.step("copying the event stream's scores into the score history"):
                sync_history(online, store)
        if sender is not None:
            box = StoreOutbox(online)
    elif sender is not None:
        from leadscore.handoff.outbox import FileOutbox, default_outbox

        box = FileOutbox(request.outbox or default_outbox(data))

    accounts = None
    if spark is not None and scorer.accounts is not None:
        progress.warn(
            "account rows are scored by the DuckDB engine only: not written with --engine spark"
        )
    elif scorer.accounts is not None and not has_accounts(ds, scorer):
        progress.warn(
            "the model has an account model, but these leads have no account_id: no account rows"
        )
    elif has_accounts(ds, scorer):
        # Before the run is recorded: the previous run's as_of is the one before this run.
        at = when if when is not None else utc(ds.data_end)
        previous = store.latest_as_of(at) if store is not None else None
        with progress.step("scoring the open accounts"):
            accounts = account_run(
                ds, scorer, which, at, previous, account_line, reasons=request.reasons
            )

    def durable(run) -> None:
        """Before the history records the run: its events file and its events in the
        outbox (synced to disk), so that no crash from here on loses an event; then the
        scores files (a full disk under --out fails the run before the history changes)."""
        events = run.events + (accounts[1] if accounts is not None else [])
        write_events(events, events_path)
        if box is not None:
            stage(events, sender, box)
        if experiments is not None:  # each arm's hand-offs, for the experiment's readout
            experiments.record_handoffs(run.events)
        write_scores(run.scores, out_path)
        if accounts is not None:
            write_scores(accounts[0].frame, account_scores_path(out_path))

    with progress.step("scoring the open pipeline") as detail:
        run = score_and_record(
            ds,
            scorer,
            which,
            when,
            reasons=request.reasons,
            history=store,
            line=line,
            progress=lambda done, total: detail(f"{done:,}/{total:,} leads"),
            before_record=durable,
            scored=scored,
        )
    frame = run.scores
    beyond = frame["beyond_trained_age"].to_numpy(dtype=bool)
    log_to_project_run(
        {
            "open_leads": len(frame),
            "past_trained_ages": int(beyond.sum()),
            "grade_a": int((frame["grade"] == "A").sum()),
            "handoff_events": len(run.events),
        },
        files=[events_path],
        tags={"model": f"{which.name} v{which.version}"},
    )
    report = deliver(sender, box) if box is not None else None
    missed = None
    if store is not None and spark is None and not ds.is_flat:
        from leadscore.operations.sla_misses import batch_sla_misses

        with progress.step("looking for hand-offs that missed the SLA"):
            at = when if when is not None else utc(ds.data_end)
            missed = batch_sla_misses(ds, store.read(), line, at, sla)
    return Scored(
        run=run,
        accounts=accounts,
        out=out_path,
        events_path=events_path,
        accounts_path=account_scores_path(out_path) if accounts is not None else None,
        line=line,
        account_line=account_line,
        history=store,
        delivery=report,
        sender=sender,
        outbox=box,
        past_trained_ages=past_trained_ages(
            scorer, beyond, frame["probability"].to_numpy(dtype=np.float64)
        ),
        sla_misses=missed,
    )


def sla_config(grade_a: str, otherwise: str):
    """The SLA of the options `--sla-grade-a` and `--sla`, a bad one named by its option."""
    from leadscore.handoff.sla import SlaConfig, parse_duration

    parse_duration(grade_a, "--sla-grade-a")
    parse_duration(otherwise, "--sla")
    return SlaConfig(by_grade={"A": grade_a}, otherwise=otherwise)
