"""Delivery of hand-off events to a webhook, and the outbox that keeps what was not taken.

Events are POSTed in batches as JSON (`WebhookSender`), signed with HMAC-SHA256 over
`"{timestamp}.{body}"` (headers `X-Leadscore-Timestamp`, `X-Leadscore-Signature:
sha256=<hex>`), with an `Idempotency-Key` per batch (a hash of its event ids) and every
event's own id in the body. A connection error, a timeout, 408, 429 or a 5xx is retried
with exponential backoff (honouring `Retry-After`, capped); any other status is not
retried. Whatever is not delivered is kept in an outbox file (JSONL, `Outbox`) and sent
first on the next run (`deliver`): an event is never lost, only late.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from crm.errors import LeadscoreError
from crm.secrets import mask_urls, masked_url
from operations.events import write_events

SIGNATURE_HEADER = "X-Leadscore-Signature"
TIMESTAMP_HEADER = "X-Leadscore-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SECRET_ENV = "LEADSCORE_WEBHOOK_SECRET"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: `sha256=` + HMAC-SHA256 of `timestamp.body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """For receivers (and our tests): a constant-time check of the signature header."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class Delivery:
    """What a delivery did: events delivered, still kept (with the last failure), attempts."""

    delivered: int = 0
    kept: int = 0
    attempts: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class WebhookSender:
    url: str
    secret: str
    batch_size: int = 100
    max_attempts: int = 5
    backoff_s: float = 0.5  # 0.5, 1, 2, 4 s between the attempts
    max_wait_s: float = 30.0  # cap on one wait, Retry-After included
    timeout_s: float = 10.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise LeadscoreError(f"--webhook {self.shown!r}: not an http(s) URL")
        try:
            import httpx

            httpx.URL(self.url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise LeadscoreError(
                f"--webhook {self.shown!r}: not a valid URL ({mask_urls(exc)})"
            ) from exc
        if not self.secret:
            raise LeadscoreError(
                f"a webhook needs a signing secret: set {SECRET_ENV} (or --webhook-secret-file)"
            )

    @property
    def shown(self) -> str:
        """The URL fit to print: its credentials masked (`crm.secrets`)."""
        return masked_url(self.url)

    def send(self, events: list[dict]) -> tuple[list[dict], Delivery]:
        """Deliver in batches; returns the events not delivered and what happened."""
        import httpx

        report = Delivery()
        undelivered: list[dict] = []
        with httpx.Client(timeout=self.timeout_s) as client:
            for start in range(0, len(events), self.batch_size):
                batch = events[start : start + self.batch_size]
                ok, why = self._post(client, batch, report)
                if ok:
                    report.delivered += len(batch)
                else:
                    undelivered.extend(batch)
                    report.failures.append(why)
        report.kept = len(undelivered)
        return undelivered, report

    def _post(self, client, batch: list[dict], report: Delivery) -> tuple[bool, str]:
        import httpx

        body = json.dumps({"events": batch}, sort_keys=True).encode()
        key = hashlib.sha256("|".join(e["event_id"] for e in batch).encode()).hexdigest()[:32]
        why = ""
        for attempt in range(self.max_attempts):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: key,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            }
            report.attempts += 1
            wait = self.backoff_s * 2**attempt
            try:
                response = client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                why = f"{self.shown}: {type(exc).__name__} {mask_urls(exc)}".strip()
            else:
                if response.status_code < 300:
                    return True, ""
                why = f"{self.shown}: HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    return False, why + " (not retried)"
                wait = max(wait, _retry_after(response.headers.get("Retry-After")))
            if attempt + 1 < self.max_attempts:
                self.sleep(min(wait, self.max_wait_s))
        return False, why + f" after {self.max_attempts} attempts"


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


class Outbox:
    """Undelivered events, one JSON object per line, kept until a run delivers them. Runs
    that share an outbox take turns (a lock file next to it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        events = []
        for n, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise LeadscoreError(
                    f"{self.path}, line {n}: not a JSON event ({exc.msg})"
                ) from exc
        return events

    def replace(self, events: list[dict]) -> None:
        if events:
            write_events(events, self.path)
        else:
            self.path.unlink(missing_ok=True)


def deliver(events: list[dict], sender: WebhookSender, outbox: Outbox) -> Delivery:
    """Send the outbox's kept events first, then this run's; keep what is not delivered.
    An event already in the outbox (the same id: the same as_of re-run) is sent once."""
    with outbox.locked():
        kept = outbox.read()
        known = {e["event_id"] for e in kept}
        pending = kept + [e for e in events if e["event_id"] not in known]
        undelivered, report = sender.send(pending)
        outbox.replace(undelivered)
    return report


def default_outbox(data: str | Path) -> Path:
    return Path(data) / "handoff_outbox.jsonl"
