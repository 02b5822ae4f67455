"""API keys (`Authorization: Bearer <key>`) for the scoring endpoints, as ASGI middleware.

Keys are compared by SHA-256 digest in constant time and never logged. Health and metrics
endpoints stay open.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from leadscore.serving.http import send_json

PROTECTED = ("/score", "/accounts", "/metadata", "/events", "/leads")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeyMiddleware:
    """401 for a protected path without a valid key. Keys default to `LEADSCORE_API_KEYS`,
    read when the server builds its app (not at import)."""

    def __init__(
        self, app, keys: Iterable[str] | None = None, protected: tuple[str, ...] = PROTECTED
    ) -> None:
        from leadscore.serving.config import ServeConfig

        self.app = app
        self.digests = [
            _digest(k) for k in (ServeConfig.from_env().api_keys if keys is None else keys)
        ]
        self.protected = protected

    def allowed(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return False
        digest = _digest(key.strip())
        ok = False
        for known in self.digests:  # no early exit: constant time in the number of keys
            ok |= secrets.compare_digest(digest, known)
        return ok

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith(self.protected)
            and scope.get("method") != "OPTIONS"
        ):
            headers = dict(scope.get("headers") or [])
            header = headers.get(b"authorization")
            if not self.allowed(header.decode("latin-1") if header else None):
                await send_json(
                    send,
                    401,
                    {"error": "missing or invalid API key", "field": "Authorization"},
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        await self.app(scope, receive, send)
