"""The score row declared once (`leadscore.scoring.score_row`): the batch's rows, the score
history's table and the stream's history rows all take their columns from it."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from leadscore.operations.history import TABLE, ScoreHistory
from leadscore.operations.pipeline import scores_from_columns
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.score_row import COLUMNS, HISTORY_SCHEMA, LEAD_ROW, STORED, stored_row
from leadscore.stream.processor import EventProcessor
from leadscore.stream.stores import open_store

MODEL = ModelRef("lead-scoring", "7")


def test_the_stored_columns_are_the_rows_columns_that_have_a_type():
    assert list(HISTORY_SCHEMA) == STORED
    assert STORED[0] == "as_of_us" and STORED[-1] == "scored_at"
    assert STORED[1:-1] == [name for name, kind in LEAD_ROW if kind is not None]
    assert set(STORED[1:-1]) < set(COLUMNS) and COLUMNS[-1] == "trend"


def test_the_batch_rows_and_the_history_table_come_from_the_declaration(tmp_path):
    n = 3
    columns = {
        "lead_id": np.array(["a", "b", "c"], dtype=object),
        "as_of": np.full(n, np.datetime64("2025-06-01T00:00:00", "us")),
        "probability": np.array([0.1, 0.5, 0.9]),
        "grade": np.array(["D", "B", "A"]),
        "beyond_trained_age": np.zeros(n, dtype=bool),
    }
    lists = {"reasons_up": [[]] * n, "reasons_down": [[]] * n}
    frame = scores_from_columns(columns, lists, MODEL, "v1", reasons=True).frame
    assert list(frame.columns) == COLUMNS[:-1]  # the run adds the trend
    frame["trend"] = "new"
    store = tmp_path / "history.duckdb"
    ScoreHistory(store).write_run(frame)
    con = duckdb.connect(str(store), read_only=True)
    try:
        stored = [d[0] for d in con.execute(f"SELECT * FROM {TABLE} LIMIT 0").description]
    finally:
        con.close()
    assert stored == STORED


def test_the_streams_history_row_is_the_stored_columns(tmp_path, ruled):
    store = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    proc = EventProcessor(store, ruled, MODEL)
    at = "2026-03-02T09:00:00Z"
    lead = {"event_id": "e-lead", "type": "lead", "lead_id": "L1", "occurred_at": at,
            "created_at": at, "source": "website", "profile": {}}  # fmt: skip
    activity = {"event_id": "a1", "type": "activity", "lead_id": "L1",
                "occurred_at": "2026-03-02T10:00:00Z",
                "activity_type": ruled.spec.activity_types[0]}  # fmt: skip
    proc.process([lead, activity], None, pd.Timestamp("2026-03-02T11:00:00Z").value // 1000)
    rows = store.history_rows(10)
    assert len(rows) == 1 and list(rows[0]) == STORED


def test_a_writer_that_leaves_out_a_stored_column_is_caught():
    values = {c: None for c in STORED if c != "trend"}
    with pytest.raises(KeyError, match="lacks trend"):
        stored_row(values)
    assert list(stored_row({**values, "trend": "new", "extra": 1})) == STORED
