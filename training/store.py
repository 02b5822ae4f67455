"""The tracking store's side of a run: an exclusive lock on a local sqlite store, a new local
store started from an empty one already at MLflow's schema, and MLflow's registration
messages held back unless asked for."""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import closing, contextmanager
from pathlib import Path


@contextmanager
def store_lock(uri: str):
    """An exclusive lock on a local sqlite store (a `.lock` file next to it), so that two
    trainings do not race on its schema migration nor on moving the aliases; a store that
    does not exist yet is created under it (`prepare_store`). Other stores
    (a tracking server) are not locked: the alias move re-checks the champion instead."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = Path(uri[len("sqlite:///") :])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            prepare_store(path)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cache_dir() -> Path:
    """leadscore's cache folder: `LEADSCORE_CACHE_DIR`, else `$XDG_CACHE_HOME/leadscore`, else
    `~/.cache/leadscore`."""
    if os.environ.get("LEADSCORE_CACHE_DIR"):
        return Path(os.environ["LEADSCORE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "leadscore"


def _empty_store_template() -> Path | None:
    """An empty sqlite store at the installed MLflow's schema, built once per MLflow,
    SQLAlchemy and Alembic version in the cache folder (under a lock; None where it cannot
    be built, the folder unwritable say: MLflow then creates the store as usual). MLflow builds a new store by running its whole migration history
    (several seconds); the template has run it already. Its default experiment is removed:
    MLflow creates it again when a store is opened, with that store's own artifact root."""
    import alembic
    import mlflow
    import sqlalchemy

    versions = f"mlflow-{mlflow.__version__}-sqlalchemy-{sqlalchemy.__version__}"
    template = cache_dir() / f"empty-store-{versions}-alembic-{alembic.__version__}.db"
    if template.exists():
        return template
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with open(template.with_name(template.name + ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            if not template.exists():
                _build_template(template)
    except Exception as exc:  # noqa: BLE001 - any failure: MLflow creates the store itself
        import logging

        logging.getLogger("leadscore").debug("no empty-store template (%s): MLflow migrates", exc)
        return None
    return template


def _build_template(template: Path) -> None:
    import sqlite3
    import tempfile

    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with tempfile.TemporaryDirectory(dir=template.parent) as scratch:
        staged = Path(scratch) / "store.db"
        store = SqlAlchemyStore(f"sqlite:///{staged}", str(Path(scratch) / "artifacts"))
        store.engine.dispose()
        with closing(sqlite3.connect(staged)) as db, db:
            db.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            db.execute("DELETE FROM experiments WHERE experiment_id = 0")
        staged.replace(template)


def prepare_store(path: Path) -> None:
    """A local sqlite store that does not exist yet starts as a copy of the empty template
    (`_empty_store_template`) instead of MLflow's migrations; an existing store is left
    alone (MLflow checks or migrates its schema). Call under `store_lock`."""
    if path.exists() and path.stat().st_size > 0:
        return
    template = _empty_store_template()
    if template is None:
        return
    staged = path.with_name(f".{path.name}.{os.getpid()}.staged")
    shutil.copyfile(template, staged)
    staged.replace(path)


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
