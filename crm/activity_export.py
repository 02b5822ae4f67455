"""The activity export checked in batches into an out-of-core `ActivityTable`: the contract's
checks of each batch, with file row numbers and an error's total counted over the whole file;
the same checks for engines that read the export themselves (Spark's executors)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.activity_table import ActivityTable
from leadscore.crm.cells import require_columns
from leadscore.crm.contract import ACTIVITY_COLUMNS, ACTIVITY_OPTIONAL
from leadscore.crm.errors import DatasetError
from leadscore.crm.lead_index import LeadIndex
from leadscore.crm.table_files import table_batches
from leadscore.crm.times import timestamps_us
from leadscore.crm.validation import check_early, normalise_activities


def load_activities(
    path: Path, leads: pd.DataFrame, early_events: str
) -> tuple[ActivityTable, int]:
    """Check the activity export batch by batch into an `ActivityTable`: the same checks as
    one frame would get, with rows counted from the file's start. The first failing check
    raises; the other batches are still read so that its total counts every row."""
    file = path.name
    names, batches = table_batches(path)
    header = pd.DataFrame(columns=names)
    require_columns(header, file, ACTIVITY_COLUMNS)
    table = ActivityTable(
        [c for c in names if c not in ACTIVITY_COLUMNS + ACTIVITY_OPTIONAL], leads["lead_id"]
    )
    lookup = LeadIndex(leads["lead_id"])
    offset = dropped = 0
    # A checked batch goes into the table on a second thread (DuckDB's insert lets go of
    # the interpreter) while the next one is checked here.
    with ThreadPoolExecutor(1, thread_name_prefix="leadscore-append") as appender:
        pending = None
        for batch in batches:
            try:
                acts, lead_rows, n = _checked_batch(batch, file, leads, early_events, lookup)
            except DatasetError as exc:
                raise _counted(exc, offset, batches, leads, early_events, lookup) from None
            if pending is not None:
                pending.result()
            pending = appender.submit(table.append, acts, lead_rows)
            dropped += n
            offset += len(batch)
        if pending is not None:
            pending.result()
    return table, dropped


def check_activity_batch(
    frame: pd.DataFrame,
    file: str,
    leads: pd.DataFrame,
    early_events: str,
    lookup: LeadIndex | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contract's checks of one batch of activity rows (for engines that read the export
    themselves, such as Spark's executors): each kept row's lead position in `leads`
    (lead_id and created_at suffice), its time in µs and its activity type (text). Raises a
    DatasetError as `load_dataset` would, with rows counted from the batch's start."""
    acts, lead_rows, _ = _checked_batch(frame, file, leads, early_events, lookup)
    kinds = acts["activity_type"].astype("object").to_numpy()
    return lead_rows, timestamps_us(acts["occurred_at"]), kinds


def _checked_batch(
    frame: pd.DataFrame,
    file: str,
    leads: pd.DataFrame,
    early_events: str,
    lookup: LeadIndex | None,
) -> tuple[pd.DataFrame, np.ndarray, int]:
    """One batch of activity rows through the contract's checks: the kept rows
    (normalised), their leads' positions and how many were dropped as early events."""
    acts, lead_rows = normalise_activities(frame, file, leads, lookup)
    acts, n, keep = check_early(acts, lead_rows, "occurred_at", file, leads, early_events)
    return acts, (lead_rows[keep] if n else lead_rows), n


def table_columns(path: Path) -> list[str]:
    """The (stripped) column names of an activity export, checked: no duplicate, every
    required column there."""
    names, _ = table_batches(path)
    require_columns(pd.DataFrame(columns=names), path.name, ACTIVITY_COLUMNS)
    return names


def _counted(
    exc: DatasetError,
    offset: int,
    rest: Iterator[pd.DataFrame],
    leads: pd.DataFrame,
    early_events: str,
    lookup: LeadIndex,
) -> DatasetError:
    """`exc` (raised on a batch starting at row `offset`) with file rows, its total counted
    over the rest of the file too ("at least" when a later batch fails another check first)."""
    total, sure = exc.total, True
    while True:
        try:
            batch = next(rest)
        except StopIteration:
            break
        except DatasetError:  # the rest cannot be read: count what was
            sure = False
            break
        try:
            _checked_batch(batch, exc.file, leads, early_events, lookup)
        except DatasetError as later:
            if (later.column, later.problem) == (exc.column, exc.problem):
                total += later.total
            else:
                sure = False
    return DatasetError(
        exc.file,
        exc.problem,
        column=exc.column,
        rows=[r + offset for r in exc.rows],
        values=exc.values,
        expected=exc.expected,
        total=total,
        at_least=not sure,
    )
