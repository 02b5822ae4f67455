"""A Python client for the scoring endpoint, for CRM integrations, scripts and the demo.

    from leadscore.client import Client

    with Client("http://127.0.0.1:3000", api_key) as client:
        scores = client.score(leads, as_of="2026-03-01T00:00:00Z")
        applied = client.events(events)  # POST /events: what happened in the CRM

More leads (or events) than the server takes in one request (1,000 by default) are sent in
chunks, in order. A 429 (the server's backlog is full), a 503 (the model is loading, the
store is down) or a connection error is retried after the server's `Retry-After` or with
exponential backoff, whichever is longer: scoring reads nothing and writes nothing, and
events are applied once by `event_id`, so a retry is safe. Any other refusal raises
`ScoringError` with the server's `error` and `field`, at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from leadscore.crm.errors import LeadscoreError
from leadscore.serving.schemas import EventsResponse, LeadScore

RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRY_AFTER_S = 30.0  # a server's Retry-After is followed up to this


class ScoringError(LeadscoreError):
    """The server refused a request: its status, what is wrong and which field."""

    def __init__(self, status: int, error: str, field: str | None) -> None:
        self.status, self.error, self.field = status, error, field
        super().__init__(f"{status} from the scoring server: {field or 'request'}: {error}")


class Client:
    """`score(leads)` against a running leadscore server (`leadscore serve`)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        batch_size: int = 1_000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.retries, self.backoff, self.batch_size = retries, backoff, batch_size
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def score(
        self, leads: Iterable[Mapping[str, Any]], as_of: str | None = None, reasons: bool = True
    ) -> list[LeadScore]:
        """One score per lead, in the order given (chunks of `batch_size` leads)."""
        leads = list(leads)
        out: list[LeadScore] = []
        for start in range(0, len(leads), self.batch_size):
            body: dict[str, Any] = {
                "leads": leads[start : start + self.batch_size],
                "reasons": reasons,
            }
            if as_of is not None:
                body["as_of"] = as_of
            out.extend(self._request("POST", "/score", body)["scores"])
        return out

    def events(
        self, events: Iterable[Mapping[str, Any]], as_of: str | None = None
    ) -> EventsResponse:
        """`POST /events` in chunks of `batch_size` events, in order; the answers summed
        (`accepted`, `duplicates`, `held`) and their scores one after the other."""
        events = list(events)
        out: dict[str, Any] = {"accepted": 0, "duplicates": 0, "held": 0, "scores": []}
        for start in range(0, len(events), self.batch_size):
            body: dict[str, Any] = {"events": events[start : start + self.batch_size]}
            if as_of is not None:
                body["as_of"] = as_of
            answer = self._request("POST", "/events", body)
            for key in ("accepted", "duplicates", "held"):
                out[key] += answer[key]
            out["scores"].extend(answer["scores"])
        return out  # type: ignore[return-value]

    def metadata(self) -> dict[str, Any]:
        """The model being served (`GET /metadata`)."""
        return self._request("GET", "/metadata")

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            told = 0.0  # the server's Retry-After
            try:
                response = self._http.request(method, path, json=body)
            except (httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError) as exc:
                if last:
                    raise LeadscoreError(
                        f"scoring server at {self._http.base_url} unreachable after "
                        f"{self.retries + 1} attempts ({type(exc).__name__})"
                    ) from exc
            else:
                if response.status_code == 200:
                    return response.json()
                if response.status_code not in RETRY_STATUSES or last:
                    raise _refusal(response)
                told = _retry_after(response)
            time.sleep(max(self.backoff * 2**attempt, told))
        raise AssertionError("unreachable")


def _retry_after(response: httpx.Response) -> float:
    """The seconds a refusal asks to wait (`Retry-After` in seconds; 0 when absent)."""
    try:
        return min(max(float(response.headers.get("Retry-After", 0)), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:  # an HTTP date: the backoff decides
        return 0.0


def _refusal(response: httpx.Response) -> ScoringError:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, Mapping):
        data = {}
    return ScoringError(
        response.status_code,
        str(data.get("error") or response.reason_phrase or "refused"),
        data.get("field"),
    )
