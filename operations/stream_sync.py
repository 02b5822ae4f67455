"""The event stream's rescores into the score history.

Each rescore of `POST /events` is kept in the online store until it is copied into the
score history (`leadscore.operations.history`, the batch's store): `leadscore serve` copies them every
`SYNC_S` seconds (one process writes the history, not every worker), and `leadscore score
--state` copies them before it reads the earlier scores, so that a batch run sees every
score the stream gave (trends, and the crossings the stream already handed off).
"""

from __future__ import annotations

import logging
import threading

import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.operations.history import ScoreHistory
from leadscore.stream.store import LeadStore

log = logging.getLogger("leadscore.stream")
SYNC_S = 2.0
ROWS_PER_STEP = 5_000


def sync_history(store: LeadStore, history: ScoreHistory, limit: int = ROWS_PER_STEP) -> int:
    """Copy the stream's rescores into the history (an upsert by as_of and lead: a copy
    interrupted and done again changes nothing), then drop them from the store; how many."""
    moved = 0
    while True:
        rows = store.history_rows(limit)
        if not rows:
            return moved
        frame = pd.DataFrame(rows)
        frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
        frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
        for col in ("rule_score",):
            frame[col] = pd.array(frame[col], dtype="Int64")
        frame["mql"] = pd.array(frame["mql"], dtype="boolean")
        history.append(frame)
        store.history_done(rows)
        moved += len(rows)
        if len(rows) < limit:
            return moved


class HistorySync:
    """`sync_history` every `every_s` seconds in a daemon thread (a failure is logged in
    one line and retried: the rows wait in the store)."""

    def __init__(self, store: LeadStore, history: ScoreHistory, every_s: float = SYNC_S) -> None:
        self.store, self.history, self.every_s = store, history, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="leadscore-history", daemon=True)
        self.moved = 0

    def start(self) -> HistorySync:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._once()  # what came in last

    def _once(self) -> None:
        try:
            self.moved += sync_history(self.store, self.history)
        except LeadscoreError as exc:
            log.warning("the stream's scores wait for the score history: %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._once()
