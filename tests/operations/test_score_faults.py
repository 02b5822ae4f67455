"""`leadscore score` killed with kill -9 at several points (real processes, a real local
receiver): no hand-off event is lost, and none is delivered twice under different keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadscore.handoff.delivery import IDEMPOTENCY_HEADER
from leadscore.handoff.outbox import FileOutbox
from leadscore.operations.history import ScoreHistory
from tests.handoff.test_delivery import Receiver
from tests.handoff.test_events import SECRET
from tests.postgres import postgres_cluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    return trained.scorer.save(tmp_path_factory.mktemp("scorer") / "scorer")


def _score(tmp_path, data, saved, when, url, history=None) -> subprocess.Popen:
    args = [
        sys.executable, "-m", "leadscore", "score", "--data", str(data), "--model", str(saved),
        "--as-of", when, "--out", str(tmp_path / "scores.parquet"),
        "--history", history or str(tmp_path / "history.duckdb"), "--outbox", str(tmp_path / "outbox.jsonl"),
        "--webhook", url, "--handoff-grades", "ABC",  # more than one batch of events
    ]  # fmt: skip
    env = {**os.environ, "LEADSCORE_WEBHOOK_SECRET": SECRET}
    return subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip


def _until(condition, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]
    return out.decode()


def _events(tmp_path) -> list[str]:
    path = tmp_path / "scores.events.jsonl"
    return [json.loads(line)["event_id"] for line in path.read_text().splitlines()]


def _taken(*receivers) -> list[str]:
    return [i for r in receivers for i in r.delivered_ids()]


def test_killed_during_delivery_every_event_is_delivered_once_per_key(
    tmp_path, small_sim_path, saved, trained
):
    when = trained.test["as_of"].max().isoformat()
    with Receiver(script=[200, "hang"]) as stuck:
        run = _score(tmp_path, small_sim_path, saved, when, stuck.url)
        _until(lambda: len(stuck.received) == 2 or run.poll() is not None)
        assert run.poll() is None, run.communicate()[1].decode()[-2000:]  # batch 2 in flight
        _kill(run)
    events = _events(tmp_path)
    assert len(events) > 100  # more than one batch
    assert len(ScoreHistory(tmp_path / "history.duckdb").read()) > 0  # the run was recorded
    kept = FileOutbox(tmp_path / "outbox.jsonl").read()
    assert {e["event_id"] for e in kept} == set(events) - set(stuck.delivered_ids())
    in_flight = stuck.received[1]["headers"][IDEMPOTENCY_HEADER]
    with Receiver() as good:  # the same day again
        _finish(_score(tmp_path, small_sim_path, saved, when, good.url))
    # every event delivered; the batch in flight again under the key the receiver saw
    assert sorted(_taken(stuck, good)) == sorted(events)
    assert good.received[0]["headers"][IDEMPOTENCY_HEADER] == in_flight
    assert not (tmp_path / "outbox.jsonl").exists()


def test_killed_before_the_history_records_the_run_the_events_are_kept(
    tmp_path, small_sim_path, saved, trained
):
    """The history's writers take turns (PostgreSQL: a transaction lock). The test holds
    that lock, so the run waits at the history with its events already in the outbox:
    kill -9 there. The history has no trace of the run; the next run delivers every event."""
    import sqlalchemy as sa

    from leadscore.operations.history import LOCK_KEY

    when = trained.test["as_of"].max().isoformat()
    with postgres_cluster("faults") as url:
        engine = sa.create_engine(url)
        with engine.connect() as holder:
            holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            with Receiver() as receiver:
                run = _score(tmp_path, small_sim_path, saved, when, receiver.url, history=url)
                outbox = tmp_path / "outbox.jsonl"
                waiting = sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                _until(
                    lambda: (
                        run.poll() is not None or holder.execute(waiting).scalar() > 0
                    )  # the run waits at the lock
                )
                assert run.poll() is None, run.communicate()[1].decode()[-2000:]
                assert outbox.exists()
                _kill(run)
                assert receiver.received == []  # nothing is sent before the history
            holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
        engine.dispose()
        events = _events(tmp_path)
        assert ScoreHistory(url).read().empty  # the run was not recorded
        assert {e["event_id"] for e in FileOutbox(outbox).read()} == set(events)
        with Receiver() as good:
            _finish(_score(tmp_path, small_sim_path, saved, when, good.url, history=url))
        assert sorted(good.delivered_ids()) == sorted(events)
        assert len(ScoreHistory(url).read()) > 0


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: a full disk for real (mounting needs root; skipped otherwise)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_is_one_line_and_nothing_downstream(
    tmp_path, tiny_disk, small_sim_path, saved, trained
):
    when = trained.test["as_of"].max().isoformat()
    ballast = tiny_disk / "ballast"
    ballast.write_bytes(b"x" * 200_000)  # what is left is too small for the scores file
    history = tmp_path / "history.duckdb"
    common = [sys.executable, "-m", "leadscore", "score", "--data", str(small_sim_path),
              "--model", str(saved), "--as-of", when]  # fmt: skip
    env = dict(os.environ)
    full = subprocess.run(
        [*common, "--out", str(tiny_disk / "scores.csv"), "--history", str(history)],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-3000:]
    assert "No space left on device" in full.stderr and "scores.csv" in full.stderr
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["ballast", "scores.events.jsonl"]
    assert ScoreHistory(history).read().empty  # the run was not recorded
    # the history on the full disk: one line, no traceback
    ballast.unlink()
    (tiny_disk / "scores.events.jsonl").unlink()
    ballast.write_bytes(b"x" * 248_000)
    stored = subprocess.run(
        [*common, "--out", str(tmp_path / "scores.csv"), "--history",
         str(tiny_disk / "history.duckdb")],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert stored.returncode == 1 and "Traceback" not in stored.stderr, stored.stderr[-3000:]
    assert "history.duckdb" in stored.stderr
