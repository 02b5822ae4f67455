"""API keys (`Authorization: Bearer <key>`) for the scoring endpoints, as ASGI middleware.

Keys are compared by SHA-256 digest in constant time and never logged. Health and metrics
endpoints stay open.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable

PROTECTED = ("/score", "/metadata")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeyMiddleware:
    """401 for a protected path without a valid key. Keys default to `LEADSCORE_API_KEYS`,
    read when the server builds its app (not at import)."""

    def __init__(
        self, app, keys: Iterable[str] | None = None, protected: tuple[str, ...] = PROTECTED
    ) -> None:
        from serving.config import ServeConfig

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


class BodyLimitMiddleware:
    """Refuses a request body larger than `max_bytes` with 413, before it is read."""

    def __init__(self, app, max_bytes: int | None = None) -> None:
        from serving.config import ServeConfig

        self.app = app
        self.max_bytes = ServeConfig.from_env().max_body_bytes if max_bytes is None else max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                await send_json(
                    send,
                    413,
                    {"error": f"request body over {self.max_bytes} bytes", "field": "body"},
                )
                return
        await self.app(scope, receive, send)


async def send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
