from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from leadscore.scoring.mlflow_runs import LINK_TAG, log_to_project_run, start_run


@pytest.fixture
def store(tmp_path, monkeypatch):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    yield MlflowClient()
    mlflow.set_tracking_uri("")


def _project_run(client, experiment: str) -> str:
    """What `mlflow run` does: a run created up front, passed in MLFLOW_RUN_ID."""
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    run = client.create_run(exp_id)
    return run.info.run_id


def test_outside_mlflow_run_a_new_run_in_the_experiment(store):
    with start_run("exp-a", run_name="plain") as run:
        pass
    assert store.get_experiment(run.info.experiment_id).name == "exp-a"
    assert log_to_project_run({"x": 1.0}) is None


def test_a_project_run_in_the_same_experiment_is_used(store, monkeypatch):
    project = _project_run(store, "exp-a")
    monkeypatch.setenv("MLFLOW_RUN_ID", project)
    with start_run("exp-a", run_name="trained") as run:
        mlflow.log_metric("auc", 0.8)
    assert run.info.run_id == project
    assert store.get_run(project).data.metrics["auc"] == 0.8


def test_a_project_run_elsewhere_links_to_a_run_in_the_asked_experiment(store, monkeypatch):
    project = _project_run(store, "Default")
    monkeypatch.setenv("MLFLOW_RUN_ID", project)
    with start_run("exp-b", run_name="trained") as run:
        pass
    assert run.info.run_id != project
    assert store.get_experiment(run.info.experiment_id).name == "exp-b"
    tags = store.get_run(project).data.tags
    assert tags[LINK_TAG] == f"exp-b/{run.info.run_id}" and "exp-b" in tags["mlflow.note.content"]


def test_figures_and_files_go_to_the_project_run(store, monkeypatch, tmp_path):
    project = _project_run(store, "Default")
    monkeypatch.setenv("MLFLOW_RUN_ID", project)
    page = tmp_path / "page.html"
    page.write_text("<p>hi</p>")
    assert log_to_project_run({"open_leads": 12}, files=[page], tags={"model": "m v1"}) == project
    run = store.get_run(project)
    assert run.data.metrics["open_leads"] == 12 and run.data.tags["model"] == "m v1"
    assert [a.path for a in store.list_artifacts(project)] == ["page.html"]
