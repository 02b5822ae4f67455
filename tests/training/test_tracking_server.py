"""A production tracking server: `mlflow server` on a throwaway PostgreSQL, artifacts served
from a local folder (docs/tracking-server.md). Train twice, promote, serve the champion
from it, and run two trainings at once without corrupting the aliases."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from leadscore import jobs
from leadscore.cli import app
from leadscore.client import Client
from leadscore.crm.loading import load_dataset
from leadscore.crm.payloads import lead_payloads
from leadscore.serving.process import Server, free_port
from leadscore.simulation import SimulationConfig, simulate
from leadscore.training.registry import CHAMPION_SINCE, PREVIOUS_CHAMPION, STATE
from tests.postgres import postgres_cluster
from tests.processes import stop_group

NAME = "server-model"
runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracking_server():
    """`mlflow server` on PostgreSQL, in its own process group; yields its URL."""
    with postgres_cluster("mlflow") as db, tempfile.TemporaryDirectory() as folder:
        port = free_port()
        log = open(Path(folder) / "server.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"), "server",
                "--backend-store-uri", db,
                "--artifacts-destination", str(Path(folder) / "artifacts"),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "mlflow server did not start: " + _tail(Path(folder) / "server.log")
                    )
                time.sleep(0.5)
            yield url
        finally:
            # A throwaway server: its graceful stop waits for the keep-alive connections
            # this process's MLflow client holds open (up to the whole grace).
            stop_group(proc, grace=5)
            log.close()


def _tail(path: Path) -> str:
    return path.read_text()[-2000:] if path.exists() else ""


def _leadscore(*args, url, cwd, background=False):
    command = [sys.executable, "-m", "leadscore", *args]
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    if background:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_train_promote_serve_and_concurrent_trainings(tracking_server, tmp_path):
    """The first two trainings and the promotions run in process (the jobs, the commands
    through typer's runner); the two trainings at once are two real processes."""
    url = tracking_server
    data = tmp_path / "export"  # not "crm": `python -m` puts the cwd first on sys.path
    simulate(SimulationConfig(n_leads=1_500, seed=5), data)
    fast = tmp_path / "train.yaml"
    # The registry is under test, not the evaluation: no backtest origins beyond the first.
    fast.write_text(
        f"bootstrap: 20\nbacktest_origins: 1\nexperiment: server-test\nmodel_name: {NAME}\n"
        "lightgbm:\n  max_rounds: 150\n"
    )
    stump = tmp_path / "stump.yaml"
    stump.write_text(
        fast.read_text().replace("max_rounds: 150", "max_rounds: 1")
        + "  num_leaves: 2\n  early_stopping_rounds: 1\n"
    )
    train = ("train", "--data", str(data), "--config")

    mlflow.set_tracking_uri(url)
    client = MlflowClient()
    try:
        # train twice: a weak first model, then a real one that beats it
        for config, version in ((stump, "1"), (fast, "2")):
            done = jobs.train(jobs.TrainRequest(data=data, config=config), jobs.Recorded())
            assert done.outcome.version == version and done.outcome.promoted
        assert client.get_model_version_by_alias(NAME, "champion").version == "2"
        # promote: back to v1 by rollback, then v2 again explicitly
        rolled = runner.invoke(app, ["rollback", "--model-name", NAME])
        assert rolled.exit_code == 0, rolled.output
        assert client.get_model_version_by_alias(NAME, "champion").version == "1"
        done = runner.invoke(app, ["promote", "2", "--model-name", NAME])
        assert done.exit_code == 0, done.output

        # serve the champion from the tracking server
        env = {
            "MLFLOW_TRACKING_URI": url,
            "LEADSCORE_API_KEYS": "k" * 32,
            "LEADSCORE_MODEL_NAME": NAME,
        }
        payload = lead_payloads(load_dataset(data), ["L0000001"], iso=True)
        with (
            Server(env=env, log_path=tmp_path / "bento.log") as server,
            Client(server.base, "k" * 32) as api,
        ):
            meta = httpx.get(
                f"{server.base}/metadata", headers={"Authorization": "Bearer " + "k" * 32}
            ).json()
            assert meta["name"] == NAME and meta["version"] == "2"
            scored = api.score(payload)[0]
            assert scored["model"]["version"] == "2" and 0 <= scored["probability"] <= 1

        # two trainings at once, against a weak champion: both beat it, the aliases stay whole
        assert runner.invoke(app, ["promote", "1", "--model-name", NAME]).exit_code == 0
        runs = [
            _leadscore(*train, str(fast), url=url, cwd=tmp_path, background=True) for _ in range(2)
        ]
        outputs = [run.communicate(timeout=900) for run in runs]
        for run, (_, stderr) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, stderr[-3000:]
        versions = {v.version: v for v in client.search_model_versions(f"name='{NAME}'")}
        assert set(versions) == {"1", "2", "3", "4"}
        assert all(v.tags.get(STATE) == "ready" for k, v in versions.items() if k in ("3", "4"))
        champion = client.get_model_version_by_alias(NAME, "champion")
        challenger = client.get_model_version_by_alias(NAME, "challenger")
        assert champion.version in ("3", "4") and challenger.version in ("3", "4")
        # the champion's history is whole: it replaced v1 or the other new version
        assert champion.tags[PREVIOUS_CHAMPION] in ("1", "3", "4") and champion.tags[CHAMPION_SINCE]
        promoted = [o for o, _ in outputs if "(champion" in o]
        assert 1 <= len(promoted) <= 2
    finally:
        mlflow.set_tracking_uri("")
