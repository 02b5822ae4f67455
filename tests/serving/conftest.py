from __future__ import annotations

import httpx
import pytest

API_KEY = "test-key-4f9c2a"


@pytest.fixture(scope="session")
def registry(tmp_path_factory, small_sim, small_set, trained, served_rules, account_fit):
    """A temporary MLflow store whose `lead-scoring` champion is a model trained on small_sim,
    with the points rules packed next to it (as `leadscore train` does) and an account model
    (account_sim's: the same feature set). Registered once per test run, whichever worker
    asks first (`shared`); each worker gets its own copy of the database (its servers run in
    that folder and keep their lead state there), the artifacts read where it points."""
    import shutil

    from tests.conftest import shared

    def build():
        root = tmp_path_factory.getbasetemp() / "shared-serving_store"
        root.mkdir()
        return _register_champion(root, small_sim, small_set, trained, served_rules, account_fit)

    built, _ = shared(tmp_path_factory, "serving_store", build)
    root = tmp_path_factory.mktemp("serving_store")
    shutil.copyfile(built / "mlflow.db", root / "mlflow.db")
    return root, f"sqlite:///{root / 'mlflow.db'}"


def _register_champion(root, small_sim, small_set, trained, served_rules, account_fit):
    import dataclasses

    import mlflow
    from mlflow import MlflowClient

    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.batch import build_training_set
    from leadscore.training.tracking import log_and_register
    from tests.training.conftest import FAST

    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        MlflowClient().create_experiment("serving-test", artifact_location=str(root / "artifacts"))
        df, _, _ = small_set
        ids = trained.test["lead_id"].drop_duplicates().head(2).tolist()
        with_rules = dataclasses.replace(
            trained,
            scorer=trained.scorer.with_parts(rules=served_rules, accounts=account_fit.scorer),
        )
        log_and_register(
            with_rules,
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
    from leadscore.serving.process import Server

    root, uri = registry
    folder = tmp_path_factory.mktemp("server")
    log_path = folder / "server.log"
    # Its own BentoML home: every BentoML server that starts empties the Prometheus folder
    # under its home, so the other tests' servers would wipe this one's /metrics.
    env = {
        "MLFLOW_TRACKING_URI": uri,
        "LEADSCORE_API_KEYS": f"other-key,{API_KEY}",
        "BENTOML_HOME": str(folder / "bentoml"),
    }
    with Server(env=env, cwd=root, log_path=log_path) as running:
        yield {"base": running.base, "log": log_path}


@pytest.fixture
def client(server):
    with httpx.Client(
        base_url=server["base"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    ) as c:
        yield c
