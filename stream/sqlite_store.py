"""The online store on SQLite, the embedded default.

SQLite: WAL, so readers never wait for the writer and every worker process shares the file;
a run is one `BEGIN IMMEDIATE` transaction, and writers take turns through a lock file next
to the database (`flock`: the next writer starts the moment the last one commits; SQLite's
own busy wait sleeps up to 100 ms between tries, which made the slowest events wait a
second at 200 events/s), each waiting up to `BUSY_TIMEOUT_S`. `synchronous=NORMAL` (SQLite's
advice for WAL): a committed run is in the WAL file when it is acknowledged, so a worker, or
the whole service, killed the next instant loses nothing (tested with kill -9); only a crash
of the machine itself (a power cut) can lose the last commits before the next checkpoint.
`sqlite:///path?synchronous=full` syncs every commit to the disk as well: a quarter of a
worker's time at 100 events/s on this machine (py-spy), so not the default; PostgreSQL or
Redis with `appendfsync always` are the stores for that guarantee on several machines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from leadscore.stream.sql_store import SqlStore

BUSY_TIMEOUT_S = 5.0
CHECKPOINT_S = 1.0  # how often SQLite's WAL is copied into the database (off the write path)
_CHECKPOINT_LOCK = threading.Lock()


class SqliteStore(SqlStore):
    def __init__(self, url: str) -> None:
        import sqlite3

        super().__init__(url)
        # sqlite:///relative/file or sqlite:////absolute/file, as SQLAlchemy reads them;
        # ?synchronous=full: every commit synced to the disk (see the module docstring)
        rest, _, query = url.split("://", 1)[1].partition("?")
        self.path = rest[1:]
        options = dict(part.partition("=")[::2] for part in query.split("&") if part)
        self.synchronous = options.get("synchronous", "normal").upper()
        if self.synchronous not in ("NORMAL", "FULL"):
            from leadscore.crm.errors import LeadscoreError

            raise LeadscoreError(f"{url}: synchronous must be normal or full")
        self.errors = (sqlite3.OperationalError, sqlite3.DatabaseError)

    def _connect(self):
        import sqlite3
        from pathlib import Path

        folder = Path(self.path).parent
        if not folder.is_dir():
            raise sqlite3.OperationalError(f"no folder {folder} for the state file")
        con = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={self.synchronous}")
        # Checkpoints off the write path: SQLite's automatic one runs inside the commit that
        # fills the WAL, with our writers' lock still held (every writer waited for it, a
        # few hundred ms every second or two at 200 events/s); a thread does it instead.
        con.execute("PRAGMA wal_autocheckpoint=0")
        self._start_checkpoints()
        return con

    def _start_checkpoints(self) -> None:
        with _CHECKPOINT_LOCK:
            if getattr(self, "_checkpointer", None) is not None:
                return
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="leadscore-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """Every CHECKPOINT_S: copy what the WAL holds into the database (PASSIVE: without
        waiting for readers or writers; what it cannot copy waits for the next)."""
        import sqlite3

        con = None
        while True:
            time.sleep(CHECKPOINT_S)
            try:
                if con is None:
                    con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                con.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                con = None  # the next turn connects again

    def _begin(self, con, lead_ids: list[str]) -> None:
        import fcntl

        lock = getattr(self._local, "lock", None)
        if lock is None:  # one per thread: flock serialises open files, threads included
            lock = self._local.lock = open(self.path + ".lock", "a")  # noqa: SIM115
        deadline, pause = time.monotonic() + BUSY_TIMEOUT_S, 0.00005
        while True:  # short, growing pauses (to 2 ms): a free lock is taken at once
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    import sqlite3

                    raise sqlite3.OperationalError(
                        f"another writer held the state for {BUSY_TIMEOUT_S:g} s"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        try:
            con.execute("BEGIN IMMEDIATE")
        except BaseException:
            fcntl.flock(lock, fcntl.LOCK_UN)
            raise

    def _unlock(self) -> None:
        import fcntl

        lock = getattr(self._local, "lock", None)
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)

    def _execute(self, con, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return con.execute(sql, list(params)).fetchall()

    def _executemany(self, con, sql: str, rows: list[tuple]) -> None:
        if rows:
            con.executemany(sql, rows)

    def _begin_read(self, con) -> None:
        con.execute("BEGIN")  # deferred: a read snapshot, no write lock

    def _end_read(self, con) -> None:
        con.execute("COMMIT")

    def _end_read_quietly(self, con) -> None:
        with suppress(Exception):
            con.execute("ROLLBACK")

    def _commit(self, con) -> None:
        try:
            con.execute("COMMIT")
        finally:
            self._unlock()

    def _rollback(self, con) -> None:
        try:
            with suppress(Exception):
                con.execute("ROLLBACK")
        finally:
            self._unlock()
