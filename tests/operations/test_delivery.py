"""Delivery of hand-off events: signed, retried, idempotent, against a real local HTTP
receiver; what is not taken stays in the outbox and goes first next run."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crm.errors import LeadscoreError
from operations.delivery import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Outbox,
    WebhookSender,
    deliver,
    verify,
)
from operations.events import write_events
from tests.operations.test_events import SECRET, _events


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
