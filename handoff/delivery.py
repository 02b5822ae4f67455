"""Delivery of hand-off events to a webhook, through an outbox that keeps every event until
it is delivered.

The outbox (`Outbox`, JSONL next to the data) is written before the score history records
the run, and delivery comes after both: a run that dies at any point (kill -9, a timeout, a
full disk) leaves its events in the outbox, and a later run delivers them. Events are put
in batches once, when they enter the outbox, and a batch keeps its events and its
`Idempotency-Key` (a hash of its event ids) on every attempt of every run: a receiver that
keeps the keys it has seen acts once on each batch, and every event's own `event_id` is in
the body. A delivered batch's event ids go to a ledger next to the outbox (`.delivered`),
written before the outbox is rewritten: an event is never sent again after its batch was
taken, also when the same as_of is re-run.

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

import fcntl
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.folders import write_whole
from leadscore.crm.secrets import mask_urls, masked_url

SIGNATURE_HEADER = "X-Leadscore-Signature"
TIMESTAMP_HEADER = "X-Leadscore-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SECRET_ENV = "LEADSCORE_WEBHOOK_SECRET"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# The ledger of delivered event ids keeps this many, the newest (a re-run of a day long
# delivered is the only thing it guards beyond that).
LEDGER_KEEP = 200_000


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: `sha256=` + HMAC-SHA256 of `timestamp.body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """For receivers (and our tests): a constant-time check of the signature header."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def batch_key(events: list[dict]) -> str:
    """A batch's Idempotency-Key: a hash of its event ids, in order."""
    return hashlib.sha256("|".join(e["event_id"] for e in events).encode()).hexdigest()[:32]


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


class Outbox:
    """Events not yet delivered, in their batches: one JSON object per line, `{"batch":
    key, "event": {...}}` (a line that is a bare event, from an older version, is put in a
    batch when read). Runs that share an outbox take turns (a lock file next to it). Next to
    it, the ledger of delivered event ids (`<name>.delivered`, one id per line)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.ledger = self.path.with_name(self.path.name + ".delivered")

    @contextmanager
    def locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def batches(self) -> list[tuple[str, list[dict]]]:
        """The kept batches, in the order they were staged."""
        out: dict[str, list[dict]] = {}
        loose: list[dict] = []
        for n, entry in enumerate(self._lines(self.path), start=1):
            if isinstance(entry, dict) and "batch" in entry and "event" in entry:
                out.setdefault(str(entry["batch"]), []).append(entry["event"])
            elif isinstance(entry, dict) and "event_id" in entry:
                loose.append(entry)
            else:
                raise LeadscoreError(f"{self.path}, line {n}: not a JSON event")
        done = self.delivered_ids()
        kept = [(k, [e for e in b if e["event_id"] not in done]) for k, b in out.items()]
        loose = [e for e in loose if e["event_id"] not in done]
        kept += [
            (batch_key(loose[i : i + 100]), loose[i : i + 100]) for i in range(0, len(loose), 100)
        ]
        return [(k, b) for k, b in kept if b]

    def read(self) -> list[dict]:
        """The kept events, in order."""
        return [e for _, batch in self.batches() for e in batch]

    def delivered_ids(self) -> set[str]:
        if not self.ledger.is_file():
            return set()
        return {line for line in self.ledger.read_text().splitlines() if line}

    def stage(self, events: list[dict], batch_size: int) -> int:
        """Add this run's events that are neither kept nor delivered, in new batches of
        `batch_size`, durably (written, synced, renamed into place) before anything else of
        the run is recorded. Returns how many were added."""
        kept = self.batches()
        known = {e["event_id"] for _, b in kept for e in b} | self.delivered_ids()
        new = [e for e in events if e["event_id"] not in known]
        fresh = [new[i : i + batch_size] for i in range(0, len(new), batch_size)]
        self._write([*kept, *((batch_key(b), b) for b in fresh)])
        return len(new)

    def mark_delivered(self, batch: list[dict]) -> None:
        """A batch was taken: its ids to the ledger, synced, before the outbox changes."""
        with open(self.ledger, "a") as handle:
            handle.write("".join(e["event_id"] + "\n" for e in batch))
            handle.flush()
            os.fsync(handle.fileno())

    def compact(self) -> None:
        """The outbox without what was delivered; the ledger to its newest LEDGER_KEEP."""
        self._write(self.batches())
        if self.ledger.is_file():
            ids = self.ledger.read_text().splitlines()
            if len(ids) > LEDGER_KEEP:
                _durable_write(self.ledger, "".join(i + "\n" for i in ids[-LEDGER_KEEP:]))

    def _write(self, batches: list[tuple[str, list[dict]]]) -> None:
        if not any(b for _, b in batches):
            self.path.unlink(missing_ok=True)
            return
        lines = "".join(
            json.dumps({"batch": key, "event": e}, sort_keys=True) + "\n"
            for key, batch in batches
            for e in batch
        )
        _durable_write(self.path, lines)

    @staticmethod
    def _lines(path: Path) -> list:
        if not path.is_file():
            return []
        out = []
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise LeadscoreError(f"{path}, line {n}: not a JSON event ({exc.msg})") from exc
        return out


def _durable_write(path: Path, text: str) -> None:
    """`text` to `path` whole or not at all, on disk before this returns."""
    write_whole(path, lambda tmp: tmp.write_text(text), sync=True)


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


def default_outbox(data: str | Path) -> Path:
    return Path(data) / "handoff_outbox.jsonl"
