"""The online store on PostgreSQL, for replicas on several machines: a run is one transaction
holding an advisory lock per lead (taken in sorted order: no deadlock), so runs of other
leads go in parallel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from leadscore.stream.sql_schema import SCHEMA
from leadscore.stream.sql_store import SqlStore


class PostgresStore(SqlStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        import psycopg

        self.dsn = "postgresql://" + url.split("://", 1)[1]
        self.errors = (psycopg.OperationalError, psycopg.InterfaceError)

    def _connect(self):
        import psycopg

        return psycopg.connect(self.dsn, connect_timeout=5)

    def _begin(self, con, lead_ids: list[str]) -> None:
        # psycopg opens a transaction on the first statement; the advisory locks hold the
        # run's leads against concurrent runs until commit.
        for lead_id in lead_ids:
            con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7253))", [lead_id])

    def _execute(self, con, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        cur = con.execute(sql.replace("?", "%s"), list(params))
        return cur.fetchall() if cur.description is not None else []

    def _executemany(self, con, sql: str, rows: list[tuple]) -> None:
        if rows:
            with con.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)

    def _create_schema(self, con) -> None:
        # two workers starting at once: one creates, the other waits for it
        con.execute("SELECT pg_advisory_xact_lock(7253412)")
        for statement in SCHEMA:
            con.execute(statement)
        con.commit()
