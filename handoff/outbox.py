"""The outbox: hand-off events kept until they are delivered. One concept, one interface
(`Outbox`, what `leadscore.handoff.delivery.deliver` and `stage` work with), two adapters:

- `FileOutbox`: JSONL next to the data (`default_outbox`), the daily batch's own;
- `StoreOutbox`: the online store's outbox (`OutboxStore`, the part of the stream's store
  port, `leadscore.stream.store.LeadStore`, that keeps hand-offs; its tables are the
  stores' persistence), so that the daily batch and the stream share one outbox: a crossing
  both see (one `event_id`, `leadscore.handoff.events.crossing_id`) is delivered once.

Events are put in batches once, when they enter the outbox, and a batch keeps its events
and its `Idempotency-Key` (`batch_key`, a hash of its event ids) on every attempt of every
run. A delivered batch's event ids are kept as a ledger (the file outbox's `.delivered`
next to it, written before the outbox is rewritten; the store's delivered ids): an event is
never sent again after its batch was taken, also when the same as_of is re-run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.folders import write_whole

# The ledger of delivered event ids keeps this many, the newest (a re-run of a day long
# delivered is the only thing it guards beyond that).
LEDGER_KEEP = 200_000
US = 1_000_000


def batch_key(events: list[dict]) -> str:
    """A batch's Idempotency-Key: a hash of its event ids, in order."""
    return hashlib.sha256("|".join(e["event_id"] for e in events).encode()).hexdigest()[:32]


class Outbox(Protocol):
    """Where hand-off events wait for delivery, in their batches (`FileOutbox`,
    `StoreOutbox`)."""

    @property
    def path(self) -> Path | str:
        """Where undelivered events are kept, fit to print."""

    def locked(self) -> AbstractContextManager[Outbox]:
        """The outbox held by this run (runs sharing it take turns)."""

    def batches(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """The kept batches (key, events), in the order they were staged."""

    def read(self) -> list[dict[str, Any]]:
        """The kept events, in order."""

    def mark_delivered(self, batch: list[dict[str, Any]]) -> None:
        """A batch was taken: never sent again."""

    def compact(self) -> None:
        """Drop what was delivered."""

    def stage(self, events: list[dict[str, Any]], batch_size: int) -> int:
        """Add the events neither kept nor delivered, in new batches; how many were added."""


class OutboxStore(Protocol):
    """The outbox part of the online store's port (`leadscore.stream.store.LeadStore`):
    batches staged, leased to one owner while they are sent, marked delivered (their ids
    kept as a ledger) or due again later."""

    url: str

    def claim(
        self, owner: str, now_us: int, lease_us: int, limit: int
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        """Batches due now, leased to `owner` for `lease_us` (another worker skips them)."""

    def stage_outbox(self, key: str, events: list[dict[str, Any]], now_us: int) -> int: ...

    def delivered(self, key: str, events: list[dict[str, Any]], now_us: int) -> None: ...

    def retry_at(self, key: str, when_us: int) -> None: ...

    def outbox_size(self) -> int: ...


def _now_us() -> int:
    return time.time_ns() // 1000


class FileOutbox:
    """The file outbox: events not yet delivered, in their batches, one JSON object per line,
    `{"batch": key, "event": {...}}` (a line that is a bare event, from an older version, is
    put in a batch when read). Runs that share an outbox take turns (a lock file next to it). Next to
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


class StoreOutbox:
    """The online store's outbox behind the outbox's interface (`Outbox`, as `FileOutbox`)."""

    def __init__(self, store: OutboxStore, lease_s: float = 600.0) -> None:
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


def default_outbox(data: str | Path) -> Path:
    return Path(data) / "handoff_outbox.jsonl"
