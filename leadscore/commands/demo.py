"""`leadscore demo`: the main job end to end on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.commands.compare import print_comparison
from leadscore.console import load, out, print_summary, progress, step
from leadscore.scoring.model_ref import DEFAULT_MODEL_URI


def demo(
    out_dir: Path = typer.Option(Path("demo"), "--out", help="Working folder of the demo."),
    leads: int = typer.Option(20_000, "--leads", min=100, help="Simulated leads."),
    seed: int = typer.Option(
        42, "--seed", min=0, help="Random seed of the simulated CRM: same seed, same data."
    ),
) -> None:
    """The main job end to end on embedded defaults: simulate a CRM, validate, build features, train, serve, and report the model against the points rules."""
    from leadscore.crm.summary import summarize_dataset
    from leadscore.features.batch import build_training_set
    from leadscore.features.training_set import write_training_set
    from leadscore.simulation.config import AccountsConfig, SimulationConfig
    from leadscore.simulation.simulator import simulate as run_simulation

    data = out_dir / "crm"
    out.rule("1. simulate a CRM")
    with step(f"simulating {leads:,} leads"):
        # B2B: leads in buying groups, so that the run shows account scores too
        config = SimulationConfig(n_leads=leads, seed=seed, accounts=AccountsConfig())
        counts = run_simulation(config, data, overwrite=True)
    out.print(
        f"{counts['leads']:,} leads, {counts['activities']:,} activities, {counts['deals']:,} deals in {data}"
    )
    out.rule("2. load and validate")
    ds = load(data)
    print_summary(summarize_dataset(ds))
    out.rule("3. point-in-time training set")
    with step("building the point-in-time training set"):
        df, spec, stats = build_training_set(ds)
        path = write_training_set(df, spec, stats, out_dir / "training_set.parquet")
    out.print(
        f"{stats['snapshots']:,} snapshots ({stats['positives'] / max(stats['snapshots'], 1):.1%} positive), "
        f"{len(spec.feature_names)} features ({spec.version}); dropped {stats['dropped_censored']:,} censored "
        f"and {stats['dropped_closed']:,} closed snapshots -> {path}"
    )
    out.rule("4. train, calibrate, evaluate out of time; MLflow")
    from leadscore.commands.train import print_training
    from leadscore.jobs.train import TrainRequest, train

    training = train(TrainRequest(data=data, training_set=path), progress)
    result, comparison = training.result, training.comparison
    print_training(result, training.outcome, training.config.model_name)
    out.rule("5. serve the champion (BentoML) and score a few leads")
    key, request_path = serve_demo(ds, result, out_dir)
    if comparison is not None:
        from leadscore.training.report_page import write_report

        out.rule("6. the marketing report: model vs points rules")
        html_path, _ = write_report(comparison, out_dir / "reports" / "compare.html")
        print_comparison(comparison, html_path)
    out.rule("7. a simulated week: the open pipeline scored daily, trends and hand-off events")
    week_demo(ds, data, out_dir)
    out.rule("8. monitoring: drift since training, matured calibration, verdict")
    monitor_demo(ds, out_dir)
    out.rule("open what the demo made")
    print_next_steps(out_dir, key, request_path)


def week_demo(ds, data: Path, out_dir: Path) -> None:
    """Score the open pipeline once a day over the data's last 7 days (the champion, history
    in the data folder), print each day's counts and hand-off events, and keep the last
    day's files."""
    import pandas as pd

    from leadscore.commands.operations import print_events
    from leadscore.handoff.events import HandoffLine, summarize, write_events
    from leadscore.operations.history import ScoreHistory, default_store
    from leadscore.operations.pipeline import write_scores
    from leadscore.operations.runs import score_and_record
    from leadscore.scoring.mlflow_model import load_pinned_scorer

    scorer, which = load_pinned_scorer(DEFAULT_MODEL_URI)
    history = ScoreHistory(default_store(data))
    line = HandoffLine()
    end = pd.Timestamp(ds.data_end).floor("D")
    with step("scoring the open pipeline once a day") as detail:
        for day in pd.date_range(end - pd.Timedelta(days=6), end, freq="D"):
            detail(str(day.date()))
            run = score_and_record(ds, scorer, which, day, history=history, line=line)
            frame = run.scores
            grades = frame["grade"].value_counts()
            trends = frame["trend"].value_counts()
            events = summarize(run.events)
            out.print(
                f"{day.date()}: {len(frame):,} open leads; grade A {grades.get('A', 0):,}, "
                f"MQL {int(frame['mql'].sum()) if frame['mql'].notna().any() else 0:,}; "
                f"improving {trends.get('improving', 0):,}, declining {trends.get('declining', 0):,}, "
                f"steady {trends.get('steady', 0):,}; hand-offs {events['crossed_handoff_line']:,}, "
                f"grades up {events['grade_up']:,}, down {events['grade_down']:,}"
            )
    path = write_scores(frame, out_dir / "scores.parquet")
    events_path = write_events(run.events, out_dir / "scores.events.jsonl")
    out.print("the last day:")
    print_events(run.events, events_path, line, show=3)
    out.print(
        f"the last day's scores -> {path}; history in {history.shown} "
        f"(`leadscore history {frame['lead_id'].iloc[0]} --data {data}`)"
    )


def monitor_demo(ds, out_dir: Path) -> None:
    """`leadscore monitor` on the demo's data with the champion: page, JSON, MLflow run."""
    from leadscore.commands.operations import print_monitor
    from leadscore.operations.monitor import monitor
    from leadscore.operations.monitor_page import log_monitor, write_monitor
    from leadscore.scoring.mlflow_model import load_pinned_scorer

    scorer, which = load_pinned_scorer(DEFAULT_MODEL_URI)
    with step("monitoring: the pipeline now, then, and one horizon ago"):
        report = monitor(ds, scorer, which)
    html_path, json_path = write_monitor(report, out_dir / "reports" / "monitor.html")
    print_monitor(report, html_path)
    log_monitor(report, html_path, json_path)


def serve_demo(ds, result, out_dir: Path) -> None:
    """Start the real server with a fresh API key, score three leads, show a curl, stop."""
    import json
    import secrets
    from contextlib import ExitStack

    import mlflow

    from leadscore.client import Client
    from leadscore.crm.payloads import lead_payloads
    from leadscore.serving.process import Server

    key = secrets.token_urlsafe(24)
    # The best, a middling and the weakest lead of the test set, each at its own as_of,
    # with what the CRM knew then.
    ranked = result.test.sort_values("p_model", ascending=False).reset_index(drop=True)
    picks = ranked.iloc[[0, len(ranked) // 2, len(ranked) - 1]]
    payloads = {p["lead_id"]: p for p in lead_payloads(ds, picks["lead_id"], iso=True)}
    bodies = []
    for row in picks.itertuples():
        when = row.as_of.isoformat()
        lead = payloads[row.lead_id]
        lead = {
            **lead,
            "activities": [a for a in lead["activities"] if a["occurred_at"] <= when],
            "deals": [d for d in lead["deals"] if d["created_at"] <= when],
        }
        bodies.append({"leads": [lead], "as_of": when})
    request_path = out_dir / "score_request.json"
    request_path.parent.mkdir(parents=True, exist_ok=True)
    request_path.write_text(json.dumps(bodies[0]))
    env = {
        "LEADSCORE_API_KEYS": key,
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "LEADSCORE_STATE_URL": f"sqlite:///{(out_dir / 'lead_state.sqlite').resolve()}",
    }
    (out_dir / "lead_state.sqlite").unlink(missing_ok=True)
    with ExitStack() as stack:
        with step("starting the BentoML server"):
            server = stack.enter_context(Server(env=env))
        client = stack.enter_context(Client(server.base, key))
        out.print(f"the BentoML server answers at {server.base} (it stops with the demo)")
        for body in bodies:
            s = client.score(body["leads"], as_of=body["as_of"])[0]
            up = "; ".join(r["text"] for r in s["reasons"]["positive"][:2]) or "-"
            down = "; ".join(r["text"] for r in s["reasons"]["negative"][:2]) or "-"
            rules = (
                f"; rules: {s['rule_score']} points, grade {s['rule_grade']}, {'MQL' if s['mql'] else 'not MQL'}"
                if s.get("rule_score") is not None
                else ""
            )
            out.print(
                f"{s['lead_id']} at {body['as_of'][:10]}: p={s['probability']:.3f}, score {s['score']}, grade {s['grade']} "
                f"(model v{s['model']['version']}){rules}\n    up: {up}\n    down: {down}"
            )
        stream_demo(
            ds,
            server.base,
            key,
            picks.iloc[0],
            client.score(bodies[0]["leads"], as_of=bodies[0]["as_of"])[0],
        )
    return key, request_path


def stream_demo(ds, base: str, key: str, pick, scored: dict) -> None:
    """The best lead's history sent as the CRM's events (POST /events) in time order, and
    the score the stream keeps for it: the one /score gave for the whole payload."""
    import httpx

    from leadscore.crm.payloads import dataset_events

    events = [e for e in dataset_events(ds, until=pick.as_of) if e["lead_id"] == pick.lead_id]
    headers = {"Authorization": f"Bearer {key}"}
    handed = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        for event in events:
            r = http.post("/events", json={"events": [event], "as_of": event["occurred_at"]})
            r.raise_for_status()
            handed += [s["as_of"] for s in r.json()["scores"] if s["handoff"]]
        state = http.get(f"/leads/{pick.lead_id}", params={"as_of": pick.as_of.isoformat()}).json()
    when = f"handed off at {handed[0][:16]}" if handed else "not handed off"
    out.print(
        f"the same lead as {len(events)} CRM events (POST /events, one at a time): "
        f"p={state['probability']:.3f} from its stored state (/score: {scored['probability']:.3f}), "
        f"{when}; GET /leads/{pick.lead_id} has its last {len(state['last_scores'])} scores"
    )


def print_next_steps(out_dir: Path, key: str, request_path: Path) -> None:
    """The demo's last lines: how to open what it made."""
    import shutil
    import sys

    import mlflow

    def tool(name: str) -> str:  # `mlflow`, or `.venv/bin/mlflow` when the venv is not on PATH
        here = Path(sys.executable).parent / name
        if shutil.which(name) == str(here):
            return name
        try:
            return str(here.relative_to(Path.cwd()))
        except ValueError:
            return str(here)

    uri = mlflow.get_tracking_uri()
    reports = out_dir / "reports"
    lines = [
        ("the marketing report", str(reports / "compare.html")),
        ("the monitoring report", str(reports / "monitor.html")),
        (
            "runs and models in MLflow",
            f"{tool('mlflow')} ui --backend-store-uri {uri} --port 5000, then http://127.0.0.1:5000",
        ),
        ("the scoring endpoint", f"LEADSCORE_API_KEYS={key} {tool('leadscore')} serve --port 3000"),
        (
            "then, in another shell",
            f"curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
            f"-d @{request_path} http://127.0.0.1:3000/score",
        ),
    ]
    width = max(len(label) for label, _ in lines)
    for label, text in lines:
        out.print(f"  {label:<{width}}  {text}", soft_wrap=True, highlight=False)
