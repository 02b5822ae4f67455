"""Spark engine: the batch engine's features on a Spark cluster, by the same definitions.

The driver holds what is per lead: the leads and deals of the export (`leadscore.crm.loading`) and the
entity rows (`leadscore.features.labels`: training snapshots or the open pipeline at as_of). The
activity export, the table that grows without bound, is read by Spark and never reaches the
driver:

1. the executors check it with the loader's own normalisers on Arrow batches
   (`leadscore.crm.activity_export.check_activity_batch`: the contract's checks, the same timestamp parsing
   and lead-id matching as a DuckDB run);
2. events, deals and entity rows are shuffled by a bucket of leads (`lead % buckets`);
3. each bucket is one task that runs the batch engine on its rows: the event-level SQL of
   `leadscore.features.batch` in an in-process DuckDB, then the formulas of `leadscore.features.definitions`
   (`assemble_features`). There is no second copy of a definition to drift.

`spark_session` starts `local[*]` by default, a cluster through a master URL, or Spark
Connect when `SPARK_REMOTE` is set. Tasks need leadscore and its dependencies installed on
the executors (the same package; see docs/scale.md).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.crm.activity_export import check_activity_batch, table_columns
from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import DatasetError, LeadscoreError
from leadscore.crm.lead_index import LeadIndex
from leadscore.crm.times import timestamps_us, utc
from leadscore.features.config import FeatureConfig
from leadscore.features.definitions import FeatureSpec, assemble_features

# Marks a data-contract error raised on an executor, so that the driver can raise it again.
ERROR_MARK = "LEADSCORE-DATASET-ERROR:"
KIND_EVENT, KIND_DEAL = 0, 1
HISTORY_SCHEMA = "lead INT, kind TINYINT, t_us BIGINT, closed_us BIGINT, activity_type STRING"
# The JVM heap of a local session (the driver is the executor there); a cluster's is set
# the cluster's way (spark-submit --driver-memory / --executor-memory).
DRIVER_MEMORY_ENV = "LEADSCORE_SPARK_DRIVER_MEMORY"
ARROW_BATCH_ROWS = 200_000


def spark_session(master: str | None = None, *, app: str = "leadscore"):
    """A Spark session: Spark Connect when `SPARK_REMOTE` is set and no master is given,
    spark-submit's own when it launched this process, else `master` (default `local[*]`).
    Timestamps in UTC, the UI off, Arrow on; Python workers run this interpreter unless
    `PYSPARK_PYTHON` says otherwise."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - the extra is part of dev
        raise LeadscoreError(
            "the Spark engine needs pyspark: pip install 'leadscore[spark]'"
        ) from exc
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    remote = os.environ.get("SPARK_REMOTE")
    builder = SparkSession.builder.appName(app)
    if master is None and remote:
        builder = builder.remote(remote)
    elif master is None and os.environ.get("PYSPARK_GATEWAY_PORT"):
        pass  # launched by spark-submit: its --master and --conf hold
    else:
        master = master or "local[*]"
        builder = (
            builder.master(master)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
        )
        if master.startswith("local"):  # the driver is the executor: its heap holds the shuffle
            builder = builder.config(
                "spark.driver.memory", os.environ.get(DRIVER_MEMORY_ENV, "") or "4g"
            )
    builder = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Checked in batches of this many rows: the per-batch cost is the loader's.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    )
    try:
        return builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - Spark's errors come in many classes
        where = f"Spark Connect at {remote}" if master is None and remote else f"master {master}"
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise LeadscoreError(f"Spark did not start ({where}): {first.strip()[:300]}") from exc


# Events per bucket at most, by default: what one task holds at once (about 100 MB).
BUCKET_EVENTS = 1_000_000


def default_buckets(spark, events: int = 0) -> int:
    """Buckets of leads: a few per core, and enough that a bucket holds about
    `BUCKET_EVENTS` events at most (each bucket is one task's memory)."""
    try:
        cores = int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext  # noqa: BLE001
        cores = int(spark.conf.get("spark.sql.shuffle.partitions", "8"))
    return max(4, 4 * cores, -(-events // BUCKET_EVENTS))


def activity_events(spark, dataset: Dataset):
    """The dataset's activity export as a Spark DataFrame of checked events
    (`HISTORY_SCHEMA`, kind 0), read and checked on the executors."""
    file = dataset.files.get("activities")
    if file is None:
        return spark.createDataFrame([], HISTORY_SCHEMA)
    path = Path(dataset.path) / file
    names = table_columns(path)
    if path.suffix == ".csv":
        raw = (
            spark.read.option("header", "true")
            .option("inferSchema", "false")
            .option("multiLine", "true")
            .option("escape", '"')
            .option("mode", "FAILFAST")
            .csv(str(path))
        )
    else:
        raw = spark.read.parquet(str(path))
    leads = pa.table(
        {
            "lead_id": pa.array(dataset.leads["lead_id"].astype(object), type=pa.string()),
            "created_us": timestamps_us(dataset.leads["created_at"]),
        }
    )
    policy = dataset.spec.early_events
    check = _batch_checker(file, names, leads, policy)
    return raw.mapInArrow(check, HISTORY_SCHEMA)


def _batch_checker(file: str, names: list[str], leads: pa.Table, policy: str) -> Callable:
    """The executors' side of `activity_events`: Arrow batches in, checked events out."""

    def check(batches):
        known = index = None
        for batch in batches:
            if known is None:  # once per task
                known = leads.to_pandas()
                known["created_at"] = pd.to_datetime(known.pop("created_us"), unit="us", utc=True)
                index = LeadIndex(known["lead_id"])
            frame = pa.Table.from_batches([batch]).to_pandas()
            frame.columns = names
            try:
                lead_rows, t_us, kinds = check_activity_batch(frame, file, known, policy, index)
            except DatasetError as exc:
                raise RuntimeError(ERROR_MARK + json.dumps(_error_fields(exc))) from None
            n = len(lead_rows)
            yield pa.RecordBatch.from_pydict(
                {
                    "lead": pa.array(lead_rows.astype(np.int32)),
                    "kind": pa.array(np.full(n, KIND_EVENT, dtype=np.int8)),
                    "t_us": pa.array(t_us),
                    "closed_us": pa.nulls(n, pa.int64()),
                    "activity_type": pa.array(kinds, type=pa.string()),
                }
            )

    return check


def _error_fields(exc: DatasetError) -> dict[str, Any]:
    return {
        "file": exc.file,
        "problem": exc.problem,
        "column": exc.column,
        "values": [str(v) for v in exc.values],
        "expected": exc.expected,
    }


def reraised(exc: BaseException) -> BaseException:
    """A data-contract error raised on an executor, as the DatasetError it was (rows are
    counted within a batch there: `leadscore validate` names the file's rows); other
    errors as they are."""
    text = str(exc)
    at = text.find(ERROR_MARK)
    if at < 0:
        return exc
    raw = text[at + len(ERROR_MARK) :]
    fields = json.JSONDecoder().raw_decode(raw)[0]
    return DatasetError(
        fields["file"],
        fields["problem"] + " (found by Spark; `leadscore validate` names its rows)",
        column=fields["column"],
        values=fields["values"],
        expected=fields["expected"],
    )


def history_frame(spark, dataset: Dataset):
    """Events and deals of the dataset as one Spark DataFrame (`HISTORY_SCHEMA`): the
    right side of every bucket."""
    from leadscore.features.batch import deal_table

    deals = deal_table(dataset)
    n = deals.num_rows
    deal_rows = pa.table(
        {
            "lead": deals["lead"].cast(pa.int32()),
            "kind": pa.array(np.full(n, KIND_DEAL, dtype=np.int8)),
            "t_us": deals["created_us"],
            "closed_us": deals["closed_us"],
            "activity_type": pa.nulls(n, pa.string()),
        }
    )
    events = activity_events(spark, dataset)
    if not n:
        return events
    return events.unionByName(spark.createDataFrame(deal_rows))


def bucketed(frame, buckets: int):
    from pyspark.sql import functions as F

    return frame.withColumn("bucket", F.pmod(F.col("lead"), F.lit(buckets)))


def entity_frame(spark, rows: pd.DataFrame, extra: pa.Table | None = None):
    """Entity rows (`leadscore.features.labels`) as a Spark DataFrame with their row number `sid`
    and, when given, more columns of the same rows (`extra`)."""
    table = pa.table(
        {
            "sid": np.arange(len(rows), dtype=np.int64),
            "lead": rows["lead"].to_numpy().astype(np.int32),
            "as_of_us": rows["as_of_us"].to_numpy().astype(np.int64),
            "created_us": rows["created_us"].to_numpy().astype(np.int64),
        }
    )
    if extra is not None:
        for name in extra.column_names:
            table = table.append_column(name, extra[name])
    return spark.createDataFrame(table)


def bucket_inputs(
    left: pa.Table, right: pa.Table
) -> tuple[pd.DataFrame, pa.Table, pa.Table, list[str]]:
    """One bucket's entity rows (pandas: sid, lead, as_of_us, created_us, ...), its events
    (lead, t_us, code into `types`) and deals (lead, created_us, closed_us), and `types`."""
    kind = right["kind"].to_numpy(zero_copy_only=False)
    events = right.filter(pa.array(kind == KIND_EVENT))
    deals = right.filter(pa.array(kind == KIND_DEAL))
    encoded = events["activity_type"].combine_chunks().dictionary_encode()
    types = [str(t) for t in encoded.dictionary.to_pylist()]
    acts = pa.table(
        {
            "lead": events["lead"],
            "t_us": events["t_us"],
            "code": pa.array(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)),
        }
    )
    deal_table = pa.table(
        {"lead": deals["lead"], "created_us": deals["t_us"], "closed_us": deals["closed_us"]}
    )
    return left.to_pandas(), acts, deal_table, types


def features_schema(spec: FeatureSpec) -> str:
    return "sid BIGINT, " + ", ".join(f"`f{j}` DOUBLE" for j in range(len(spec.behaviour_names)))


def _bucket_features(spec_json: str) -> Callable:
    def run(left: pa.Table, right: pa.Table) -> pa.Table:
        from leadscore.features.batch import bucket_primitives

        spec = FeatureSpec.model_validate_json(spec_json)
        rows, acts, deals, types = bucket_inputs(left, right)
        matrix = assemble_features(bucket_primitives(rows, acts, deals, types, spec), spec)
        columns = {"sid": pa.array(rows["sid"].to_numpy())}
        for j in range(matrix.shape[1]):
            columns[f"f{j}"] = pa.array(matrix[:, j])
        return pa.table(columns)

    return run


class SparkHistory:
    """A dataset's history on Spark: the checked events and the deals, read once
    (persisted) for the jobs of one run, with what the driver must know of them."""

    def __init__(self, spark, dataset: Dataset) -> None:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        self.spark = spark
        self.dataset = dataset
        # On disk: the JVM heap is not where tens of millions of events should live.
        self.frame = history_frame(spark, dataset).persist(StorageLevel.DISK_ONLY)
        try:
            facts = (
                self.frame.where(F.col("kind") == KIND_EVENT)
                .groupBy("activity_type")
                .agg(F.count(F.lit(1)).alias("n"), F.max("t_us").alias("t_max"))
                .collect()
            )
        except Exception as exc:  # noqa: BLE001 - an executor's error, raised again as ours
            again = reraised(exc)
            if again is exc:  # not a contract error: Spark could not read or run it
                file = dataset.files.get("activities", "the activities")
                first = next((ln for ln in str(exc).splitlines() if ln.strip()), repr(exc))
                again = LeadscoreError(f"{file}: the Spark job reading it failed: {first[:300]}")
            raise again from None
        self.type_counts = {r["activity_type"]: int(r["n"]) for r in facts}
        self.t_max_us = max((int(r["t_max"]) for r in facts), default=None)

    @property
    def data_end(self) -> pd.Timestamp:
        """The dataset's latest timestamp, activities included (`Dataset.data_end`)."""
        ends = [self.dataset.data_end_without_activities()]
        if self.t_max_us is not None:
            ends.append(pd.Timestamp(self.t_max_us, unit="us", tz="UTC"))
        return max(ends)

    def feature_spec(self, config: FeatureConfig) -> FeatureSpec:
        """`leadscore.features.batch.feature_spec_for`, with the activity types Spark found."""
        from leadscore.features.batch import feature_spec_for

        return feature_spec_for(self.dataset, config, list(self.type_counts), self.data_end)

    def close(self) -> None:
        self.frame.unpersist()


def spark_training_set(
    history: SparkHistory,
    config: FeatureConfig | None = None,
    *,
    data_end: pd.Timestamp | None = None,
    spec: FeatureSpec | None = None,
    buckets: int | None = None,
) -> tuple[pd.DataFrame, FeatureSpec, dict]:
    """`leadscore.features.batch.build_training_set` on Spark: the same rows, spec and stats."""
    from leadscore.features.batch import (
        _flat_training_set,
        _labelled,
        training_rows,
        with_life_table,
    )

    dataset = history.dataset
    config = config or FeatureConfig()
    if dataset.is_flat:  # one row per lead, no history: nothing for Spark to do
        return _flat_training_set(dataset, spec or history.feature_spec(config))
    spec = spec or history.feature_spec(config)
    end = utc(data_end if data_end is not None else history.data_end)
    snaps, stats = training_rows(dataset, spec, end)
    matrix = spark_behaviour_matrix(history, spec, snaps, buckets=buckets)
    return with_life_table(_labelled(dataset, spec, snaps, matrix), dataset, spec, end), spec, stats


def spark_scoring_set(
    history: SparkHistory,
    spec: FeatureSpec,
    as_of: pd.Timestamp | str | None = None,
    *,
    buckets: int | None = None,
) -> pd.DataFrame:
    """`leadscore.features.batch.build_scoring_set` on Spark: the open pipeline at as_of."""
    from leadscore.features.batch import lead_frame
    from leadscore.features.labels import scoring_rows

    when = utc(as_of) if as_of is not None else history.data_end
    rows = scoring_rows(history.dataset, when)
    matrix = spark_behaviour_matrix(history, spec, rows, buckets=buckets)
    return lead_frame(history.dataset, spec, rows, matrix, {})


def spark_behaviour_matrix(
    history: SparkHistory, spec: FeatureSpec, rows: pd.DataFrame, *, buckets: int | None = None
) -> np.ndarray:
    """`leadscore.features.batch.behaviour_matrix` on Spark: the same matrix for the same entity rows
    (collected to the driver, in the rows' order)."""
    n = len(rows)
    out = np.empty((n, len(spec.behaviour_names)), order="F")
    if not n or not spec.history:
        return out
    task = _bucket_features(spec.model_dump_json())
    table = per_bucket(history, rows, task, features_schema(spec), buckets=buckets)
    for j in range(out.shape[1]):
        out[:, j] = table[f"f{j}"].to_numpy(zero_copy_only=False)
    return out


def per_bucket(
    history: SparkHistory,
    rows: pd.DataFrame,
    task: Callable[[pa.Table, pa.Table], pa.Table],
    schema: str,
    *,
    extra: pa.Table | None = None,
    buckets: int | None = None,
) -> pa.Table:
    """`task` on every bucket of leads (its entity rows, with `extra` columns, and its
    history), the results collected in the entity rows' order: one row each, by `sid`.
    An executor's data-contract error comes back as the DatasetError it was."""
    spark = history.spark
    buckets = buckets or default_buckets(spark, sum(history.type_counts.values()))
    left = bucketed(entity_frame(spark, rows, extra), buckets)
    right = bucketed(history.frame, buckets)
    result = left.groupby("bucket").cogroup(right.groupby("bucket")).applyInArrow(task, schema)
    try:
        table = result.toArrow()
    except Exception as exc:  # noqa: BLE001 - an executor's error, raised again as ours
        raise reraised(exc) from None
    n = len(rows)
    sid = table["sid"].to_numpy()
    if len(sid) != n or len(np.unique(sid)) != n:
        raise LeadscoreError(f"Spark returned {len(sid)} rows for {n} entity rows")
    return table.take(pa.array(np.argsort(sid)))
