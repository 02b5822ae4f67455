"""Training-set files: Parquet with the feature spec and snapshot stats in its metadata."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.crm.errors import DatasetError
from leadscore.crm.folders import write_whole
from leadscore.features.definitions import FeatureSpec

METADATA_KEY = b"leadscore"


def write_training_set(
    df: pd.DataFrame | Iterable[pd.DataFrame], spec: FeatureSpec, stats: dict, path: str | Path
) -> Path:
    """Write a training set, whole or from consecutive chunks (`leadscore.features.batch.
    training_set_chunks`: one chunk in memory at a time), atomically (temporary file, then
    rename): a failed write leaves no file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = [df] if isinstance(df, pd.DataFrame) else df
    extra = {METADATA_KEY: json.dumps({"feature_spec": spec.model_dump(), "stats": stats}).encode()}

    def write(tmp: Path) -> None:
        writer = None
        try:
            for chunk in chunks:
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    schema = table.schema.with_metadata({**(table.schema.metadata or {}), **extra})
                    writer = pq.ParquetWriter(tmp, schema, compression="zstd")
                writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
            if writer is None:
                raise DatasetError(str(path), "no training rows to write")
        finally:
            if writer is not None:
                writer.close()

    return write_whole(path, write)


def read_training_set(
    path: str | Path, *, filters: list | None = None
) -> tuple[pd.DataFrame, FeatureSpec, dict]:
    """Read a training set written by `write_training_set`, with its spec and stats
    (`filters`: pyarrow's row filters, to read a part of a large set)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(str(path), "training set not found")
    try:
        table = pq.read_table(path, filters=filters)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(path.name, f"not a Parquet file ({exc})") from exc
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise DatasetError(
            path.name, "no leadscore metadata", expected="a file written by `leadscore features`"
        )
    meta = json.loads(raw)
    return table.to_pandas(), FeatureSpec.model_validate(meta["feature_spec"]), meta["stats"]
