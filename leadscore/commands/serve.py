"""`leadscore serve` and `bento`: the BentoML endpoint, served directly or packed into a bento."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from leadscore.console import err, out
from leadscore.crm.errors import LeadscoreError
from leadscore.scoring.model_ref import CHAMPION_ALIAS, DEFAULT_MODEL_NAME


def serve(
    port: int = typer.Option(3000, "--port", min=1, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="0.0.0.0 to accept other machines."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Worker processes (default: cores + 1; one more than the cores keeps the CPU "
        "busy while a worker waits on Python's lock).",
    ),
    state: str | None = typer.Option(
        None,
        "--state",
        help="The online store of lead states for POST /events: sqlite:///path (default: lead_state.sqlite here), postgresql://... or redis://... (replicas on several machines share it).",
    ),
    webhook: str | None = typer.Option(
        None,
        "--webhook",
        help="Where hand-offs go the moment an event lifts a lead over the line, signed with HMAC-SHA256 (secret: $LEADSCORE_WEBHOOK_SECRET or --webhook-secret-file), as `leadscore score` sends them.",
    ),
    webhook_secret_file: Path | None = typer.Option(
        None, "--webhook-secret-file", help="A file holding the webhook's signing secret."
    ),
    history: str | None = typer.Option(
        None,
        "--history",
        help="The score history the stream's rescores are copied into every 2 s: a DuckDB file or a SQLAlchemy URL (default: score_history.duckdb here; give `leadscore score` the same).",
    ),
    handoff_grades: str = typer.Option(
        "A", "--handoff-grades", help="Model grades above the hand-off line, e.g. A or AB."
    ),
    handoff_mql: bool = typer.Option(
        True,
        "--handoff-mql/--no-handoff-mql",
        help="Whether the rules' MQL flag also puts a lead above the hand-off line.",
    ),
) -> None:
    """Serve the champion model over HTTP (BentoML): POST /score, POST /events, GET /leads/{id}, GET /metadata. The alias is resolved once, at start: every worker serves that version, also one that restarts after a promotion. SIGHUP resolves the alias again and restarts every worker on the new version, letting requests in flight finish. SIGTERM or Ctrl+C stops the server and its workers, letting requests in flight finish."""
    import os

    from leadscore.handoff.delivery import SECRET_ENV, WebhookSender, read_secret
    from leadscore.handoff.events import HandoffLine
    from leadscore.operations.history import ScoreHistory
    from leadscore.operations.stream_sync import HistorySync
    from leadscore.serving.config import ServeConfig, env_name
    from leadscore.serving.model import load_model
    from leadscore.serving.process import (
        default_workers,
        run_until_stopped,
        serve_command,
        workers_env,
    )
    from leadscore.stream.stores import default_state_url, open_store

    HandoffLine(mql=handoff_mql, grades=handoff_grades)  # refused now, not in every worker
    history = history or str(Path("score_history.duckdb").resolve())
    stream_env = {
        env_name("state_url"): state or default_state_url(),
        env_name("history_url"): history,  # its hand-off experiments (`leadscore experiment`)
        env_name("handoff_grades"): handoff_grades,
        env_name("handoff_mql"): str(handoff_mql).lower(),
    }
    if webhook is not None:
        secret = read_secret(webhook_secret_file)
        WebhookSender(webhook, secret)  # a bad URL or no secret: refused before starting
        stream_env |= {env_name("webhook_url"): webhook, SECRET_ENV: secret}
    os.environ.update(stream_env)
    config = ServeConfig.from_env()
    if not config.api_keys:
        raise LeadscoreError(
            "LEADSCORE_API_KEYS is empty: set one or more API keys (comma-separated) before serving"
        )
    workers = workers or default_workers()

    def pinned_env() -> dict[str, str]:
        """Resolve the alias once, here: every worker loads that version (a worker that
        restarts later, after a promotion, still loads it). Refuses in seconds rather than
        let BentoML restart workers that cannot start."""
        _, meta = load_model(config)
        env = {**os.environ, **workers_env(workers)}
        if meta.get("alias") is not None and not config.scorer_path:
            env[env_name("model_version")] = str(meta["version"])
        err.print(
            f"serving {meta['name']} v{meta['version']} on http://{host}:{port} with "
            f"{workers} workers",
            highlight=False,
        )
        return env

    def reload() -> dict[str, str] | None:
        """SIGHUP: the alias resolved again, all workers restarted on that version."""
        try:
            return pinned_env()
        except LeadscoreError as exc:
            err.print(f"reload refused, still serving the same version: {exc}", highlight=False)
            return None

    env = pinned_env()
    sync = HistorySync(
        open_store(stream_env[env_name("state_url")]),
        ScoreHistory(history),
    ).start()
    try:
        code = run_until_stopped(serve_command(host, port), env, reload=reload)
    finally:
        sync.stop()
    sys.exit(code)


def bento(
    model_name: str = typer.Option(
        DEFAULT_MODEL_NAME, "--model-name", help="Registered model name."
    ),
    alias: str = typer.Option(
        CHAMPION_ALIAS,
        "--alias",
        help="The alias whose version is packed (champion, challenger, ...).",
    ),
) -> None:
    """Pack a registered model into a bento: the model into BentoML's model store, then `bentoml build` of the service with the code and the pinned requirements it imports (derived from the code). `bentoml containerize <tag>` then makes the image."""
    import tempfile

    from leadscore.serving.bento import build_bento
    from leadscore.serving.model import export_to_bentoml

    tag = export_to_bentoml(model_name, alias)
    out.print(f"exported {model_name}@{alias} to the BentoML model store as {tag}")
    with tempfile.TemporaryDirectory(prefix="leadscore-bento-") as work:
        built = build_bento(tag, Path(work))
    out.print(f"built bento {built}: `bentoml containerize {built}` makes its image")
