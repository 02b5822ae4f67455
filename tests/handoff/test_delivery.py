"""Delivery of hand-off events: signed, retried, idempotent, against a real local HTTP
receiver; what is not taken stays in the outbox and goes first next run."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.handoff.delivery import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSender,
    deliver,
    stage,
    verify,
)
from leadscore.handoff.events import write_events
from leadscore.handoff.outbox import FileOutbox
from tests.handoff.test_events import SECRET, _events


class Receiver:
    """A real HTTP server on 127.0.0.1: answers the scripted statuses first, then 200, and
    records what it received. A script entry may also be "hang" (record the request, never
    answer), "trickle" (a status line a byte every 0.5 s) or "endless" (200, then a body
    that never ends)."""

    def __init__(self, script=()):
        self.script = list(script)
        self.received: list[dict] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.received.append(
                    {"status": status, "headers": dict(self.headers), "body": body}
                )
                try:
                    if status == "hang":
                        receiver.release.wait(120)
                        return
                    if status == "trickle":
                        for byte in b"HTTP/1.1 200 OK\r\n":
                            if receiver.release.wait(0.5):
                                return
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        return
                    if status == "endless":
                        self.send_response(200)
                        self.end_headers()
                        chunk = b"x" * 65_536
                        while not receiver.release.is_set():
                            self.wfile.write(chunk)
                        return
                except (BrokenPipeError, ConnectionResetError):
                    return
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/leads"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def delivered_ids(self) -> list[str]:
        return [
            e["event_id"]
            for r in self.received
            if isinstance(r["status"], int) and r["status"] < 300
            for e in json.loads(r["body"])["events"]
        ]


def _deliver(events, sender, outbox):
    """A run's delivery as `leadscore score` does it: staged first, then sent."""
    stage(events, sender, outbox)
    return deliver(sender, outbox)


def _sender(url, **kw):
    return WebhookSender(url, SECRET, backoff_s=0.01, sleep=lambda s: None, **kw)


def test_delivery_is_signed_retried_and_idempotent(tmp_path):
    events = _events(5)
    with Receiver(script=[503, 429]) as receiver:
        report = _deliver(
            events, _sender(receiver.url, batch_size=3), FileOutbox(tmp_path / "o.jsonl")
        )
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
    outbox = FileOutbox(tmp_path / "outbox.jsonl")
    monday = _events(3, "2026-06-01")
    with Receiver(script=[503] * 10) as down:  # down for the whole run
        report = _deliver(monday, _sender(down.url, max_attempts=3), outbox)
    assert report.delivered == 0 and report.kept == 3 and report.attempts == 3
    assert "HTTP 503 after 3 attempts" in report.failures[0]
    assert [e["event_id"] for e in outbox.read()] == [e["event_id"] for e in monday]

    # Nobody listening at all: a connection error, kept too (once, not twice).
    with Receiver() as gone:
        url = gone.url
    report = _deliver(monday, _sender(url, max_attempts=2), outbox)
    assert report.kept == 3 and "ConnectError" in report.failures[0]
    assert len(outbox.read()) == 3

    tuesday = _events(2, "2026-06-02")
    with Receiver() as up:
        report = _deliver(tuesday, _sender(up.url), outbox)
    assert report.delivered == 5 and report.kept == 0
    assert up.delivered_ids() == [e["event_id"] for e in monday + tuesday]
    assert outbox.read() == []


def test_a_refusal_is_not_retried_but_kept(tmp_path):
    outbox = FileOutbox(tmp_path / "outbox.jsonl")
    with Receiver(script=[401]) as receiver:
        report = _deliver(_events(2), _sender(receiver.url), outbox)
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
        FileOutbox(broken).read()


def test_a_batch_keeps_its_key_after_a_partial_delivery_and_a_rerun(tmp_path):
    """Batch 1 taken, batch 2 refused: a re-run of the same day sends batch 2 again under
    the key the receiver has seen, never batch 1; new events get batches of their own."""
    outbox = FileOutbox(tmp_path / "outbox.jsonl")
    monday = _events(5, "2026-06-01")
    with Receiver(script=[200, 500, 500]) as receiver:
        report = _deliver(monday, _sender(receiver.url, batch_size=3, max_attempts=2), outbox)
    assert report.delivered == 3 and report.kept == 2
    key_2 = receiver.received[1]["headers"][IDEMPOTENCY_HEADER]
    assert receiver.received[2]["headers"][IDEMPOTENCY_HEADER] == key_2  # the retry
    tuesday = _events(2, "2026-06-02")
    with Receiver() as again:
        report = _deliver(monday + tuesday, _sender(again.url, batch_size=3), outbox)
    assert report.delivered == 4 and report.kept == 0
    keys = [r["headers"][IDEMPOTENCY_HEADER] for r in again.received]
    assert keys[0] == key_2 and len(set(keys)) == 2
    assert again.delivered_ids() == [e["event_id"] for e in monday[3:] + tuesday]
    with Receiver() as third:  # the whole of Monday re-run once more: nothing to send
        report = _deliver(monday, _sender(third.url), outbox)
    assert report.delivered == 0 and third.received == [] and not outbox.path.exists()


def test_every_wait_is_bounded(tmp_path):
    """A receiver that trickles its answer, one that never answers, one whose answer never
    ends, and one that fails every batch: each attempt and each run ends in bounded time,
    and what was not delivered stays in the outbox."""
    import time

    events = _events(2)
    for behaviour in ("trickle", "hang"):
        outbox = FileOutbox(tmp_path / f"{behaviour}.jsonl")
        with Receiver(script=[behaviour] * 3) as receiver:
            sender = _sender(receiver.url, attempt_deadline_s=1.0, max_attempts=2)
            start = time.monotonic()
            report = _deliver(events, sender, outbox)
            took = time.monotonic() - start
        assert report.kept == 2 and report.attempts == 2 and took < 10
        assert "no complete answer within 1 s" in report.failures[0]
        assert len(outbox.read()) == 2
    with Receiver(script=["endless"]) as receiver:  # the status counts; the body is not read
        report = _deliver(events, _sender(receiver.url), FileOutbox(tmp_path / "endless.jsonl"))
    assert report.delivered == 2
    # failures in a row stop the run: the rest stays, untried
    outbox = FileOutbox(tmp_path / "down.jsonl")
    with Receiver(script=[500] * 50) as receiver:
        sender = _sender(receiver.url, batch_size=1, max_attempts=1, max_failed_batches=2)
        report = _deliver(_events(6), sender, outbox)
    assert len(receiver.received) == 2 and report.kept == 6
    assert "2 batches in a row failed" in report.stopped
    # the run's deadline
    with Receiver(script=["hang"] * 10) as receiver:
        sender = _sender(receiver.url, batch_size=1, attempt_deadline_s=5.0, run_deadline_s=1.0)
        start = time.monotonic()
        report = _deliver(_events(3), sender, FileOutbox(tmp_path / "deadline.jsonl"))
        assert time.monotonic() - start < 5 and report.kept == 3
