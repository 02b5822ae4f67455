from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

API_KEY = "test-key-4f9c2a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def registry(tmp_path_factory, small_sim, small_set, trained):
    """A temporary MLflow store whose `lead-scoring` champion is a model trained on small_sim."""
    import mlflow
    from mlflow import MlflowClient

    from features.batch import build_training_set
    from features.payloads import lead_payloads
    from tests.training.conftest import FAST
    from training.tracking import log_and_register

    root = tmp_path_factory.mktemp("serving_store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        MlflowClient().create_experiment("serving-test", artifact_location=str(root / "artifacts"))
        df, _, _ = small_set
        ids = trained.test["lead_id"].drop_duplicates().head(2).tolist()
        log_and_register(
            trained,
            config=FAST.model_copy(update={"experiment": "serving-test"}),
            feature_config={},
            training_set=df,
            source="test",
            example_payloads=lead_payloads(small_sim, ids, iso=True),
            features_for=lambda spec: build_training_set(small_sim, spec=spec)[0],
        )
    finally:
        mlflow.set_tracking_uri(previous)
    return root, uri


@pytest.fixture(scope="session")
def server(registry, tmp_path_factory):
    """The real BentoML server on a free loopback port, started once, stopped at the end."""
    root, uri = registry
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "LEADSCORE_API_KEYS": f"other-key,{API_KEY}"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                "serving.service:LeadScoring",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {Path(log_path).read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError(f"server not ready: {Path(log_path).read_text()[-3000:]}")
    yield {"base": base, "log": log_path}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def client(server):
    with httpx.Client(
        base_url=server["base"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    ) as c:
        yield c
