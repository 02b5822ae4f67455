"""Starting an MLflow run in the experiment asked for, also under `mlflow run`.

`mlflow run` creates a run of its own (in `--experiment-name`, else "Default") and passes it
in `MLFLOW_RUN_ID`; `mlflow.start_run()` then resumes it, whatever experiment our code asks
for. Here the experiment asked for wins:

- no project run: a new run in the experiment;
- the project run is in that experiment: our figures go into it (one run, as MLflow expects);
- it is in another one: a new run in the experiment asked for, and the project run gets a
  link to it (tag `leadscore.logged_run`, and its description says where to look).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

LINK_TAG = "leadscore.logged_run"


@contextmanager
def start_run(experiment: str, **kwargs) -> Iterator:
    """`mlflow.start_run(**kwargs)` in `experiment` (see the module's docstring)."""
    import mlflow
    from mlflow import MlflowClient

    project = os.environ.pop("MLFLOW_RUN_ID", None)
    target = mlflow.set_experiment(experiment)
    client = MlflowClient()
    if project and client.get_run(project).info.experiment_id == target.experiment_id:
        with mlflow.start_run(run_id=project, **kwargs) as run:
            yield run
        return
    with mlflow.start_run(**kwargs) as run:
        if project:
            client.set_tag(project, LINK_TAG, f"{experiment}/{run.info.run_id}")
            client.set_tag(
                project,
                "mlflow.note.content",
                f"Logged to experiment **{experiment}**, run `{run.info.run_id}` "
                f"({run.info.run_name}): the experiment this project's parameters asked for.",
            )
        yield run


def log_to_project_run(
    metrics: dict[str, float] | None = None, files=(), tags: dict | None = None
) -> str | None:
    """Under `mlflow run` (MLFLOW_RUN_ID set), record a command's figures and files in the
    project's run, so that `mlflow run . -e compare` (or score) leaves them where the user
    looks. Returns the run id, or None outside `mlflow run`."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return None
    from mlflow import MlflowClient

    client = MlflowClient()
    for key, value in (metrics or {}).items():
        client.log_metric(run_id, key, float(value))
    for key, value in (tags or {}).items():
        client.set_tag(run_id, key, str(value))
    for path in files:
        client.log_artifact(run_id, str(path))
    return run_id
