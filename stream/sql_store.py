"""The online store on SQL: what its adapters (`leadscore.stream.sqlite_store`,
`leadscore.stream.postgres_store`) share, on the one schema of `leadscore.stream.sql_schema`.

A run reads its leads' states, held events and seen ids without the write lock, runs, then
commits its writes under the lock when the same reads give the same answer, or runs again;
the outbox, the rescores queued for the score history and the store's settings are tables
of the same database, written in the same transactions as a lead's state.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

from leadscore.crm.errors import StoreUnavailable
from leadscore.stream.sql_schema import SCHEMA
from leadscore.stream.store import DEDUPE_DAYS, DELIVERED_DAYS, unavailable

RUN_ATTEMPTS = 50  # runs done again after concurrent changes of their leads, at most
US_PER_DAY = 86_400_000_000


class _Txn:
    """A run's reads, from a snapshot taken without the write lock, and its writes, kept
    until the run commits them under the lock (`leadscore.stream.store.Txn`)."""

    def __init__(self, store: SqlStore, snapshot: dict[str, Any]):
        self.store, self.snapshot = store, snapshot
        self.writes: list[Callable[[Any], None]] = []

    def seen(self) -> set[str]:
        return set(self.snapshot["seen"])

    def states(self) -> dict[str, dict[str, Any] | None]:
        return {
            lead: (json.loads(text) if text is not None else None)
            for lead, text in self.snapshot["states"].items()
        }

    def held(self, lead_id: str) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.snapshot["held"].get(lead_id, [])]

    def dropped(self, lead_id: str) -> int:
        return int(self.snapshot["dropped"].get(lead_id, 0))

    def hold(self, lead_id: str, events: list[dict[str, Any]]) -> None:
        base = time.time_ns()  # also when it was held (drop_held)
        rows = [(e["event_id"], lead_id, json.dumps(e), base + i) for i, e in enumerate(events)]
        self.writes.append(
            lambda con: self.store._executemany(
                con,
                "INSERT INTO ls_held (event_id, lead_id, body, n) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (event_id) DO NOTHING",
                rows,
            )
        )

    def release(self, lead_id: str) -> None:
        def write(con) -> None:
            self.store._execute(con, "DELETE FROM ls_held WHERE lead_id = ?", [lead_id])
            self.store._execute(con, "DELETE FROM ls_dropped WHERE lead_id = ?", [lead_id])

        self.writes.append(write)

    def put(self, lead_id: str, state: dict[str, Any]) -> None:
        params = [lead_id, json.dumps(state, separators=(",", ":")), time.time_ns() // 1000]
        self.writes.append(
            lambda con: self.store._execute(
                con,
                "INSERT INTO ls_leads (lead_id, state, updated_us) VALUES (?, ?, ?) "
                "ON CONFLICT (lead_id) DO UPDATE SET state = excluded.state, "
                "updated_us = excluded.updated_us",
                params,
            )
        )

    def remember(self, event_ids: Iterable[tuple[str, str]], now_us: int) -> None:
        rows = [(e, lead, now_us) for e, lead in event_ids]
        self.writes.append(
            lambda con: self.store._executemany(
                con,
                "INSERT INTO ls_events (event_id, lead_id, applied_us) VALUES (?, ?, ?) "
                "ON CONFLICT (event_id) DO NOTHING",
                rows,
            )
        )

    def stage(self, key: str, events: list[dict[str, Any]], now_us: int) -> int:
        # de-duplicated against the outbox and the delivered ids when the run commits
        self.writes.append(lambda con: self.store._stage(con, key, events, now_us))
        return len(events)

    def record(self, rows: list[dict[str, Any]]) -> None:
        values = [(r["as_of_us"], r["lead_id"], json.dumps(r)) for r in rows]
        self.writes.append(
            lambda con: self.store._executemany(
                con,
                "INSERT INTO ls_history (as_of_us, lead_id, row) VALUES (?, ?, ?) "
                "ON CONFLICT (as_of_us, lead_id) DO UPDATE SET row = excluded.row",
                values,
            )
        )


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


class SqlStore:
    """What SQLite and PostgreSQL share; a connection per thread."""

    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._schema_done = False
        self.conflicts = 0  # runs done again because another run changed their leads

    # --- connections (each adapter) -----------------------------------------------

    def _connect(self):
        raise NotImplementedError

    def _begin(self, con, lead_ids: list[str]) -> None:
        raise NotImplementedError

    def _execute(self, con, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def _executemany(self, con, sql: str, rows: list[tuple]) -> None:
        raise NotImplementedError

    def _commit(self, con) -> None:
        con.commit()

    def _rollback(self, con) -> None:
        with suppress(Exception):
            con.rollback()

    def _con(self):
        con = getattr(self._local, "con", None)
        if con is None:
            with unavailable(self.url, self.errors):
                con = self._connect()
                if not self._schema_done:
                    self._create_schema(con)
                    self._schema_done = True
            self._local.con = con
        return con

    def _create_schema(self, con) -> None:
        self._begin(con, [])
        for statement in SCHEMA:
            self._execute(con, statement)
        self._commit(con)

    def _drop_connection(self) -> None:
        con = getattr(self._local, "con", None)
        self._local.con = None
        if con is not None:
            with suppress(Exception):
                con.close()

    def _transaction(self, lead_ids: list[str], work: Callable[[Any], Any]) -> Any:
        con = self._con()
        try:
            with unavailable(self.url, self.errors):
                self._begin(con, sorted(set(lead_ids)))
                result = work(con)  # statements only: a refusal is the store's
                self._commit(con)
            return result
        except StoreUnavailable:
            self._rollback(con)
            self._drop_connection()  # a broken connection is not reused
            raise
        except BaseException:
            self._rollback(con)
            raise

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self._reading(lambda con: self._execute(con, sql, params))

    def _begin_read(self, con) -> None:
        """A read transaction's start (psycopg opens one on the first statement)."""

    def _end_read(self, con) -> None:
        con.commit()

    def _end_read_quietly(self, con) -> None:
        with suppress(Exception):
            con.rollback()

    # --- the port ------------------------------------------------------------------

    def run(self, lead_ids: list[str], event_ids: list[str], work: Callable[[Any], Any]) -> Any:
        """Optimistic: the leads' states, held events and seen ids are read without the
        write lock, `work` runs (the scoring included), then, under the lock, the same reads
        again: unchanged, the run's writes are applied and committed; changed (another run
        touched these leads meanwhile), the run is done again. The lock is held for the
        writes only, never while a worker scores (a worker descheduled while holding it
        made every other wait: at 200 events/s the slowest waited seconds)."""
        for _ in range(RUN_ATTEMPTS):
            before = self._snapshot_now(lead_ids, event_ids)
            txn = _Txn(self, before)
            result = work(txn)

            def commit(con, before=before, txn=txn) -> bool:
                if self._snapshot(con, lead_ids, event_ids) != before:
                    return False
                for write in txn.writes:
                    write(con)
                return True

            if self._transaction(lead_ids, commit):
                return result
            self.conflicts += 1
        raise StoreUnavailable(
            f"{RUN_ATTEMPTS} runs in a row met concurrent changes of the same leads", 1
        )

    def _snapshot(self, con, lead_ids: list[str], event_ids: list[str]) -> dict[str, Any]:
        states: dict[str, str | None] = dict.fromkeys(lead_ids)
        held: dict[str, list[str]] = {}
        dropped: dict[str, int] = {}
        seen: set[str] = set()
        for chunk in _chunks(lead_ids):
            marks = ",".join("?" * len(chunk))
            for lead_id, state in self._execute(
                con, f"SELECT lead_id, state FROM ls_leads WHERE lead_id IN ({marks})", chunk
            ):
                states[lead_id] = state
            for lead_id, body in self._execute(
                con,
                f"SELECT lead_id, body FROM ls_held WHERE lead_id IN ({marks}) ORDER BY n",
                chunk,
            ):
                held.setdefault(lead_id, []).append(body)
            for lead_id, n in self._execute(
                con, f"SELECT lead_id, n FROM ls_dropped WHERE lead_id IN ({marks})", chunk
            ):
                dropped[lead_id] = int(n)
        for chunk in _chunks(event_ids):
            marks = ",".join("?" * len(chunk))
            for table in ("ls_events", "ls_held"):
                rows = self._execute(
                    con, f"SELECT event_id FROM {table} WHERE event_id IN ({marks})", chunk
                )
                seen |= {r[0] for r in rows}
        return {"states": states, "held": held, "seen": seen, "dropped": dropped}

    def _snapshot_now(self, lead_ids: list[str], event_ids: list[str]) -> dict[str, Any]:
        return self._reading(lambda con: self._snapshot(con, lead_ids, event_ids))

    def _reading(self, work: Callable[[Any], Any]) -> Any:
        """`work(con)` in a read transaction: no write lock (WAL readers never wait)."""
        con = self._con()
        try:
            with unavailable(self.url, self.errors):
                self._begin_read(con)
                result = work(con)
                self._end_read(con)
            return result
        except StoreUnavailable:
            self._end_read_quietly(con)
            self._drop_connection()
            raise
        except BaseException:
            self._end_read_quietly(con)
            raise

    def read(self, lead_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT state FROM ls_leads WHERE lead_id = ?", [lead_id])
        return json.loads(rows[0][0]) if rows else None

    def held_count(self, lead_id: str) -> int:
        return int(self._read("SELECT count(*) FROM ls_held WHERE lead_id = ?", [lead_id])[0][0])

    def dropped_count(self, lead_id: str) -> int:
        rows = self._read("SELECT n FROM ls_dropped WHERE lead_id = ?", [lead_id])
        return int(rows[0][0]) if rows else 0

    def drop_held(self, before_us: int) -> int:
        """Drop the events held since before `before_us`, counted per lead; how many."""
        cut = before_us * 1000  # ls_held.n: nanoseconds since the epoch when held
        leads = [
            r[0] for r in self._read("SELECT DISTINCT lead_id FROM ls_held WHERE n < ?", [cut])
        ]
        total = 0
        for chunk in _chunks(sorted(leads)):

            def go(con, chunk=chunk) -> int:
                # under the leads' locks: a run that applies them meanwhile fails its check
                marks = ",".join("?" * len(chunk))
                counts = self._execute(
                    con,
                    f"SELECT lead_id, count(*) FROM ls_held WHERE n < ? AND lead_id IN ({marks}) "
                    "GROUP BY lead_id",
                    [cut, *chunk],
                )
                self._executemany(
                    con,
                    "INSERT INTO ls_dropped (lead_id, n) VALUES (?, ?) "
                    "ON CONFLICT (lead_id) DO UPDATE SET n = ls_dropped.n + excluded.n",
                    [(lead, int(n)) for lead, n in counts],
                )
                self._execute(
                    con, f"DELETE FROM ls_held WHERE n < ? AND lead_id IN ({marks})", [cut, *chunk]
                )
                return sum(int(n) for _, n in counts)

            total += self._transaction(chunk, go)
        return total

    def _stage(self, con, key: str, events: list[dict[str, Any]], now_us: int) -> int:
        if not events:
            return 0
        ids = [e["event_id"] for e in events]
        marks = ",".join("?" * len(ids))
        done = {
            r[0]
            for table in ("ls_delivered", "ls_outbox")
            for r in self._execute(
                con, f"SELECT event_id FROM {table} WHERE event_id IN ({marks})", ids
            )
        }
        new = [e for e in events if e["event_id"] not in done]
        base = time.time_ns()
        self._executemany(
            con,
            "INSERT INTO ls_outbox (event_id, batch, body, n, due_us, owner) "
            "VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (event_id) DO NOTHING",
            [
                (e["event_id"], key, json.dumps(e, sort_keys=True), base + i, now_us)
                for i, e in enumerate(new)
            ],
        )
        return len(new)

    def stage_outbox(self, key: str, events: list[dict[str, Any]], now_us: int) -> int:
        return self._transaction([], lambda con: self._stage(con, key, events, now_us))

    def claim(
        self, owner: str, now_us: int, lease_us: int, limit: int
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        def go(con):
            keys = [
                r[0]
                for r in self._execute(
                    con,
                    "SELECT batch, min(n) AS first FROM ls_outbox WHERE due_us <= ? "
                    "GROUP BY batch ORDER BY first LIMIT ?",
                    [now_us, limit],
                )
            ]
            out = []
            for key in keys:
                self._execute(
                    con,
                    "UPDATE ls_outbox SET due_us = ?, owner = ? WHERE batch = ?",
                    [now_us + lease_us, owner, key],
                )
                rows = self._execute(
                    con, "SELECT body FROM ls_outbox WHERE batch = ? ORDER BY n", [key]
                )
                out.append((key, [json.loads(r[0]) for r in rows]))
            return out

        return self._transaction(["(outbox)"], go)  # one claimer at a time

    def delivered(self, key: str, events: list[dict[str, Any]], now_us: int) -> None:
        def go(con):
            self._executemany(
                con,
                "INSERT INTO ls_delivered (event_id, delivered_us) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO NOTHING",
                [(e["event_id"], now_us) for e in events],
            )
            self._execute(con, "DELETE FROM ls_outbox WHERE batch = ?", [key])

        self._transaction([], go)

    def retry_at(self, key: str, when_us: int) -> None:
        self._transaction(
            [],
            lambda con: self._execute(
                con, "UPDATE ls_outbox SET due_us = ?, owner = NULL WHERE batch = ?", [when_us, key]
            ),
        )

    def outbox_size(self) -> int:
        return int(self._read("SELECT count(*) FROM ls_outbox")[0][0])

    def history_rows(self, limit: int) -> list[dict[str, Any]]:
        rows = self._read("SELECT row FROM ls_history ORDER BY as_of_us LIMIT ?", [limit])
        return [json.loads(r[0]) for r in rows]

    def history_done(self, rows: list[dict[str, Any]]) -> None:
        def go(con):
            for r in rows:  # a row rescored since it was read stays (its value changed)
                self._execute(
                    con,
                    "DELETE FROM ls_history WHERE as_of_us = ? AND lead_id = ? AND row = ?",
                    [r["as_of_us"], r["lead_id"], json.dumps(r)],
                )

        self._transaction([], go)

    def meta(self, key: str) -> Any:
        rows = self._read("SELECT value FROM ls_meta WHERE key = ?", [key])
        return json.loads(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: Any) -> None:
        self._transaction(
            [],
            lambda con: self._execute(
                con,
                "INSERT INTO ls_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, json.dumps(value)],
            ),
        )

    def purge(self, now_us: int) -> None:
        def go(con):
            self._execute(
                con,
                "DELETE FROM ls_events WHERE applied_us < ?",
                [now_us - DEDUPE_DAYS * US_PER_DAY],
            )
            self._execute(
                con,
                "DELETE FROM ls_delivered WHERE delivered_us < ?",
                [now_us - DELIVERED_DAYS * US_PER_DAY],
            )

        self._transaction([], go)

    def ping(self) -> None:
        self._read("SELECT 1")

    def close(self) -> None:
        self._drop_connection()
