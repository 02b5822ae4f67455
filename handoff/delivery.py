"""Delivery of hand-off events to a webhook, from an outbox that keeps every event until it
is delivered (`leadscore.handoff.outbox`: the file outbox or the online store's, one
interface).

The outbox is written before the score history records the run, and delivery comes after
both: a run that dies at any point (kill -9, a timeout, a full disk) leaves its events in
the outbox, and a later run delivers them (`deliver`). A batch keeps its events and its
`Idempotency-Key` on every attempt of every run: a receiver that keeps the keys it has seen
acts once on each batch, and every event's own `event_id` is in the body.

`StreamDelivery` is a service worker's delivery loop (a daemon thread) over the online
store's outbox: woken by the worker's own hand-offs, and every `poll_s` for batches due
(retries, and batches a killed worker had leased). A batch is leased to one worker while it
is sent (`lease_s`), posted once per turn with its signature and Idempotency-Key, then
marked delivered, or due again after a backoff (doubling to `max_backoff_s`).

Requests are signed with HMAC-SHA256 over `"{timestamp}.{body}"` (headers
`X-Leadscore-Timestamp`, `X-Leadscore-Signature: sha256=<hex>`). A connection error, a
timeout, 408, 425, 429 or a 5xx is retried with exponential backoff (honouring
`Retry-After`, capped); any other status is not retried. Every bound is explicit
(`WebhookSender`): a deadline per attempt (a receiver that trickles its answer or never
answers is given up on), a deadline per run, at most `max_response_bytes` of an answer
read, and a stop after `max_failed_batches` failed batches in a row (the rest stays in the
outbox, untried, for the next run).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from leadscore.crm.errors import LeadscoreError, StoreUnavailable
from leadscore.crm.secrets import mask_urls, masked_url
from leadscore.handoff.outbox import Outbox, OutboxStore

SIGNATURE_HEADER = "X-Leadscore-Signature"
TIMESTAMP_HEADER = "X-Leadscore-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SECRET_ENV = "LEADSCORE_WEBHOOK_SECRET"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
US = 1_000_000
log = logging.getLogger("leadscore.stream")


def _now_us() -> int:
    return time.time_ns() // 1000


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: `sha256=` + HMAC-SHA256 of `timestamp.body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """For receivers (and our tests): a constant-time check of the signature header."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class Delivery:
    """What a delivery did: events delivered, still kept (with the failures), attempts, and
    why it stopped early (a deadline, too many failed batches in a row), if it did."""

    delivered: int = 0
    kept: int = 0
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    stopped: str = ""


@dataclass
class WebhookSender:
    url: str
    secret: str
    batch_size: int = 100
    max_attempts: int = 5
    backoff_s: float = 0.5  # 0.5, 1, 2, 4 s between the attempts
    max_wait_s: float = 30.0  # cap on one wait, Retry-After included
    timeout_s: float = 10.0  # connect / read / write, each
    attempt_deadline_s: float = 30.0  # one attempt, whole: connect, send, answer
    run_deadline_s: float = 300.0  # every attempt of a run together, waits included
    max_response_bytes: int = 65_536  # of an answer, read at most
    max_failed_batches: int = 3  # failed batches in a row before the run stops trying
    sleep: Callable[[float], None] = time.sleep
    _client: object = field(default=None, init=False, repr=False, compare=False)

    def _http(self):
        """One HTTP client for every attempt (its connections kept alive): making one costs
        about 18 ms here, most of it its TLS context, which a hand-off should not wait for."""
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout_s)
        return self._client

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
        """The URL fit to print: its credentials masked (`leadscore.crm.secrets`)."""
        return masked_url(self.url)

    def post_batch(self, key: str, batch: list[dict], report: Delivery, deadline: float) -> str:
        """Deliver one batch under its key, with retries; "" when taken, else why not."""
        body = json.dumps({"events": batch}, sort_keys=True).encode()
        why = ""
        for attempt in range(self.max_attempts):
            left = deadline - time.monotonic()
            if left <= 0:
                return why or "the run's delivery deadline passed"
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: key,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            }
            report.attempts += 1
            wait = self.backoff_s * 2**attempt
            status, retry_after, error = self._attempt(
                body, headers, min(left, self.attempt_deadline_s)
            )
            if error:
                why = f"{self.shown}: {error}"
            elif status < 300:
                return ""
            else:
                why = f"{self.shown}: HTTP {status}"
                if status not in RETRY_STATUSES:
                    return why + " (not retried)"
                wait = max(wait, _retry_after(retry_after))
            if attempt + 1 < self.max_attempts:
                self.sleep(min(wait, self.max_wait_s, max(deadline - time.monotonic(), 0)))
        return why + f" after {self.max_attempts} attempts"

    def _attempt(self, body: bytes, headers: dict, limit_s: float) -> tuple[int, str | None, str]:
        """One POST within `limit_s` seconds in all (status, Retry-After, error). It runs in
        a thread of its own: a receiver that trickles its answer a byte at a time keeps a
        read timeout from ever firing, so the attempt is given up on at the deadline (the
        thread ends with the connection). At most `max_response_bytes` are read."""
        result: dict = {}

        def run() -> None:
            import httpx

            try:
                timeout = httpx.Timeout(min(self.timeout_s, limit_s))
                with self._http().stream(
                    "POST", self.url, content=body, headers=headers, timeout=timeout
                ) as r:
                    read = 0
                    for chunk in r.iter_raw():
                        read += len(chunk)
                        if read >= self.max_response_bytes:
                            break  # the status is what counts; the rest is not read
                    result.update(status=r.status_code, retry=r.headers.get("Retry-After"))
            except httpx.TimeoutException:
                # httpx's own timeout and the deadline below are the same limit: whichever
                # notices first, the receiver did not answer in time.
                result["late"] = True
            except httpx.HTTPError as exc:
                result["error"] = f"{type(exc).__name__} {mask_urls(exc)}".strip()
            except Exception as exc:  # noqa: BLE001 (a malformed answer: never a traceback)
                result["error"] = f"{type(exc).__name__} {mask_urls(exc)}".strip()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(limit_s)
        if worker.is_alive() or result.get("late"):
            return 0, None, f"no complete answer within {limit_s:g} s"
        if "error" in result:
            return 0, None, result["error"]
        return result["status"], result.get("retry"), ""


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def deliver(sender: WebhookSender, outbox: Outbox) -> Delivery:
    """Send the outbox's batches, oldest first, each under its own key; a taken batch goes
    to the ledger at once; stop at the run's deadline or after `max_failed_batches` failed
    batches in a row. What is not delivered stays for the next run."""
    report = Delivery()
    deadline = time.monotonic() + sender.run_deadline_s
    with outbox.locked():
        batches = outbox.batches()
        failed_in_a_row = 0
        try:
            for n, (key, batch) in enumerate(batches):
                if time.monotonic() >= deadline:
                    report.stopped = (
                        f"the run's delivery deadline ({sender.run_deadline_s:g} s) passed"
                    )
                elif failed_in_a_row >= sender.max_failed_batches:
                    report.stopped = f"{failed_in_a_row} batches in a row failed"
                if report.stopped:
                    report.kept += sum(len(b) for _, b in batches[n:])
                    break
                why = sender.post_batch(key, batch, report, deadline)
                if why:
                    report.failures.append(why)
                    report.kept += len(batch)
                    failed_in_a_row += 1
                else:
                    outbox.mark_delivered(batch)
                    report.delivered += len(batch)
                    failed_in_a_row = 0
        finally:
            outbox.compact()
    return report


def stage(events: list[dict], sender: WebhookSender, outbox: Outbox) -> int:
    """This run's events into the outbox, under its lock (`Outbox.stage`)."""
    with outbox.locked():
        return outbox.stage(events, sender.batch_size)


def read_secret(path: str | Path | None) -> str:
    """The webhook's signing secret: from a file when one is named, else $LEADSCORE_WEBHOOK_SECRET."""
    if path is not None:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise LeadscoreError(f"--webhook-secret-file {path}: {exc.strerror}") from exc
    return os.environ.get(SECRET_ENV, "")


class StreamDelivery:
    """A service worker's delivery loop over the online store's outbox (the module's
    docstring says how it leases, posts and backs off)."""

    def __init__(
        self,
        store: OutboxStore,
        sender: WebhookSender,
        *,
        poll_s: float = 1.0,
        lease_s: float = 60.0,
        max_backoff_s: float = 300.0,
    ) -> None:
        self.store, self.sender = store, sender
        self.poll_s, self.lease_us = poll_s, int(lease_s * US)
        self.max_backoff_s = max_backoff_s
        self.owner = f"{os.getpid()}-{id(self):x}"
        self.report = Delivery()
        self._failures: dict[str, int] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> StreamDelivery:
        self._thread = threading.Thread(target=self._loop, name="leadscore-delivery", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while self.run_once() and not self._stop.is_set():
                    pass
            except StoreUnavailable as exc:
                log.warning("hand-off delivery waits for the store: %s", exc)
            except Exception:  # a bug: logged, and the loop goes on (nothing is lost)
                log.exception("hand-off delivery failed; retrying")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run_once(self, limit: int = 20) -> int:
        """Send the batches due now (at most `limit`); how many were taken."""
        now = _now_us()
        taken = 0
        for key, batch in self.store.claim(self.owner, now, self.lease_us, limit):
            if not batch:
                self.store.delivered(key, [], now)
                continue
            why = self.sender.post_batch(key, batch, self.report, time.monotonic() + 60)
            if not why:
                self.store.delivered(key, batch, _now_us())
                self.report.delivered += len(batch)
                self._failures.pop(key, None)
                taken += 1
            else:
                n = self._failures.get(key, 0) + 1
                self._failures[key] = n
                wait = min(self.sender.backoff_s * 2**n, self.max_backoff_s)
                self.store.retry_at(key, _now_us() + int(wait * US))
                self.report.failures.append(why)
                log.warning("hand-off batch %s not delivered (%s); again in %.1f s", key, why, wait)
        return taken
