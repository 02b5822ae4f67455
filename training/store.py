"""The tracking store's side of a run: an exclusive lock on a local sqlite store, and MLflow's
registration messages held back unless asked for."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def store_lock(uri: str):
    """An exclusive lock on a local sqlite store (a `.lock` file next to it), so that two
    trainings do not race on its schema migration nor on moving the aliases. Other stores
    (a tracking server) are not locked: the alias move re-checks the champion instead."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = Path(uri[len("sqlite:///") :])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def registry_messages_quiet():
    """MLflow announces a registration ("Successfully registered model", "Created version")
    with print() to its log stream, not through its logger: hold that stream while its
    logger is quieter than INFO (`leadscore` without --verbose), as for its INFO lines.
    MLflow's warnings in that call are held too."""
    import logging

    from mlflow.utils import logging_utils

    stream = logging_utils.MLFLOW_LOGGING_STREAM
    if logging.getLogger("mlflow").getEffectiveLevel() <= logging.INFO:
        yield
        return
    enabled = stream.enabled
    stream.enabled = False
    try:
        yield
    finally:
        stream.enabled = enabled
