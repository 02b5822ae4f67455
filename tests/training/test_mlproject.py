"""The MLproject: every entry point runs a real `leadscore` command with options that exist,
and `mlflow run` trains into the experiment its parameter names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import typer
import yaml
from mlflow import MlflowClient

from leadscore.cli import app
from leadscore.scoring.mlflow_runs import LINK_TAG
from tests.training.conftest import fast_yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((ROOT / "MLproject").read_text())


def _options(path: list[str]) -> set[str]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {opt for p in command.params for opt in getattr(p, "opts", [])}


@pytest.mark.parametrize("entry", sorted(PROJECT["entry_points"]))
def test_every_entry_point_calls_existing_options(entry):
    spec = PROJECT["entry_points"][entry]
    params = spec.get("parameters", {})
    for name in re.findall(r"\{(\w+)\}", spec["command"]):
        assert name in params, f"{entry}: {{{name}}} is not a parameter"
    for call in re.findall(r"leadscore ([a-z]+)((?: [^;|&]*)?)", spec["command"]):
        command, rest = call
        options = set(re.findall(r"(--[a-z-]+)", rest))
        assert options <= _options([command]), (entry, options - _options([command]))
    assert {"main", "train", "compare", "score", "monitor"} <= set(PROJECT["entry_points"])


def _clean_environ() -> dict[str, str]:
    """This process's environment without the experiment or run that in-process tests left
    behind (`mlflow.set_experiment` exports MLFLOW_EXPERIMENT_ID for subprocesses)."""
    leftover = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")
    return {k: v for k, v in os.environ.items() if k not in leftover}


def _mlflow_run(*args, env):
    bin_dir = str(Path(sys.executable).parent)
    return subprocess.run(
        [str(Path(bin_dir) / "mlflow"), "run", str(ROOT), "--env-manager", "local", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**_clean_environ(), **env, "PATH": bin_dir + os.pathsep + os.environ["PATH"]},
    )


@pytest.mark.slow
def test_mlflow_run_main_then_compare(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri}
    data = tmp_path / "crm"
    fast = tmp_path / "train.yaml"
    fast.write_text(fast_yaml())
    done = _mlflow_run(
        "-P", f"data={data}", "-P", "leads=1500", "-P", "experiment=project-exp",
        "-P", "model_name=project-model", "-P", f"config={fast}", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (data / "leads.csv").is_file() or (data / "leads.parquet").is_file()

    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient()
        # the training run is in the experiment the parameter named...
        trained = client.search_runs([client.get_experiment_by_name("project-exp").experiment_id])
        assert len(trained) == 1 and "LightGBM" in trained[0].info.run_name
        champion = client.get_model_version_by_alias("project-model", "champion")
        assert champion.run_id == trained[0].info.run_id
        # ... and `mlflow run`'s own run (in Default) links to it
        project = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
        assert project[0].data.tags[LINK_TAG] == f"project-exp/{trained[0].info.run_id}"

        report = tmp_path / "compare.html"
        compared = _mlflow_run(
            "-e", "compare", "-P", f"data={data}", "-P", "model=models:/project-model@champion",
            "-P", f"out={report}", env=env,
        )  # fmt: skip
        assert compared.returncode == 0, compared.stderr[-3000:]
        runs = client.search_runs(
            [client.get_experiment_by_name("Default").experiment_id],
            order_by=["start_time DESC"],
        )
        files = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
        assert {"compare.html", "compare.csv"} <= files
        assert runs[0].data.metrics["test_roc_auc_model"] > 0.5
    finally:
        mlflow.set_tracking_uri("")
