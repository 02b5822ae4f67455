"""HTTP plumbing of the service, as ASGI middleware: bounded bodies, one error shape, and
client mistakes logged as one INFO line.

- Bodies are bounded whatever their framing (Content-Length or chunked).
- `/score` speaks JSON only: another Content-Type (multipart/form-data without a boundary,
  say) is a 415 before BentoML tries to parse it.
- BentoML answers a request its schema refuses with 400 `{error, detail}`; the contract
  (`leadscore.serving.schemas.Error`) is `{error, field}`, so those bodies are reshaped, naming the
  first field that is wrong.
- BentoML logs every refused request at ERROR with a traceback (3,179 fuzz requests wrote
  4.4 MB); a client's mistake is not a server error, so those records become one INFO line.
"""

from __future__ import annotations

import json
import logging

CLIENT_ERRORS = ("ValidationError", "BadInput", "JSONDecodeError", "InvalidArgument")

# The APIs that take a JSON body: bounded, JSON only, and their errors as {error, field}.
JSON_PATHS = ("/score", "/accounts/score", "/events")


class BodyLimitMiddleware:
    """Bounds request bodies, whatever their framing: a `Content-Length` over `max_bytes` is
    refused at once; a chunked (or lying) body is read up to the bound and refused with 413
    as soon as it passes it, so a worker never holds more than `max_bytes` of one request.
    The body read is replayed to the app. On the JSON endpoints, a body that is not JSON
    (e.g. multipart/form-data) is refused with 415 before BentoML tries to parse it."""

    def __init__(
        self, app, max_bytes: int | None = None, json_paths: tuple[str, ...] = JSON_PATHS
    ) -> None:
        from leadscore.serving.config import ServeConfig

        self.app = app
        self.max_bytes = ServeConfig.from_env().max_body_bytes if max_bytes is None else max_bytes
        self.json_paths = json_paths

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(send)
            return
        if scope["path"] in self.json_paths:
            kind = headers.get(b"content-type", b"application/json").split(b";")[0].strip()
            if kind.lower() != b"application/json":
                await send_json(
                    send,
                    415,
                    {
                        "error": f"expected Content-Type application/json, got {kind.decode('latin-1')[:80]!r}",
                        "field": "Content-Type",
                    },
                )
                return
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send) -> None:
        await send_json(
            send, 413, {"error": f"request body over {self.max_bytes} bytes", "field": "body"}
        )


class ErrorShapeMiddleware:
    """Reshapes BentoML's 400 `{error, detail: [{loc, msg}, ...]}` into `{error, field}`."""

    def __init__(self, app, paths: tuple[str, ...] = JSON_PATHS) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        chunks: list[bytes] = []

        async def capture(message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] == 400:
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await send_json(send, 400, reshape(b"".join(chunks)))

        await self.app(scope, receive, capture)


class JsonRefusalsMiddleware:
    """A 404 or 405 the router answers in plain text (a path no route matches: one with a
    line break in a lead id, say) becomes `{error, field}`, the one shape of refusals."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def capture(message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] in (404, 405):
                kind = dict(message.get("headers") or []).get(b"content-type", b"")
                if not kind.startswith(b"application/json"):
                    replaced = True
                    field = "path" if message["status"] == 404 else "method"
                    text = "no such path" if field == "path" else "method not allowed here"
                    await send_json(send, message["status"], {"error": text, "field": field})
                    return
            if replaced:
                return  # the plain body is dropped
            await send(message)

        await self.app(scope, receive, capture)


def reshape(body: bytes) -> dict:
    """`{error, field}` from a BentoML 400 body (unchanged when it already has that shape)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {"error": body.decode("utf-8", "replace")[:500] or "bad request", "field": "body"}
    if isinstance(data, list) and data:  # BentoML wraps some errors in a one-item tuple
        data = data[0]
    if not isinstance(data, dict):
        return {"error": "bad request", "field": "body"}
    if "field" in data:
        return data
    detail = data.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "root")]
        field = ""
        for part in loc:  # leads.0.activities.3.occurred_at -> leads[0].activities[3]...
            field += f"[{part}]" if part.isdigit() and field else f".{part}" if field else part
        field = field or "body"
        return {
            "error": str(first.get("msg", data.get("error", "invalid request"))),
            "field": field,
        }
    return {"error": str(data.get("error", "bad request")), "field": "body"}


class ClientErrorsAtInfo(logging.Filter):
    """BentoML's "Exception on /score [POST]" records for a client's mistake: one INFO line
    without the traceback. Server errors keep their level and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ in CLIENT_ERRORS:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "refused %s: %s: %s"
            record.args = (
                record.args[0] if record.args else "request",
                type(exc).__name__,
                str(exc).splitlines()[0][:200],
            )
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    """Install `ClientErrorsAtInfo` on BentoML's HTTP logger (once per worker)."""
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, ClientErrorsAtInfo) for f in logger.filters):
        logger.addFilter(ClientErrorsAtInfo())


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
