"""A new local store starts from the empty template (training/store.py)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing

import pytest


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LEADSCORE_CACHE_DIR", str(folder))
    return folder


def _experiments(db):
    with closing(sqlite3.connect(db)) as con:
        return con.execute(
            "SELECT experiment_id, name, artifact_location FROM experiments"
        ).fetchall()


def test_a_new_store_is_a_copy_of_the_template_and_opens_as_a_fresh_one(
    tmp_path, cache, monkeypatch
):
    from mlflow import MlflowClient

    from leadscore.training.store import store_lock

    for name in ("one", "two"):
        db = tmp_path / name / "mlflow.db"
        uri = f"sqlite:///{db}"
        with store_lock(uri):
            assert db.stat().st_size > 0
        assert _experiments(db) == []  # the template's default experiment was removed
        monkeypatch.chdir(db.parent)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        default = client.get_experiment("0")  # MLflow adds it, with this store's own root
        assert default.name == "Default" and str(db.parent) in default.artifact_location
        experiment = client.create_experiment("x")
        client.create_registered_model(f"m-{name}")
        assert client.get_experiment(experiment).name == "x"
    templates = list(cache.glob("empty-store-*.db"))
    assert len(templates) == 1  # built once, for the installed MLflow


def test_an_existing_store_is_left_alone(tmp_path, cache):
    from leadscore.training.store import store_lock

    db = tmp_path / "mlflow.db"
    with closing(sqlite3.connect(db)) as con, con:
        con.execute("CREATE TABLE mine (x)")
    before = db.read_bytes()
    with store_lock(f"sqlite:///{db}"):
        pass
    assert db.read_bytes() == before
    assert not cache.exists()


def test_an_unwritable_cache_leaves_mlflow_to_create_the_store(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from leadscore.training.store import store_lock

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("LEADSCORE_CACHE_DIR", str(blocked / "cache"))
    db = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{db}"
    with store_lock(uri):
        assert not db.exists()
    assert MlflowClient(tracking_uri=uri).get_experiment("0").name == "Default"
    assert os.path.getsize(db) > 0
