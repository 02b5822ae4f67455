"""The files of a simulated dataset, appended chunk by chunk: leads, activities, deals and
(when simulated) lead_status (Parquet, or CSV with timestamps as a CRM export writes them) and `truth.csv`, the latent
state the oracle reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.simulation.chunks import Chunk

TRUTH_FILE = "truth.csv"


class DatasetWriters:
    """Appends chunks to leads/activities/deals (Parquet or CSV) and truth.csv."""

    def __init__(self, folder: Path, fmt: str) -> None:
        self.folder, self.fmt = folder, fmt
        self.writers: dict[str, object] = {}

    def __enter__(self) -> DatasetWriters:
        return self

    def write(self, chunk: Chunk) -> None:
        for name in ("leads", "activities", "deals"):
            self._append(name, getattr(chunk, name), self.fmt)
        self._append("truth", chunk.truth, "csv")
        if chunk.lead_status is not None:
            self._append("lead_status", chunk.lead_status, self.fmt)

    def _append(self, name: str, table: pa.Table, fmt: str) -> None:
        writer = self.writers.get(name)
        if writer is None:
            path = self.folder / (TRUTH_FILE if name == "truth" else f"{name}.{fmt}")
            if fmt == "parquet":
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            else:
                writer = pacsv.CSVWriter(path, _csv_schema(table.schema))
            self.writers[name] = writer
        writer.write_table(table if fmt == "parquet" else _as_csv_table(table))

    def __exit__(self, *exc: object) -> None:
        for writer in self.writers.values():
            writer.close()


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema(
        [(f.name, pa.string() if pa.types.is_timestamp(f.type) else f.type) for f in schema]
    )


def _as_csv_table(table: pa.Table) -> pa.Table:
    """Timestamps as ISO-8601 with a Z, to the second, as a CRM export would have them."""
    cols = []
    for f, col in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(f.type):
            arr = col.to_numpy(zero_copy_only=False).astype("datetime64[s]")
            text = np.where(
                np.isnat(arr), "", np.char.add(np.datetime_as_string(arr, unit="s"), "Z")
            )
            cols.append(pa.array(text, mask=np.isnat(arr), type=pa.string()))
        else:
            cols.append(col)
    return pa.Table.from_arrays(cols, schema=_csv_schema(table.schema))
