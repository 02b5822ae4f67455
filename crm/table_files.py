"""A dataset's table files read: which file holds a table (CSV or Parquet, not both), a whole
table as text cells (CSV) or typed (Parquet), or its rows in batches of about `BATCH_ROWS`
(the activity export), with the column names stripped and checked for duplicates."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from leadscore.crm.contract import FORMATS
from leadscore.crm.errors import DatasetError

# Rows of the activity export checked at a time: memory stays bounded by a batch.
BATCH_ROWS = 1_000_000
CSV_BLOCK_BYTES = 64 << 20


def find_table(root: Path, name: str) -> Path | None:
    found = [root / f"{name}{ext}" for ext in FORMATS if (root / f"{name}{ext}").is_file()]
    if len(found) > 1:
        raise DatasetError(
            str(root),
            f"both {found[0].name} and {found[1].name} exist",
            expected=f"one {name} table, CSV or Parquet",
        )
    return found[0] if found else None


def read_table(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DatasetError(path.name, "file is empty", expected="a header row and data rows")
    try:
        if path.suffix == ".csv":
            # Everything as text first: types are decided (and errors reported) by us.
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(
            path.name, "file is empty", expected="a header row and data rows"
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DatasetError(path.name, f"cannot be read ({exc})") from exc
    df.columns = column_names(path, df.columns)
    return df.reset_index(drop=True)


def table_batches(path: Path) -> tuple[list[str], Iterator[pd.DataFrame]]:
    """The column names of a table file and its rows as pandas frames of about `BATCH_ROWS`
    (text cells for CSV, as `read_table` reads them)."""
    if path.stat().st_size == 0:
        raise DatasetError(path.name, "file is empty", expected="a header row and data rows")
    try:
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                raw_names = next(csv.reader(f), None)
            if not raw_names:
                raise DatasetError(
                    path.name, "file is empty", expected="a header row and data rows"
                )
            reader = pa_csv.open_csv(
                path,
                read_options=pa_csv.ReadOptions(
                    block_size=CSV_BLOCK_BYTES, column_names=raw_names, skip_rows=1
                ),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types={c: pa.string() for c in raw_names},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                    null_values=[""],
                ),
            )
            batches = (pa.Table.from_batches([b]) for b in reader)
        else:
            # Row group by row group: pre-buffering would hold the whole file's bytes.
            parquet = pq.ParquetFile(path, pre_buffer=False)
            raw_names = parquet.schema_arrow.names
            batches = (
                pa.Table.from_batches([b]) for b in parquet.iter_batches(batch_size=BATCH_ROWS)
            )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DatasetError(path.name, f"cannot be read ({exc})") from exc
    names = column_names(path, raw_names)

    def frames() -> Iterator[pd.DataFrame]:
        try:
            for table in batches:
                df = table.to_pandas()
                df.columns = names
                yield df
        except (pa.ArrowInvalid, OSError, ValueError) as exc:
            raise DatasetError(path.name, f"cannot be read ({exc})") from exc

    return names, frames()


def column_names(path: Path, raw) -> list[str]:
    """A table's column names, stripped; the same name twice is an error naming them."""
    names = [str(c).strip() for c in raw]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise DatasetError(path.name, "duplicate column names", values=dupes)
    return names
