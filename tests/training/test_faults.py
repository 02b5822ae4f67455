"""Training faults: two trainings at once on a fresh store, a training killed after it
registered its model. The registry stays consistent and says what happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from leadscore.training.registry import STATE
from leadscore.training.scratch import SCRATCH_PREFIX

FAST_YAML = """\
bootstrap: 20
backtest_origins: 1
test_days: 60
validation_days: 60
lightgbm: {max_rounds: 60, early_stopping_rounds: 10}
"""


@pytest.fixture(scope="module")
def small_crm(tmp_path_factory):
    from leadscore.simulation import SimulationConfig, simulate

    path = tmp_path_factory.mktemp("faults") / "crm"
    simulate(SimulationConfig(n_leads=1_500, seed=21), path)
    return path


def _train(folder: Path, data: Path, uri: str, command="train", **env) -> subprocess.Popen:
    (folder / "train.yaml").write_text(FAST_YAML)
    log = folder / f"train-{time.monotonic_ns()}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "leadscore", command, "--data", str(data),
         "--config", str(folder / "train.yaml"), "--rules", "none.yaml"],
        cwd=folder,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri, **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    proc.log_path = log  # Popen.stdout is None when it writes to a file
    return proc


# A training as `leadscore train` runs it, whose registration stops before its last phase
# (the aliases) and waits on its stdin: the test kills it there.
VICTIM = """
import sys
from leadscore.crm.loading import load_dataset
from leadscore.crm.payloads import lead_payloads
from leadscore.features.batch import build_training_set
from leadscore.training.config import load_train_config
from leadscore.training.fit import fit_models
from leadscore.training.tracking import Registration

data, config = sys.argv[1], load_train_config(sys.argv[2])
ds = load_dataset(data)
df, spec, _ = build_training_set(ds)
result = fit_models(df, spec, config)
ids = result.test["lead_id"].drop_duplicates().head(2).tolist()
with Registration(
    result, config=config, feature_config={}, training_set=df, source=data,
    example_payloads=lead_payloads(ds, ids, iso=True),
    features_for=lambda other: build_training_set(ds, spec=other)[0],
) as registration:
    registration.log_run()
    registration.register_version()
    registration.compare_with_champion()
    print("compared", flush=True)
    sys.stdin.read()
    registration.move_aliases()
"""


def _register_then_wait(folder: Path, data: Path, uri: str) -> subprocess.Popen:
    (folder / "train.yaml").write_text(FAST_YAML)
    log = folder / f"victim-{time.monotonic_ns()}.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", VICTIM, str(data), str(folder / "train.yaml")],
        cwd=folder,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdin=subprocess.PIPE,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log
    return proc


def _log(proc: subprocess.Popen) -> str:
    return proc.log_path.read_text()[-3000:]


def _rules_free(folder: Path) -> None:
    # No points rules: the runs are about the registry, not the report.
    (folder / "none.yaml").write_text("name: none\n")


def test_two_trainings_at_once_on_a_fresh_store(small_crm, tmp_path):
    _rules_free(tmp_path)
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [_train(tmp_path, small_crm, uri) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, _log(proc)
        assert "Traceback" not in _log(proc)
    client = MlflowClient(uri)
    versions = client.search_model_versions("name='lead-scoring'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    assert {v.tags[STATE] for v in versions} == {"ready"}
    aliases = client.get_registered_model("lead-scoring").aliases
    assert {str(aliases["champion"]), str(aliases["challenger"])} <= {"1", "2"}


def test_a_killed_training_is_marked_failed_and_leaves_nothing_behind(
    small_crm, tmp_path, monkeypatch
):
    """The victim is a real process, killed -9; the trainings around it and the commands
    that read the registry afterwards run in this process (the jobs, typer's runner)."""
    import mlflow
    from typer.testing import CliRunner

    from leadscore import jobs
    from leadscore.cli import app

    runner = CliRunner()
    _rules_free(tmp_path)
    (tmp_path / "train.yaml").write_text(FAST_YAML)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    request = jobs.TrainRequest(
        data=small_crm, config=tmp_path / "train.yaml", rules=tmp_path / "none.yaml"
    )
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        assert jobs.train(request, jobs.Recorded()).outcome.version == "1"
        client = MlflowClient(uri)
        before = dict(client.get_registered_model("lead-scoring").aliases)

        # A training killed between registering and moving the aliases: a real process runs
        # the registration's phases one by one and is killed -9 where the last one would
        # start.
        victim = _register_then_wait(tmp_path, small_crm, uri)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # wait until it has registered version 2
            states = {
                str(v.version): v.tags.get(STATE)
                for v in client.search_model_versions("name='lead-scoring'")
            }
            if states.get("2") == "pending" and "compared" in victim.log_path.read_text():
                break
            assert victim.poll() is None, _log(victim)
            time.sleep(0.5)
        else:
            victim.kill()
            raise AssertionError("the training never registered its version")
        scratch = list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}{victim.pid}-*"))
        assert scratch  # its report and model folders exist while it runs
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)

        listed = runner.invoke(app, ["models"])
        assert listed.exit_code == 0, listed.output
        row = next(line for line in listed.stdout.splitlines() if line.strip().startswith("2 "))
        assert "failed" in row
        version = client.get_model_version("lead-scoring", "2")
        assert version.tags[STATE] == "failed"
        assert client.get_run(version.run_id).info.status == "KILLED"
        assert dict(client.get_registered_model("lead-scoring").aliases) == before

        # The next retrain sweeps what the kill left. Same data, same model: a tie keeps the
        # champion, and the exit code says so.
        again = runner.invoke(app, [
            "retrain", "--data", str(small_crm), "--config", str(tmp_path / "train.yaml"),
            "--rules", str(tmp_path / "none.yaml"),
        ])  # fmt: skip
        assert again.exit_code == 3, again.output[-3000:]
        assert "the champion stays (not better)" in again.output
        assert not list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}{victim.pid}-*"))
        assert str(client.get_registered_model("lead-scoring").aliases["champion"]) == "1"

        # v1 replaced no champion: rolling back is refused in one line, exit 1.
        refused = runner.invoke(app, ["rollback"])
        assert refused.exit_code == 1 and "nothing to roll back to" in refused.output
        assert "Traceback" not in refused.output
    finally:
        mlflow.set_tracking_uri(previous)
