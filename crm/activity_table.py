"""A dataset's activity table, kept out of core: a DuckDB file in a temporary folder.

An export with tens of millions of events does not fit in pandas. The loader checks the
export in batches (`leadscore.crm.activity_export`) and appends each checked batch here; the batch engines
query the table in SQL (`cursor`), and the few callers that need pandas rows ask for the
leads they want (`frame`). Memory stays bounded by DuckDB's cap (`LEADSCORE_DUCKDB_MEMORY`,
1 GB by default), whatever the number of events.

Table `acts` columns: `lead` (the lead's row in the dataset's leads), `t_us` (µs since the
epoch, UTC), `code` (the activity type's position in `types`), `value`, `campaign` (position
in `campaigns`, NULL when blank), then the export's extra columns as text (`extra_<i>`, the
i-th of `extra_columns`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.crm.times import from_us, timestamps_us

MEMORY_ENV = "LEADSCORE_DUCKDB_MEMORY"
DEFAULT_MEMORY = "1GB"
TABLE = "acts"


def duckdb_memory() -> str:
    """DuckDB's memory cap for the batch engines: past it they spill to disk."""
    return os.environ.get(MEMORY_ENV, "").strip() or DEFAULT_MEMORY


class ActivityTable:
    """The checked activity events of one dataset (see the module docstring).

    Appending is the loader's job; everything else reads. Reads may run from several
    threads: each takes its own cursor.
    """

    def __init__(
        self,
        extra_columns: Iterable[str] = (),
        lead_ids: pd.Series | None = None,
        *,
        unread: bool = False,
    ) -> None:
        self.extra_columns = tuple(extra_columns)
        # The export's activities were left to another engine (`load_dataset(activities=False)`).
        self.unread = unread
        self.lead_ids = lead_ids  # the leads whose rows `lead` holds (a Dataset checks them)
        self.types: list[str] = []
        self.campaigns: list[str] = []
        self._type_code: dict[str, int] = {}
        self._campaign_code: dict[str, int] = {}
        self._counts: list[int] = []
        self._n = 0
        self.t_max_us: int | None = None
        self._frame: pd.DataFrame | None = None
        self._lock = threading.Lock()
        folder = Path(tempfile.mkdtemp(prefix="leadscore-activities-"))
        con = duckdb.connect(
            str(folder / "activities.duckdb"),
            config={
                "memory_limit": duckdb_memory(),
                "temp_directory": str(folder / "spill"),
                "preserve_insertion_order": True,
            },
        )
        # The export's extra columns under names of ours: theirs may be anything, "lead" too.
        extras = "".join(f", extra_{i} VARCHAR" for i in range(len(self.extra_columns)))
        con.execute(
            f"CREATE TABLE {TABLE} (lead INTEGER, t_us BIGINT, code INTEGER, value DOUBLE, "
            f"campaign INTEGER{extras})"
        )
        self._con = con
        self._finalizer = weakref.finalize(self, _discard, con, folder)

    # --- building ---------------------------------------------------------------------------

    def append(self, frame: pd.DataFrame, lead_rows: np.ndarray) -> None:
        """Append checked rows (`leadscore.crm.validation`'s normalised activities) and their leads' rows."""
        if not len(frame):
            return
        kinds = frame["activity_type"].astype("category")
        code_of = np.array(
            [self._code(self._type_code, self.types, str(c)) for c in kinds.cat.categories],
            dtype=np.int32,
        )
        codes = code_of[kinds.cat.codes.to_numpy()]
        counts = np.bincount(codes, minlength=len(self.types))
        for i, c in enumerate(counts):
            if i < len(self._counts):
                self._counts[i] += int(c)
            else:
                self._counts.append(int(c))
        campaign = frame["campaign"].astype("category")
        campaign_of = np.array(
            [self._code(self._campaign_code, self.campaigns, str(c))
             for c in campaign.cat.categories] + [-1],
            dtype=np.int32,
        )  # fmt: skip
        campaign_codes = campaign_of[campaign.cat.codes.to_numpy()]  # code -1 -> the last: -1
        t_us = timestamps_us(frame["occurred_at"])
        columns = {
            "lead": pa.array(np.asarray(lead_rows, dtype=np.int32)),
            "t_us": pa.array(t_us),
            "code": pa.array(codes),
            "value": pa.array(frame["value"].to_numpy(dtype=np.float64), from_pandas=True),
            "campaign": pa.array(campaign_codes, mask=campaign_codes < 0),
        }
        for i, c in enumerate(self.extra_columns):
            columns[f"extra_{i}"] = pa.array(
                frame[c].astype("object"), type=pa.string(), from_pandas=True
            )
        batch = pa.table(columns)
        with self._lock:
            self._con.register("incoming", batch)
            try:
                self._con.execute(f"INSERT INTO {TABLE} SELECT * FROM incoming")
            finally:
                self._con.unregister("incoming")
        self._n += len(frame)
        top = int(t_us.max())
        self.t_max_us = top if self.t_max_us is None else max(self.t_max_us, top)
        self._frame = None

    @staticmethod
    def _code(index: dict[str, int], names: list[str], name: str) -> int:
        code = index.get(name)
        if code is None:
            code = index[name] = len(names)
            names.append(name)
        return code

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, lead_ids: pd.Series) -> ActivityTable:
        """A table holding a normalised activity frame (tests, and datasets built in code):
        `lead_ids` are the dataset's leads, which every row must name."""
        from leadscore.crm.lead_index import lead_positions

        extras = [c for c in frame.columns if c not in _CONTRACT]
        table = cls(extras, lead_ids)
        frame = frame.reset_index(drop=True)
        if "campaign" not in frame.columns:
            frame = frame.assign(campaign=pd.Categorical([None] * len(frame)))
        if "value" not in frame.columns:
            frame = frame.assign(value=np.nan)
        rows = lead_positions(frame["lead_id"], lead_ids)
        if (rows < 0).any():
            raise ValueError(f"{int((rows < 0).sum())} activities name leads that are not given")
        table.append(frame, rows)
        return table

    # --- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @property
    def empty(self) -> bool:
        return self._n == 0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the table's database, for one thread's queries."""
        return self._con.cursor()

    def type_counts(self) -> dict[str, int]:
        """Events per activity type, in the order types were first seen (none with 0)."""
        return {t: c for t, c in zip(self.types, self._counts, strict=True) if c}

    def codes(self, kinds: Iterable[str]) -> list[int]:
        """The codes of the activity types named that the table holds."""
        return [self._type_code[k] for k in kinds if k in self._type_code]

    def last_us(self, at_or_before: int) -> int | None:
        """The latest event time at or before `at_or_before` (µs), or None."""
        if self.t_max_us is not None and self.t_max_us <= at_or_before:
            return self.t_max_us
        got = (
            self.cursor()
            .execute(f"SELECT max(t_us) FROM {TABLE} WHERE t_us <= ?", [int(at_or_before)])
            .fetchone()[0]
        )
        return None if got is None else int(got)

    def events(
        self, lead_range: tuple[int, int] | None = None, kinds: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Events as arrays (lead, t_us, code), of the leads whose rows are in `lead_range`
        (first, last; all when None) and of the types `kinds` (all when None); in the
        export's order."""
        where, con = self._where(None, kinds, lead_range)
        got = con.execute(f"SELECT lead, t_us, code FROM {TABLE}{where} ORDER BY rowid")
        out = got.fetchnumpy()
        return {k: np.asarray(out[k]) for k in ("lead", "t_us", "code")}

    def frame(self, lead_ids: pd.Series, lead_rows: np.ndarray | None = None) -> pd.DataFrame:
        """The normalised pandas frame the loader used to hold: lead_id, occurred_at,
        activity_type, value, campaign and the extra columns, in the export's order; only the
        leads at `lead_rows` when given (`lead_ids`: the dataset's lead ids)."""
        if lead_rows is None and self._frame is not None:
            return self._frame
        where, con = self._where(lead_rows, None)
        extras = "".join(f", extra_{i}" for i in range(len(self.extra_columns)))
        table = con.sql(
            f"SELECT lead, t_us, code, value, campaign{extras} FROM {TABLE}{where} ORDER BY rowid"
        ).to_arrow_table()
        lead = table["lead"].to_numpy().astype(np.int64)
        out = pd.DataFrame(
            {
                "lead_id": lead_ids.take(lead).reset_index(drop=True),
                "occurred_at": pd.Series(from_us(table["t_us"].to_numpy())),
                "activity_type": _categories(table["code"].to_numpy(), self.types),
                "value": table["value"].to_numpy(zero_copy_only=False),
                "campaign": _categories(
                    table["campaign"].fill_null(-1).to_numpy().astype(np.int64), self.campaigns
                ),
            }
        )
        for i, c in enumerate(self.extra_columns):
            out[c] = pd.Series(table[f"extra_{i}"].to_pandas(), dtype="str")
        if lead_rows is None:
            self._frame = out
        return out

    def _where(
        self,
        lead_rows: np.ndarray | None,
        kinds: Iterable[str] | None,
        lead_range: tuple[int, int] | None = None,
    ) -> tuple[str, duckdb.DuckDBPyConnection]:
        con = self.cursor()
        clauses = []
        if lead_range is not None:
            clauses.append(f"lead BETWEEN {int(lead_range[0])} AND {int(lead_range[1])}")
        if lead_rows is not None:
            con.register("wanted", pa.table({"lead": np.unique(np.asarray(lead_rows, np.int32))}))
            clauses.append("lead IN (SELECT lead FROM wanted)")
        if kinds is not None:
            codes = self.codes(kinds)
            clauses.append(f"code IN ({', '.join(map(str, codes))})" if codes else "false")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), con


_CONTRACT = ("lead_id", "occurred_at", "activity_type", "value", "campaign")


def _categories(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """Codes into names as a categorical with sorted categories (what `astype("category")`
    of the text gives); -1 stays missing."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    remap = np.empty(len(names) + 1, dtype=np.int64)
    remap[order] = np.arange(len(names))
    remap[-1] = -1
    return pd.Categorical.from_codes(
        remap[np.asarray(codes, dtype=np.int64)], categories=[names[i] for i in order]
    )


def _discard(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    try:
        con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
