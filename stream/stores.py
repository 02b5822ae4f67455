"""The online store of a URL: the adapter its scheme names (the port: `leadscore.stream.store`).

Apart from the port, so that the adapters import the port and this module imports them:
no import circle.
"""

from __future__ import annotations

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.secrets import masked_url
from leadscore.stream.store import STATE_FILE, LeadStore


def open_store(url: str) -> LeadStore:
    """The adapter of a store URL; a LeadscoreError naming the URL (credentials masked)
    for a scheme we do not know."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from leadscore.stream.sqlite_store import SqliteStore

        return SqliteStore(url)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        from leadscore.stream.postgres_store import PostgresStore

        return PostgresStore(url)
    if scheme in ("redis", "rediss", "unix"):
        from leadscore.stream.redis_store import RedisStore

        return RedisStore(url)
    raise LeadscoreError(
        f"--state {masked_url(url)!r}: expected sqlite:///path, postgresql://... or redis://..."
    )


def default_state_url(folder: str = ".") -> str:
    """The embedded store in `folder` (the serving folder by default)."""
    from pathlib import Path

    return f"sqlite:///{(Path(folder) / STATE_FILE).resolve()}"
