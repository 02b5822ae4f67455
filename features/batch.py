"""Batch engine: the labelled training set, built with DuckDB SQL (in-process, out of core).

The event-level work (joining each snapshot to its lead's past activities and aggregating)
runs in DuckDB, which spills to disk when memory runs short; pandas only holds per-lead and
per-snapshot tables. Formulas on top of the aggregates live in `leadscore.features.definitions`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.crm.activity_table import TABLE
from leadscore.crm.dataset import Dataset
from leadscore.crm.lead_index import lead_positions
from leadscore.crm.times import US_PER_DAY, from_us, timestamps_us, to_us, utc
from leadscore.features.config import FeatureConfig, data_ages
from leadscore.features.definitions import (
    FeatureSpec,
    Primitives,
    assemble_features,
    resolve_spec,
)
from leadscore.features.labels import Timeline, life_table_counts, scoring_rows, snapshot_rows

LIFE_TABLE = "life_table"  # the training set's attrs key of `life_table_counts`
# Entity rows featurised in one DuckDB query: bounds the memory of the event-level work.
SNAPSHOT_CHUNK = 500_000


def feature_spec_for(
    dataset: Dataset,
    config: FeatureConfig,
    observed_types: list[str] | None = None,
    data_end: pd.Timestamp | None = None,
) -> FeatureSpec:
    """Resolve the feature set of a dataset under a config (`observed_types` and `data_end`:
    the activity types and the data's end found by an engine that read the activities
    itself; default: the table's)."""
    dtypes = {
        c: "categorical" if isinstance(dataset.leads[c].dtype, pd.CategoricalDtype) else "numeric"
        for c in dataset.profile_columns
    }
    observed = (
        list(dataset.activity_table.type_counts()) if observed_types is None else observed_types
    )
    spread_from = None
    if config.ages_follow_data and not dataset.is_flat:
        ages = ages_of_data(dataset, config, data_end)
        added = sorted(set(ages) - set(config.snapshot_ages_days))
        if added:  # from the age the added ones step from: no age between them goes unseen
            spread_from = max(a for a in ages if a < added[0])
        config = config.model_copy(update={"snapshot_ages_days": ages})
    return resolve_spec(
        config,
        profile_dtypes=dtypes,
        observed_types=[] if dataset.is_flat else observed,
        sales_touch_types=list(dataset.spec.sales_touch_types),
        history=not dataset.is_flat,
        spread_from_days=spread_from,
    )


def ages_of_data(
    dataset: Dataset, config: FeatureConfig, data_end: pd.Timestamp | None = None
) -> list[float]:
    """The snapshot ages for this dataset (`leadscore.features.config.data_ages`): the
    configured ones, extended toward the age of the oldest lead open at the data's end."""
    timeline = Timeline.of_dataset(dataset)
    end_us = to_us(utc(data_end if data_end is not None else dataset.data_end))
    created = timeline.created_us
    if not len(created):
        return list(config.snapshot_ages_days)
    every = np.arange(len(created), dtype=np.int64)
    open_ = timeline.is_open(every, np.full(len(every), end_us, dtype=np.int64))
    oldest_open = float((end_us - created[open_].min()) / US_PER_DAY) if open_.any() else None
    oldest_matured = float((end_us - created.min()) / US_PER_DAY) - config.horizon_days
    return data_ages(
        list(config.snapshot_ages_days),
        oldest_open_days=oldest_open,
        oldest_matured_days=oldest_matured,
    )


def build_training_set(
    dataset: Dataset,
    config: FeatureConfig | None = None,
    *,
    data_end: pd.Timestamp | None = None,
    spec: FeatureSpec | None = None,
) -> tuple[pd.DataFrame, FeatureSpec, dict]:
    """One row per (lead, snapshot): lead_id, as_of, label, then the features in spec order.

    Args:
        dataset: a validated dataset.
        config: the feature config (defaults when None).
        data_end: end of observation (censoring); defaults to the dataset's latest timestamp.
        spec: reuse a fixed feature set (e.g. the one a model was trained with).

    Returns:
        (training set, feature spec, stats about snapshots and drops)
    """
    config = config or FeatureConfig()
    spec = spec or feature_spec_for(dataset, config)
    if dataset.is_flat:
        return _flat_training_set(dataset, spec)
    snaps, stats = training_rows(dataset, spec, data_end)
    end = utc(data_end if data_end is not None else dataset.data_end)
    return with_life_table(_labelled(dataset, spec, snaps), dataset, spec, end), spec, stats


def with_life_table(
    df: pd.DataFrame, dataset: Dataset, spec: FeatureSpec, data_end: pd.Timestamp
) -> pd.DataFrame:
    """The training set `df` with the life table of its bands of ages in its attrs
    (`LIFE_TABLE`: `leadscore.features.labels.life_table_counts` as JSON), when its spec has
    bands. It rides with the rows it describes (a slice of them keeps it): the model's
    calibration by age reads it (`leadscore.stats.life_table`)."""
    if spec.spread_from_days is not None:
        # As one JSON text: pandas deep-copies attrs into every frame derived from this one
        # (a filter, a slice), and a text is copied for nothing where lists of numbers took
        # a second each time; Parquet keeps it as it is.
        df.attrs[LIFE_TABLE] = json.dumps(
            life_table_counts(
                Timeline.of_dataset(dataset),
                ages_days=spec.snapshot_ages_days,
                spread_from_days=spec.spread_from_days,
                horizon_days=spec.horizon_days,
                data_end=data_end,
            ),
            separators=(",", ":"),
        )
    return df


def training_set_chunks(
    dataset: Dataset,
    config: FeatureConfig | None = None,
    *,
    data_end: pd.Timestamp | None = None,
    spec: FeatureSpec | None = None,
    rows: int = SNAPSHOT_CHUNK,
) -> tuple[FeatureSpec, dict, Iterator[pd.DataFrame]]:
    """`build_training_set` in consecutive chunks of at most `rows` rows (the same rows in
    the same order, and the same spec and stats, known before the first chunk), so that a
    training set larger than memory can be written out (`leadscore.features.training_set`)."""
    config = config or FeatureConfig()
    spec = spec or feature_spec_for(dataset, config)
    if dataset.is_flat:
        df, spec, stats = _flat_training_set(dataset, spec)
        return spec, stats, iter([df])
    snaps, stats = training_rows(dataset, spec, data_end)

    def chunks() -> Iterator[pd.DataFrame]:
        for lo in range(0, len(snaps), rows):
            yield _labelled(dataset, spec, snaps.iloc[lo : lo + rows])

    return spec, stats, chunks()


def training_rows(
    dataset: Dataset, spec: FeatureSpec, data_end: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, dict]:
    """The entity rows of the training set (`leadscore.features.labels.snapshot_rows`) and its stats."""
    end = utc(data_end if data_end is not None else dataset.data_end)
    snaps, stats = snapshot_rows(
        Timeline.of_dataset(dataset),
        ages_days=spec.snapshot_ages_days,
        horizon_days=spec.horizon_days,
        data_end=end,
        spread_from_days=spec.spread_from_days,
    )
    stats["data_end"] = end.isoformat()
    stats["leads"] = int(np.unique(snaps["lead"].to_numpy()).size)
    return snaps, stats


def _labelled(
    dataset: Dataset, spec: FeatureSpec, snaps: pd.DataFrame, matrix: np.ndarray | None = None
) -> pd.DataFrame:
    """Training-set rows of snapshot entity rows: `matrix` their behaviour features when an
    engine computed them elsewhere (default: the batch engine here)."""
    matrix = behaviour_matrix(dataset, spec, snaps) if matrix is None else matrix
    return lead_frame(dataset, spec, snaps, matrix, {"label": snaps["label"].to_numpy()})


def build_scoring_set(
    dataset: Dataset,
    spec: FeatureSpec,
    as_of: pd.Timestamp | str | None = None,
    *,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The open pipeline at `as_of` (default: the data's end), one row per lead: lead_id,
    as_of, then the features in spec order, as the training set has them (no label).

    Open as `leadscore.features.labels` defines it (the training snapshots' rule). Only what was known
    at as_of is used: later activities and deals are invisible. A flat export has no open
    pipeline (every row is decided): a LeadscoreError says so.
    `rows`: the entity rows to featurise (`leadscore.features.labels.scoring_rows` at the same as_of),
    when the caller has them for other retrievals too (the rules' inputs).
    """
    end = utc(dataset.data_end)
    when = utc(as_of) if as_of is not None else end
    snaps = scoring_rows(dataset, when) if rows is None else rows
    return lead_frame(dataset, spec, snaps, behaviour_matrix(dataset, spec, snaps), {})


def behaviour_matrix(dataset: Dataset, spec: FeatureSpec, snaps: pd.DataFrame) -> np.ndarray:
    """The behaviour features of entity rows (`leadscore.features.labels`: lead, as_of_us, created_us),
    a column-major matrix (n, len(spec.behaviour_names)).

    Rows go to DuckDB in chunks of at most `SNAPSHOT_CHUNK` covering a range of leads each,
    so the event-level work of a chunk reads only its leads' events and memory is bounded
    by a chunk, whatever the number of rows and events.
    """
    n = len(snaps)
    out = np.empty((n, len(spec.behaviour_names)), order="F")
    if not spec.history or not n:
        return out
    lead = snaps["lead"].to_numpy()
    order = np.argsort(lead, kind="stable")
    con = dataset.activity_table.cursor()
    con.register("f_deals", deal_table(dataset))
    try:
        for lo in range(0, n, SNAPSHOT_CHUNK):
            rows = order[lo : lo + SNAPSHOT_CHUNK]
            part = snaps.iloc[rows]
            first, last = int(lead[rows[0]]), int(lead[rows[-1]])
            # The chunk's leads are a range: the scan keeps only their events.
            events = (
                f"(SELECT lead, t_us, code FROM {TABLE} WHERE lead BETWEEN {first} AND {last} "
                "AND lead IN (SELECT lead FROM f_snaps))"
            )
            prims = _primitives(con, part, spec, events=events, types=dataset.activity_table.types)
            out[rows] = assemble_features(prims, spec)
    finally:
        con.close()
    return out


def deal_table(dataset: Dataset) -> pa.Table:
    """The deals as the engines read them: each one's lead position, created_us, closed_us."""
    deals = dataset.deals
    return pa.table(
        {
            "lead": lead_positions(deals["lead_id"], dataset.leads["lead_id"]),
            "created_us": timestamps_us(deals["created_at"]),
            "closed_us": timestamps_us(deals["closed_at"]),
        }
    )


def bucket_primitives(
    rows: pd.DataFrame, acts: pa.Table, deals: pa.Table, types: list[str], spec: FeatureSpec
) -> Primitives:
    """The primitives of entity rows (lead, as_of_us, created_us) from the events and deals
    given as Arrow tables (lead, t_us, code into `types`; lead, created_us, closed_us): the
    batch engine on one bucket of leads, as a distributed engine runs it on each of its
    tasks (`leadscore.features.spark_engine`). One thread: the task is one core's work."""
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("g_acts", acts)
        con.register("f_deals", deals)
        return _primitives(con, rows, spec, events="g_acts", types=types)
    finally:
        con.close()


def lead_frame(
    dataset: Dataset,
    spec: FeatureSpec,
    snaps: pd.DataFrame,
    matrix: np.ndarray,
    extra: dict[str, np.ndarray],
) -> pd.DataFrame:
    """lead_id, as_of, the `extra` columns, the profile columns, then the behaviour features."""
    leads = dataset.leads
    # Column-major feature matrix: pandas keeps it as one block, without copying.
    df = pd.DataFrame(matrix, columns=spec.behaviour_names, copy=False)
    rows = snaps["lead"].to_numpy()
    # Ids stay Arrow text and categoricals stay codes: no round trip through Python objects.
    front = {
        "lead_id": leads["lead_id"].take(rows).reset_index(drop=True),
        "as_of": from_us(snaps["as_of_us"].to_numpy()),
        **extra,
    }
    for col in spec.categorical:
        values = leads[col].astype("category").array
        front[col] = pd.Categorical.from_codes(values.codes[rows], dtype=values.dtype)
    for col in spec.numeric_profile:
        front[col] = leads[col].to_numpy(dtype="float64")[rows]
    for position, (name, values) in enumerate(front.items()):
        df.insert(position, name, values)
    return df


def _flat_training_set(
    dataset: Dataset, spec: FeatureSpec
) -> tuple[pd.DataFrame, FeatureSpec, dict]:
    """A flat dataset: one snapshot per lead at creation, label from the outcome column."""
    leads = dataset.leads
    out = {
        "lead_id": leads["lead_id"].to_numpy(),
        "as_of": leads["created_at"].to_numpy(),
        "label": leads[dataset.label_column].to_numpy(dtype="int8"),
    }
    for col in spec.categorical:
        out[col] = pd.Categorical(leads[col].to_numpy().astype(object))
    for col in spec.numeric_profile:
        out[col] = leads[col].to_numpy(dtype="float64")
    df = pd.DataFrame(out)
    stats = {
        "candidates": len(df),
        "dropped_closed": 0,
        "dropped_censored": 0,
        "snapshots": len(df),
        "positives": int(df["label"].sum()),
        "leads": len(df),
    }
    return df, spec, stats


def _primitives(
    con: duckdb.DuckDBPyConnection,
    snaps: pd.DataFrame,
    spec: FeatureSpec,
    *,
    events: str,
    types: list[str],
) -> Primitives:
    """Aggregates per snapshot in one pass over (snapshot x past activity) pairs, grouped by
    activity-type code; per-type and overall primitives are then folded in NumPy.

    `snaps`: entity rows (lead, as_of_us, created_us), registered here as `f_snaps`;
    `events`: a SQL relation of (lead, t_us, code) holding at least their leads' events,
    `code` being the event type's position in `types`; the deals registered as `f_deals`.
    """
    n, k, w = len(snaps), len(spec.activity_types), len(spec.windows_days)
    type_index = {t: i for i, t in enumerate(spec.activity_types)}
    touches = set(spec.sales_touch_types)
    # Per event code: spec index (-1: a type the spec does not know), sales touch.
    index_of = np.array([type_index.get(c, -1) for c in types] + [-1], dtype=np.int64)
    sales_of = np.array([c in touches for c in types] + [False])
    lead = snaps["lead"].to_numpy()
    con.register(
        "f_snaps",
        pa.table(
            {
                "sid": np.arange(n, dtype=np.int64),
                "lead": lead,
                "as_of_us": snaps["as_of_us"].to_numpy(),
            }
        ),
    )
    acts = events
    windows = ", ".join(
        f"count(*) FILTER (WHERE a.t_us > s.as_of_us - {int(d) * US_PER_DAY})::DOUBLE AS c{j}"
        for j, d in enumerate(spec.windows_days)
    )
    half_life_us = spec.decay_half_life_days * US_PER_DAY
    r = con.execute(
        f"""SELECT s.sid, a.code, {windows}, count(*)::DOUBLE AS c{w},
                   max(a.t_us)::DOUBLE AS t_max, min(a.t_us)::DOUBLE AS t_min,
                   sum(pow(2.0, (a.t_us - s.as_of_us) / {half_life_us})) AS decayed
            FROM f_snaps s JOIN {acts} a ON a.lead = s.lead AND a.t_us <= s.as_of_us
            GROUP BY s.sid, a.code"""
    ).fetchnumpy()
    # A day is active in (as_of - A, as_of] iff one of its events is; with A >= 1 day that
    # is exactly: its first event <= as_of and its last > as_of - A.
    active = con.execute(
        f"""WITH lead_days AS (
                SELECT lead, min(t_us) AS t_min, max(t_us) AS t_max
                FROM {acts} GROUP BY lead, t_us // {US_PER_DAY}
            )
            SELECT s.sid, count(*)::DOUBLE AS n FROM f_snaps s JOIN lead_days d
            ON d.lead = s.lead AND d.t_min <= s.as_of_us AND d.t_max > s.as_of_us - {spec.active_days_window * US_PER_DAY}
            GROUP BY s.sid"""
    ).fetchnumpy()
    open_deals = con.execute(
        """SELECT s.sid, count(*)::DOUBLE AS n FROM f_snaps s JOIN f_deals d
           ON d.lead = s.lead AND d.created_us <= s.as_of_us
              AND d.closed_us > s.as_of_us
           GROUP BY s.sid"""
    ).fetchnumpy()
    con.unregister("f_snaps")

    sid = r["sid"]
    code = r["code"].astype(np.int64)
    spec_idx, sales = index_of[code], sales_of[code]
    known = spec_idx >= 0
    counts = [r[f"c{j}"] for j in range(w + 1)]
    # Stored (window, type, snapshot) and viewed as (snapshot, type, window): each scatter
    # below is one flat index, and each feature column assemble_features reads is contiguous.
    k_sid = spec_idx[known].astype(np.int64) * n + sid[known]
    planes = np.zeros((w + 1, k, n))
    for j in range(w + 1):
        planes[j].reshape(-1)[k_sid] = counts[j][known]  # planes[j] is contiguous: a view
    type_counts = planes.transpose(2, 1, 0)
    last_planes = np.full((k, n), np.nan)
    last_planes.reshape(-1)[k_sid] = r["t_max"][known]
    type_last = last_planes.T
    all_counts = np.column_stack(
        [np.bincount(sid, weights=counts[j], minlength=n) for j in range(w + 1)]
    )
    last = np.full(n, -np.inf)
    np.maximum.at(last, sid, r["t_max"])
    first_touch = np.full(n, np.inf)
    np.minimum.at(first_touch, sid[sales], r["t_min"][sales])
    engaged = known & ~spec.sales_mask[np.maximum(spec_idx, 0)]
    active_days = np.zeros(n)
    active_days[active["sid"]] = active["n"]
    opens = np.zeros(n)
    opens[open_deals["sid"]] = open_deals["n"]
    return Primitives(
        created_us=snaps["created_us"].to_numpy(dtype=np.float64),
        as_of_us=snaps["as_of_us"].to_numpy(dtype=np.float64),
        type_counts=type_counts,
        type_last_us=type_last,
        all_counts=all_counts,
        last_us=np.where(np.isinf(last), np.nan, last),
        active_days=active_days,
        decayed=np.bincount(sid[engaged], weights=r["decayed"][engaged], minlength=n),
        first_touch_us=np.where(np.isinf(first_touch), np.nan, first_touch),
        open_deals=opens,
    )
