"""The online store's adapters for real, for every stream test that takes `backend`: an
empty SQLite file, a throwaway PostgreSQL cluster (its tables dropped per test) and a
throwaway redis-server (flushed per test)."""

from __future__ import annotations

import pytest

from tests.postgres import postgres_server
from tests.redis_server import redis_server

TABLES = (
    "ls_leads", "ls_events", "ls_held", "ls_outbox", "ls_delivered", "ls_history", "ls_meta",
    "ls_dropped",
)  # fmt: skip


@pytest.fixture(scope="module")
def pg():
    with postgres_server("stream") as server:
        yield server


@pytest.fixture(scope="module")
def rd():
    with redis_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def backend(request, tmp_path):
    """(kind, url, server) with an empty store."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'state.sqlite'}", None
        return
    if request.param == "postgresql":
        server = request.getfixturevalue("pg")
        import psycopg

        with psycopg.connect("postgresql://" + server.url.split("://", 1)[1]) as con:
            for table in TABLES:
                con.execute(f"DROP TABLE IF EXISTS {table}")
        yield "postgresql", server.url, server
        return
    server = request.getfixturevalue("rd")
    import redis

    redis.Redis.from_url(server.url).flushdb()
    yield "redis", server.url, server
