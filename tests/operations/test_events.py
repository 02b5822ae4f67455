"""Hand-off events: which leads, their ids, and delivery to a real local HTTP receiver
(signatures, retries, idempotency keys, the outbox across runs)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from crm.errors import LeadscoreError
from operations.events import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    HandoffLine,
    Outbox,
    WebhookSender,
    deliver,
    handoff_events,
    summarize,
    verify,
    write_events,
)

SECRET = "s3cret-for-tests"


def _scores(rows):
    """A run's rows: (lead_id, grade, mql) plus the columns an event reads."""
    frame = pd.DataFrame(rows, columns=["lead_id", "grade", "mql"])
    n = len(frame)
    return frame.assign(
        as_of=pd.Timestamp("2026-06-01", tz="UTC"),
        probability=0.5,
        score=50,
        rule_score=pd.array([40] * n, dtype="Int64"),
        rule_grade="B",
        mql=pd.array(frame["mql"], dtype="boolean"),
        reasons_up="Visited pricing 3 times; Industry: software",
        reasons_down="",
        model_name="lead-scoring",
        model_version="3",
        trend="steady",
    )


def _reasons(scores):
    """The run's reasons as the scoring call gives them: lists (a reason may hold '; ')."""
    n = len(scores)
    return {
        "reasons_up": [["Visited pricing 3 times", "Industry: software; services"]] * n,
        "reasons_down": [[]] * n,
    }


def _handoffs(scores, previous, line=None):
    args = (scores, previous) if line is None else (scores, previous, line)
    return handoff_events(*args, reasons=_reasons(scores))


def test_crossings_and_grade_changes_against_each_leads_last_score():
    previous = pd.DataFrame(
        [("a", "B", False), ("b", "A", False), ("c", "C", True), ("d", "C", False)],
        columns=["lead_id", "grade", "mql"],
    )
    now = _scores(
        [
            ("a", "A", False),  # crossed (grade A) and changed grade
            ("b", "A", False),  # was above, still above: nothing
            ("c", "C", True),  # MQL both times: nothing
            ("d", "C", True),  # became an MQL: crossed
            ("e", "B", False),  # new, below the line: nothing
            ("f", "A", False),  # new, above: handed off
            ("g", "D", None),  # new, no rules: nothing
        ]
    )
    events = {e["lead_id"]: e for e in _handoffs(now, previous)}
    assert set(events) == {"a", "d", "f"}
    assert events["a"]["triggers"] == ["crossed_handoff_line", "grade_changed"]
    assert events["a"]["previous_grade"] == "B" and events["f"]["previous_grade"] is None
    assert events["d"]["type"] == "lead.handoff"
    assert events["a"]["reasons_up"] == ["Visited pricing 3 times", "Industry: software; services"]
    assert events["a"]["reasons_down"] == []
    assert summarize(events.values()) == {"crossed_handoff_line": 3, "grade_up": 1, "grade_down": 0}

    # Grades only: the MQL flag no longer counts; a grade drop is an event of its own.
    line = HandoffLine(mql=False, grades="AB")
    graded = {e["lead_id"]: e for e in _handoffs(now, previous, line)}
    assert set(graded) == {"a", "e", "f"}
    assert graded["a"]["triggers"] == ["grade_changed"]  # B was already above A-or-B
    assert graded["e"]["type"] == "lead.handoff"
    # Ids: stable for the same run, different for another model version.
    again = _handoffs(now, previous, line)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in graded.values()]
    other = _handoffs(now.assign(model_version="4"), previous, line)
    assert {e["event_id"] for e in other}.isdisjoint(e["event_id"] for e in again)


def test_a_bad_line_is_refused():
    with pytest.raises(LeadscoreError, match="E not in A-D"):
        HandoffLine(grades="AE")
    with pytest.raises(LeadscoreError, match="needs the MQL flag or at least one grade"):
        HandoffLine(mql=False, grades="")


class Receiver:
    """A real HTTP server on 127.0.0.1: answers the scripted statuses first, then 200, and
    records what it received."""

    def __init__(self, script=()):
        self.script = list(script)
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.received.append(
                    {"status": status, "headers": dict(self.headers), "body": body}
                )
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/leads"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def delivered_ids(self) -> list[str]:
        return [
            e["event_id"]
            for r in self.received
            if r["status"] < 300
            for e in json.loads(r["body"])["events"]
        ]


def _events(n: int, as_of="2026-06-01"):
    rows = [(f"L{i}", "A", True) for i in range(n)]
    return _handoffs(_scores(rows).assign(as_of=pd.Timestamp(as_of, tz="UTC")), pd.DataFrame())


def _sender(url, **kw):
    return WebhookSender(url, SECRET, backoff_s=0.01, sleep=lambda s: None, **kw)


def test_delivery_is_signed_retried_and_idempotent(tmp_path):
    events = _events(5)
    with Receiver(script=[503, 429]) as receiver:
        report = deliver(events, _sender(receiver.url, batch_size=3), Outbox(tmp_path / "o.jsonl"))
    assert report.delivered == 5 and report.kept == 0 and report.attempts == 4
    assert receiver.delivered_ids() == [e["event_id"] for e in events]
    first_batch = receiver.received[:3]  # 503, 429, then 200: the same batch three times
    assert len({r["headers"][IDEMPOTENCY_HEADER] for r in first_batch}) == 1
    assert (
        receiver.received[3]["headers"][IDEMPOTENCY_HEADER]
        != first_batch[0]["headers"][IDEMPOTENCY_HEADER]
    )
    for r in receiver.received:
        headers = r["headers"]
        assert verify(SECRET, headers[TIMESTAMP_HEADER], r["body"], headers[SIGNATURE_HEADER])
        assert not verify("wrong", headers[TIMESTAMP_HEADER], r["body"], headers[SIGNATURE_HEADER])
    assert not (tmp_path / "o.jsonl").exists()


def test_undelivered_events_are_kept_and_sent_first_next_run(tmp_path):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    monday = _events(3, "2026-06-01")
    with Receiver(script=[503] * 10) as down:  # down for the whole run
        report = deliver(monday, _sender(down.url, max_attempts=3), outbox)
    assert report.delivered == 0 and report.kept == 3 and report.attempts == 3
    assert "HTTP 503 after 3 attempts" in report.failures[0]
    assert [e["event_id"] for e in outbox.read()] == [e["event_id"] for e in monday]

    # Nobody listening at all: a connection error, kept too (once, not twice).
    with Receiver() as gone:
        url = gone.url
    report = deliver(monday, _sender(url, max_attempts=2), outbox)
    assert report.kept == 3 and "ConnectError" in report.failures[0]
    assert len(outbox.read()) == 3

    tuesday = _events(2, "2026-06-02")
    with Receiver() as up:
        report = deliver(tuesday, _sender(up.url), outbox)
    assert report.delivered == 5 and report.kept == 0
    assert up.delivered_ids() == [e["event_id"] for e in monday + tuesday]
    assert outbox.read() == []


def test_a_refusal_is_not_retried_but_kept(tmp_path):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    with Receiver(script=[401]) as receiver:
        report = deliver(_events(2), _sender(receiver.url), outbox)
    assert report.attempts == 1 and report.kept == 2
    assert "HTTP 401 (not retried)" in report.failures[0]
    assert len(outbox.read()) == 2


def test_sender_and_outbox_refusals(tmp_path):
    with pytest.raises(LeadscoreError, match="LEADSCORE_WEBHOOK_SECRET"):
        WebhookSender("http://127.0.0.1:9/x", "")
    with pytest.raises(LeadscoreError, match="not an http"):
        WebhookSender("ftp://example/x", SECRET)
    broken = tmp_path / "outbox.jsonl"
    write_events(_events(1), broken)
    broken.write_text(broken.read_text() + "{not json\n")
    with pytest.raises(LeadscoreError, match=r"outbox.jsonl, line 2: not a JSON event"):
        Outbox(broken).read()
