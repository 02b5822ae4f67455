"""The daily batch next to the event stream (`leadscore score --state`): the stream's scores
copied into the score history first, and one outbox, so a crossing is handed off once."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd

from leadscore.cli import app
from leadscore.crm.payloads import dataset_events
from leadscore.crm.times import to_us
from leadscore.operations.history import ScoreHistory
from leadscore.operations.stream_sync import sync_history
from leadscore.scoring.model_ref import ModelRef
from leadscore.stream.processor import EventProcessor
from leadscore.stream.stores import open_store
from tests.cli.test_cli import runner
from tests.handoff.test_delivery import Receiver
from tests.handoff.test_events import SECRET


def test_the_batch_sees_the_streams_scores_and_hands_a_crossing_off_once(
    tmp_path, small_sim, small_sim_path, ruled
):
    folder = ruled.save(tmp_path / "scorer")
    when = small_sim.data_end - pd.Timedelta(days=100)
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    stream = EventProcessor(open_store(url), ruled, ModelRef(str(folder), "local"))
    # a share of the leads' events (the stream's side is the subject, not its volume)
    leads = set(small_sim.leads["lead_id"].iloc[::4])
    events = [
        e
        for e in dataset_events(small_sim, until=when - pd.Timedelta(days=10))
        if e["lead_id"] in leads
    ]
    handed = []
    for i in range(0, len(events), 500):
        part = events[i : i + 500]
        handed += stream.process(part, max(to_us(e["occurred_at"]) for e in part), 0).handoffs
    assert handed and stream.store.outbox_size() == len(handed)
    history = tmp_path / "history.duckdb"
    with Receiver() as receiver:
        result = runner.invoke(app, [
            "score", "--data", str(small_sim_path), "--out", str(tmp_path / "scores.parquet"),
            "--model", str(folder), "--as-of", when.isoformat(), "--history", str(history),
            "--state", url, "--webhook", receiver.url,
        ], env={"LEADSCORE_WEBHOOK_SECRET": SECRET})  # fmt: skip
        assert result.exit_code == 0, result.output[-3000:]
    delivered = [
        e for r in receiver.received for e in json.loads(r["body"])["events"]
    ]  # the stream's staged hand-offs and the batch's, through one outbox
    ids = Counter(e["event_id"] for e in delivered)
    assert max(ids.values()) == 1  # no crossing handed off twice
    assert {e["event_id"] for e in handed} <= set(ids)  # the stream's, delivered by the batch
    # a lead whose latest stream score is above the line has been handed off: the batch,
    # reading the stream's scores first, does not hand it off again
    batch = [json.loads(line) for line in (tmp_path / "scores.events.jsonl").open()]
    crossed = {e["lead_id"] for e in batch if "crossed_handoff_line" in e["triggers"]}
    above = set()
    for lead_id in {e["lead_id"] for e in handed}:
        last = stream.store.read(lead_id)["scores"][-1]
        if stream.line.above_one(last["grade"], last["mql"]):
            above.add(lead_id)
    assert above and not (above & crossed)
    stored = ScoreHistory(history).read()
    assert stored["as_of"].nunique() > 1  # the stream's rows, at their own times, and the run's
    assert stream.store.history_rows(10) == [] and stream.store.outbox_size() == 0
    assert sync_history(stream.store, ScoreHistory(history)) == 0
