"""Hand-off events: the leads a scoring run should put in front of sales, as JSONL and,
optionally, POSTed to a webhook.

A lead gets one event per run when, against its latest stored score before the run:
- it **crossed the hand-off line**: it is above the line now and was not (or had no
  earlier score: a new lead above the line is handed off too). The line is configurable
  (`HandoffLine`): the rules' MQL flag, and/or model grades (default: MQL or grade A);
- its **grade changed** (the model's A-D grade), up or down.

Each event has an `event_id` derived from (lead, as_of, model version, triggers): re-running
the same as_of yields the same ids, so a receiver that keeps the ids it has seen (the
`Idempotency-Key` header) never acts twice on one event.

Delivery (`WebhookSender`): events are POSTed in batches as JSON, signed with HMAC-SHA256
over `"{timestamp}.{body}"` (headers `X-Leadscore-Timestamp`, `X-Leadscore-Signature:
sha256=<hex>`), with an `Idempotency-Key` per batch (a hash of its event ids) and every
event's own id in the body. A connection error, a timeout, 408, 429 or a 5xx is retried
with exponential backoff (honouring `Retry-After`, capped); any other status is not
retried. Whatever is not delivered is kept in an outbox file (JSONL) and sent first on the
next run: an event is never lost, only late.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crm.errors import LeadscoreError
from scoring.grades import GRADES

SIGNATURE_HEADER = "X-Leadscore-Signature"
TIMESTAMP_HEADER = "X-Leadscore-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SECRET_ENV = "LEADSCORE_WEBHOOK_SECRET"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HandoffLine:
    """Above the line: the rules call the lead an MQL (`mql`), or the model's grade is one
    of `grades`. Either part can be switched off; not both."""

    mql: bool = True
    grades: str = "A"

    def __post_init__(self) -> None:
        bad = sorted(set(self.grades.upper()) - set(GRADES))
        if bad:
            raise LeadscoreError(f"hand-off grades {self.grades!r}: {', '.join(bad)} not in A-D")
        if not self.mql and not self.grades:
            raise LeadscoreError("the hand-off line needs the MQL flag or at least one grade")

    def describe(self) -> str:
        parts = (["rules MQL"] if self.mql else []) + (
            [f"model grade {' or '.join(self.grades.upper())}"] if self.grades else []
        )
        return " or ".join(parts)

    def above(self, grade: pd.Series, mql: pd.Series) -> np.ndarray:
        hit = grade.astype(object).isin(list(self.grades.upper())).to_numpy()
        if self.mql:
            hit = hit | mql.astype("boolean").fillna(False).to_numpy(dtype=bool)
        return hit


def handoff_events(
    scores: pd.DataFrame,
    previous: pd.DataFrame,
    line: HandoffLine = HandoffLine(),
    *,
    reasons: Mapping[str, Sequence[list[str]]],
) -> list[dict]:
    """The run's events. `scores`: the run's rows (operations.pipeline.COLUMNS); `previous`:
    each lead's latest stored row before this run (lead_id, grade, mql; may be empty);
    `reasons`: each row's worded reasons as lists (`reasons_up`, `reasons_down`), as the
    scoring call returned them (never split back out of the file's text)."""
    if scores.empty:
        return []
    prev = (
        previous.drop_duplicates("lead_id", keep="last").set_index("lead_id")
        if len(previous)
        else pd.DataFrame(columns=["grade", "mql"])
    )
    ids = scores["lead_id"].astype(str)
    prev_grade = prev["grade"].reindex(ids).reset_index(drop=True)
    prev_mql = prev["mql"].reindex(ids).reset_index(drop=True)
    seen = prev_grade.notna().to_numpy()
    now_above = line.above(
        scores["grade"].reset_index(drop=True), scores["mql"].reset_index(drop=True)
    )
    was_above = line.above(prev_grade, prev_mql) & seen
    crossed = now_above & ~was_above
    changed = seen & (
        prev_grade.astype(object).to_numpy() != scores["grade"].astype(object).to_numpy()
    )
    events = []
    for i in np.flatnonzero(crossed | changed):
        row = scores.iloc[i]
        triggers = (["crossed_handoff_line"] if crossed[i] else []) + (
            ["grade_changed"] if changed[i] else []
        )
        worded = {name: list(reasons[name][i]) for name in ("reasons_up", "reasons_down")}
        events.append(_event(row, triggers, prev_grade.iloc[i] if seen[i] else None, line, worded))
    return events


def _event(
    row: pd.Series, triggers: list[str], previous_grade, line: HandoffLine, worded: dict
) -> dict:
    as_of = pd.Timestamp(row["as_of"]).isoformat()
    key = "|".join(
        [str(row["lead_id"]), as_of, str(row["model_name"]), str(row["model_version"]), *triggers]
    )
    return {
        "event_id": hashlib.sha256(key.encode()).hexdigest()[:32],
        "type": "lead.handoff" if "crossed_handoff_line" in triggers else "lead.grade_changed",
        "triggers": triggers,
        "handoff_line": line.describe(),
        "lead_id": str(row["lead_id"]),
        "as_of": as_of,
        "probability": float(row["probability"]),
        "score": int(row["score"]),
        "grade": str(row["grade"]),
        "previous_grade": None if previous_grade is None else str(previous_grade),
        "rule_score": None if pd.isna(row["rule_score"]) else int(row["rule_score"]),
        "rule_grade": None if pd.isna(row["rule_grade"]) else str(row["rule_grade"]),
        "mql": None if pd.isna(row["mql"]) else bool(row["mql"]),
        "trend": str(row.get("trend", "not enough history")),
        "reasons_up": worded["reasons_up"],
        "reasons_down": worded["reasons_down"],
        "model": {"name": str(row["model_name"]), "version": str(row["model_version"])},
    }


def write_events(events: list[dict], path: str | Path) -> Path:
    """One JSON object per line, written whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
    tmp.replace(path)
    return path


# --- delivery ------------------------------------------------------------------------------


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
            raise LeadscoreError(f"--webhook {self.url!r}: not an http(s) URL")
        if not self.secret:
            raise LeadscoreError(
                f"a webhook needs a signing secret: set {SECRET_ENV} (or --webhook-secret-file)"
            )

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
                why = f"{self.url}: {type(exc).__name__} {exc}".strip()
            else:
                if response.status_code < 300:
                    return True, ""
                why = f"{self.url}: HTTP {response.status_code}"
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


def summarize(events: Iterable[dict]) -> dict[str, int]:
    counts = {"crossed_handoff_line": 0, "grade_up": 0, "grade_down": 0}
    for e in events:
        if "crossed_handoff_line" in e["triggers"]:
            counts["crossed_handoff_line"] += 1
        if "grade_changed" in e["triggers"]:
            up = GRADES.index(e["grade"]) < GRADES.index(e["previous_grade"])
            counts["grade_up" if up else "grade_down"] += 1
    return counts
