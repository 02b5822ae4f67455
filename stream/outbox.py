"""The store's outbox, delivered: by each worker of the service as soon as a hand-off is
staged, and by `leadscore score --state` through `leadscore.handoff.delivery.deliver`.

`StreamDelivery` is a worker's delivery loop (a daemon thread): woken by the worker's own
hand-offs, and every `poll_s` for batches due (retries, and batches a killed worker had
leased). A batch is leased to one worker while it is sent (`lease_s`), posted once per turn
with the batch's signature and Idempotency-Key (`leadscore.handoff.delivery.WebhookSender`), then
marked delivered, or due again after a backoff (doubling to `max_backoff_s`).

`StoreOutbox` gives the store's outbox the shape `leadscore.handoff.delivery.deliver` and `stage`
work with (the file outbox's), so the daily batch and the stream share one outbox: a
crossing both see (one `event_id`, `leadscore.handoff.events.crossing_id`) is delivered once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Any

from leadscore.handoff.delivery import Delivery, WebhookSender, batch_key
from leadscore.stream.store import LeadStore, StoreUnavailable

log = logging.getLogger("leadscore.stream")
US = 1_000_000


def _now_us() -> int:
    return time.time_ns() // 1000


class StreamDelivery:
    def __init__(
        self,
        store: LeadStore,
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


class StoreOutbox:
    """The store's outbox in the file outbox's shape (`leadscore.handoff.delivery.Outbox`)."""

    def __init__(self, store: LeadStore, lease_s: float = 600.0) -> None:
        self.store = store
        self.lease_us = int(lease_s * US)
        self.owner = f"batch-{os.getpid()}"
        self._claimed: list[tuple[str, list[dict[str, Any]]]] = []
        self._done: set[str] = set()

    @property
    def path(self) -> str:
        """Where undelivered events are kept, fit to print (credentials masked)."""
        from leadscore.crm.secrets import masked_url

        return f"the online store's outbox ({masked_url(self.store.url)})"

    @contextmanager
    def locked(self):
        """The due batches leased to this run (a worker skips them while it runs)."""
        self._claimed = self.store.claim(self.owner, _now_us(), self.lease_us, 1_000_000)
        self._done = set()
        try:
            yield self
        finally:
            now = _now_us()
            for key, _ in self._claimed:
                if key not in self._done:
                    self.store.retry_at(key, now)  # undelivered: due again at once
            self._claimed = []

    def batches(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return list(self._claimed)

    def read(self) -> list[dict[str, Any]]:
        return [e for _, b in self._claimed for e in b]

    def mark_delivered(self, batch: list[dict[str, Any]]) -> None:
        key = next(k for k, b in self._claimed if b is batch or b == batch)
        self.store.delivered(key, batch, _now_us())
        self._done.add(key)

    def compact(self) -> None:
        """Nothing to compact: delivered batches left the store's outbox when taken."""

    def stage(self, events: list[dict[str, Any]], batch_size: int) -> int:
        added = 0
        for i in range(0, len(events), batch_size):
            part = events[i : i + batch_size]
            added += self.store.stage_outbox(batch_key(part), part, _now_us())
        return added
