"""The two kinds of store a run keeps its records in (a DuckDB file, or a database at a
SQLAlchemy URL), opened with one-line errors that name the store and mask its credentials.

The score history (`leadscore.operations.history`) and the experiments kept beside it
(`leadscore.experiment.records`) open their store the same way: here, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.secrets import mask_urls

DUCKDB_WAIT_S = 30.0  # how long a run waits for another run's hold on a DuckDB file


def connect_duckdb(path: Path, *, create: bool, what: str = "the score history"):
    """A connection to the DuckDB file `path` (read-only unless `create`; its folder made
    when it is). DuckDB lets one process hold a file for writing: while another run holds
    it, wait up to DUCKDB_WAIT_S, then say so in one line naming `what` the file holds."""
    import duckdb

    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + DUCKDB_WAIT_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=not create)
        except duckdb.Error as exc:
            held = "lock" in str(exc).lower()
            if held and time.monotonic() < deadline:
                time.sleep(0.2)  # another process holds the file: wait for it, bounded
                continue
            if held:
                raise LeadscoreError(
                    f"{path}: another run holds {what} (waited {DUCKDB_WAIT_S:g} s); try "
                    "again when it has finished"
                ) from exc
            raise LeadscoreError(
                f"{path}: not a readable {what.removeprefix('the ')} ({str(exc).splitlines()[0]})"
            ) from exc


def database_engine(url: str, shown: str):
    """A SQLAlchemy engine for `url` (`shown`: the URL fit to print), or one line saying
    it is not a usable database URL."""
    import sqlalchemy as sa

    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise LeadscoreError(f"{shown}: not a usable database URL ({mask_urls(exc)})") from exc


@contextmanager
def database_refusals(shown: str, what: str) -> Iterator[None]:
    """A database's refusal (a wrong password, no server, no permission) as one line naming
    the store (`shown`, its credentials masked) and `what` it holds; never a traceback."""
    import sqlalchemy as sa

    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise LeadscoreError(
            f"{shown}: {what} refused: {mask_urls(cause[0] if cause else type(exc).__name__)}"
        ) from exc
