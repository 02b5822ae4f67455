"""The online store's port: one interface, three adapters chosen by a URL (`leadscore.stream.stores`).

- `sqlite:///path/lead_state.sqlite` (the embedded default, in the serving folder; WAL, so
  every worker of a server shares it), `leadscore.stream.sqlite_store`;
- `postgresql://user@host/db` (replicas on several machines), `leadscore.stream.postgres_store`;
- `redis://host:6379/0` (replicas on several machines), `leadscore.stream.redis_store`.

What the store holds, and what one `run` changes all at once or not at all:
- each lead's state (`leadscore.stream.state`), and the events held for a lead not yet known
  (dropped after a while, `drop_held`, and counted per lead until it comes);
- the ids of the events applied (a retry or a duplicate changes nothing), kept for
  `DEDUPE_DAYS`;
- the outbox of hand-off events (`leadscore.handoff.outbox`'s batches; delivered ids kept as a
  ledger), so an acknowledged hand-off is delivered even when the worker dies;
- the rescores not yet copied into the score history (`leadscore.operations.history`), moved there
  by the service in batches (`history_rows` / `history_done`).

A store that cannot answer (no server, a full disk, a lock held too long) raises
`StoreUnavailable` (`leadscore.crm.errors`): the service answers 503 with Retry-After, and nothing was applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from leadscore.crm.errors import StoreUnavailable
from leadscore.crm.secrets import masked_url
from leadscore.handoff.outbox import OutboxStore

DEDUPE_DAYS = 30  # how long an applied event id is remembered (a retry later is new)
DELIVERED_DAYS = 30  # how long a delivered hand-off id is remembered
STATE_FILE = "lead_state.sqlite"


class Txn(Protocol):
    """What one `LeadStore.run` may read and write (every write lands together)."""

    def seen(self) -> set[str]:
        """Of the run's event ids, those applied before."""

    def states(self) -> dict[str, dict[str, Any] | None]:
        """The run's leads' states (None: unknown)."""

    def held(self, lead_id: str) -> list[dict[str, Any]]: ...

    def dropped(self, lead_id: str) -> int:
        """How many events held for the lead were dropped before it came."""

    def hold(self, lead_id: str, events: list[dict[str, Any]]) -> None: ...

    def release(self, lead_id: str) -> None:
        """The lead came: its held events and its count of dropped ones go."""

    def put(self, lead_id: str, state: dict[str, Any]) -> None: ...

    def remember(self, event_ids: Iterable[tuple[str, str]], now_us: int) -> None:
        """(event_id, lead_id) pairs applied now."""

    def stage(self, key: str, events: list[dict[str, Any]], now_us: int) -> int:
        """Hand-off events into the outbox as one batch (those neither kept nor delivered
        already); how many were added."""

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Rescores for the score history (keyed by as_of_us, lead_id)."""


class LeadStore(OutboxStore, Protocol):
    """The online store: the leads' states and the runs that change them, and the outbox of
    hand-offs (`leadscore.handoff.outbox.OutboxStore`: the service's delivery and `leadscore
    score --state` take batches from it)."""

    conflicts: int  # runs done again since start: another run changed their leads meanwhile

    def run(self, lead_ids: list[str], event_ids: list[str], work: Callable[[Txn], Any]) -> Any:
        """`work(txn)` with those leads held against concurrent runs, its writes applied
        together, or none of them when it raises (an adapter may call it again)."""

    def read(self, lead_id: str) -> dict[str, Any] | None: ...

    def held_count(self, lead_id: str) -> int: ...

    def dropped_count(self, lead_id: str) -> int: ...

    def drop_held(self, before_us: int) -> int:
        """Drop the events held since before `before_us` (their lead never came), counted
        per lead; how many were dropped."""

    # the rescores on their way to the score history
    def history_rows(self, limit: int) -> list[dict[str, Any]]: ...

    def history_done(self, rows: list[dict[str, Any]]) -> None: ...

    def meta(self, key: str) -> Any: ...

    def set_meta(self, key: str, value: Any) -> None: ...

    def purge(self, now_us: int) -> None:
        """Forget applied event ids and delivered ids past their keeping time."""

    def ping(self) -> None: ...

    def close(self) -> None: ...


@contextmanager
def unavailable(url: str, errors: tuple[type[BaseException], ...]) -> Iterator[None]:
    """A store's refusal as StoreUnavailable naming the store (credentials masked)."""
    from leadscore.crm.secrets import mask_urls

    try:
        yield
    except errors as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreUnavailable(
            f"the online store {masked_url(url)} is unavailable: {mask_urls(first)[:300]}"
        ) from exc
