"""The activity export is checked in batches into an out-of-core table: the same rows, the
same checks and file row numbers as one frame would give, whatever the batch size."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import leadscore.crm.table_files as table_files
from leadscore.crm import DatasetError, load_dataset
from tests.conftest import DEALS, write_dataset

LEADS = "lead_id,created_at,source\n" + "".join(
    f"L{i},2025-01-0{1 + i % 3}T08:00:00Z,website\n" for i in range(12)
)


def _activities(rows: list[tuple[str, str, str]], extra: bool = True) -> str:
    head = "lead_id,occurred_at,activity_type,value,campaign" + (",note" if extra else "")
    lines = [head]
    for i, (lead, at, kind) in enumerate(rows):
        line = f"{lead},{at},{kind},{i if i % 3 else ''},{'spring' if i % 2 else ''}"
        lines.append(line + (f',"a ""quoted"" note {i}"' if extra else ""))
    return "\n".join(lines) + "\n"


ROWS = [(f"L{i % 12}", f"2025-01-{10 + i % 9:02d}T09:00:00+02:00", ("page_view", "call", "webinar")[i % 3])
        for i in range(40)]  # fmt: skip


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 3 rows (Parquet) and of about 100 bytes (CSV): a 40-row export is many."""
    monkeypatch.setattr(table_files, "BATCH_ROWS", 3)
    monkeypatch.setattr(table_files, "CSV_BLOCK_BYTES", 100)


def _dataset(tmp_path, name, activities):
    return write_dataset(tmp_path / name, leads=LEADS, activities=activities, deals=DEALS_EMPTY)


DEALS_EMPTY = DEALS.splitlines()[0] + "\n"


def test_batches_hold_the_same_rows_as_one_frame(tmp_path, monkeypatch):
    path = _dataset(tmp_path, "d", _activities(ROWS))
    whole = load_dataset(path)
    monkeypatch.setattr(table_files, "BATCH_ROWS", 3)
    monkeypatch.setattr(table_files, "CSV_BLOCK_BYTES", 100)
    batched = load_dataset(path)
    pd.testing.assert_frame_equal(batched.activities, whole.activities)
    assert len(batched.activity_table) == 40
    assert batched.activity_table.type_counts() == {"page_view": 14, "call": 13, "webinar": 13}
    assert batched.activities["note"].iloc[1] == 'a "quoted" note 1'
    assert batched.data_end == whole.data_end == pd.Timestamp("2025-01-18T07:00:00Z")
    # Parquet, read in row batches, gives the same table.
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    for name in ("leads", "activities"):
        pd.read_csv(path / f"{name}.csv", dtype=str).to_parquet(pq_dir / f"{name}.parquet")
    from_parquet = load_dataset(pq_dir)
    pd.testing.assert_frame_equal(from_parquet.activities, whole.activities)


def test_an_error_names_the_file_row_and_counts_every_batch(tmp_path, small_batches):
    rows = list(ROWS)
    rows[6] = ("NOPE", rows[6][1], rows[6][2])
    rows[31] = ("NOPE-2", rows[31][1], rows[31][2])
    path = _dataset(tmp_path, "bad", _activities(rows))
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert err.value.file == "activities.csv" and err.value.column == "lead_id"
    assert err.value.rows == [7] and err.value.total == 2 and not err.value.at_least
    assert "row 7" in str(err.value) and "(2 in all)" in str(err.value)


def test_a_later_batch_failing_another_check_makes_the_total_a_floor(tmp_path, small_batches):
    rows = list(ROWS)
    rows[2] = ("NOPE", rows[2][1], rows[2][2])
    rows[30] = (rows[30][0], "yesterday", rows[30][2])
    path = _dataset(tmp_path, "bad", _activities(rows, extra=False))
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert err.value.rows == [3] and err.value.at_least
    assert "at least 1 in all" in str(err.value)


def test_early_events_are_dropped_in_every_batch(tmp_path, small_batches):
    rows = list(ROWS)
    for i in (1, 20, 39):  # before the leads were created
        rows[i] = (rows[i][0], "2024-12-01T00:00:00Z", rows[i][2])
    path = _dataset(tmp_path, "early", _activities(rows))
    ds = load_dataset(path, early_events="drop")
    assert ds.dropped == {"activities_before_lead_created": 3}
    assert len(ds.activity_table) == 37 == len(ds.activities)
    with pytest.raises(DatasetError, match="occurred_at before the lead's created_at"):
        load_dataset(path)


def test_a_truncated_parquet_file_is_a_dataset_error(tmp_path):
    path = _dataset(tmp_path, "d", _activities(ROWS))
    (path / "activities.csv").unlink()
    table = pa.Table.from_pandas(
        pd.read_csv(_dataset(tmp_path, "src", _activities(ROWS)) / "activities.csv", dtype=str)
    )
    pq.write_table(table, path / "activities.parquet", row_group_size=5)
    data = (path / "activities.parquet").read_bytes()
    (path / "activities.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="activities.parquet: cannot be read"):
        load_dataset(path)


def test_tables_cannot_be_swapped_under_the_activity_table(tmp_path):
    """The table points at leads by row: other leads need `with_tables`, which rebuilds it."""
    import dataclasses

    ds = load_dataset(_dataset(tmp_path, "d", _activities(ROWS)))
    shuffled = ds.leads.iloc[::-1].reset_index(drop=True)
    with pytest.raises(ValueError, match="with_tables"):
        dataclasses.replace(ds, leads=shuffled)
    moved = ds.with_tables(leads=shuffled)
    pd.testing.assert_frame_equal(moved.activities, ds.activities)
    assert (moved.activity_table.events()["lead"] != ds.activity_table.events()["lead"]).any()


def test_events_of_a_lead_range_and_of_some_types(tmp_path):
    ds = load_dataset(_dataset(tmp_path, "d", _activities(ROWS)))
    table = ds.activity_table
    calls = table.events((0, 3), ["call", "not-a-type"])
    kinds = [table.types[c] for c in calls["code"]]
    assert set(kinds) == {"call"} and calls["lead"].min() >= 0 and calls["lead"].max() <= 3
    acts = ds.activities
    expected = acts[
        (acts["activity_type"] == "call") & acts["lead_id"].isin([f"L{i}" for i in range(4)])
    ]
    assert len(calls["lead"]) == len(expected)
    assert table.events(kinds=["not-a-type"])["lead"].size == 0
    # A lead's frame holds its events only, in the export's order.
    one = table.frame(ds.leads["lead_id"], [5])
    assert one["lead_id"].unique().tolist() == ["L5"]
    pd.testing.assert_frame_equal(
        one, acts[acts["lead_id"] == "L5"].reset_index(drop=True), check_categorical=False
    )


def test_extra_columns_named_like_ours_and_more_types_than_a_short_holds(tmp_path):
    """An export's extra columns may be called `lead` or `code`; free-text activity types
    may number tens of thousands: the table keeps them all as they were."""
    rows = "".join(f"L{i % 12},2025-01-10T00:00:00Z,type {i},x{i},y{i}\n" for i in range(40_000))
    acts = "lead_id,occurred_at,activity_type,lead,code\n" + rows
    ds = load_dataset(_dataset(tmp_path, "odd", acts))
    table = ds.activity_table
    assert len(table.type_counts()) == 40_000 and int(table.events()["code"].max()) == 39_999
    frame = ds.activities
    assert frame["lead"].iloc[7] == "x7" and frame["code"].iloc[39_999] == "y39999"
    assert frame["activity_type"].iloc[39_999] == "type 39999"
