"""Batch engine: the labelled training set, built with DuckDB SQL (in-process, out of core).

The event-level work (joining each snapshot to its lead's past activities and aggregating)
runs in DuckDB, which spills to disk when memory runs short; pandas only holds per-lead and
per-snapshot tables. Formulas on top of the aggregates live in `features.definitions`.
"""

from __future__ import annotations

import tempfile

import duckdb
import numpy as np
import pandas as pd

from features.config import FeatureConfig
from features.definitions import (
    US_PER_DAY,
    FeatureSpec,
    Primitives,
    assemble_features,
    resolve_spec,
)
from features.labels import build_snapshots, timestamps_us
from features.loading import Dataset


def feature_spec_for(dataset: Dataset, config: FeatureConfig) -> FeatureSpec:
    """Resolve the feature set of a dataset under a config."""
    dtypes = {
        c: "categorical" if isinstance(dataset.leads[c].dtype, pd.CategoricalDtype) else "numeric"
        for c in dataset.profile_columns
    }
    observed = [str(t) for t in dataset.activities["activity_type"].dropna().unique()]
    return resolve_spec(
        config,
        profile_dtypes=dtypes,
        observed_types=[] if dataset.is_flat else observed,
        sales_touch_types=list(dataset.spec.sales_touch_types),
        history=not dataset.is_flat,
    )


def build_training_set(
    dataset: Dataset,
    config: FeatureConfig | None = None,
    *,
    data_end: pd.Timestamp | None = None,
    spec: FeatureSpec | None = None,
    memory_limit: str = "4GB",
) -> tuple[pd.DataFrame, FeatureSpec, dict]:
    """One row per (lead, snapshot): lead_id, as_of, label, then the features in spec order.

    Args:
        dataset: a validated dataset.
        config: the feature config (defaults when None).
        data_end: end of observation (censoring); defaults to the dataset's latest timestamp.
        spec: reuse a fixed feature set (e.g. the one a model was trained with).
        memory_limit: DuckDB's memory cap before it spills to a temporary folder.

    Returns:
        (training set, feature spec, stats about snapshots and drops)
    """
    config = config or FeatureConfig()
    spec = spec or feature_spec_for(dataset, config)
    leads = dataset.leads
    if dataset.is_flat:
        return _flat_training_set(dataset, spec)

    end = pd.Timestamp(data_end) if data_end is not None else dataset.data_end
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    with tempfile.TemporaryDirectory(prefix="leadscore-duckdb-") as spill:
        con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill})
        try:
            snaps, stats = build_snapshots(
                leads,
                dataset.deals,
                ages_days=spec.snapshot_ages_days,
                horizon_days=spec.horizon_days,
                data_end=end,
                con=con,
            )
            prims = _primitives(con, snaps, dataset, spec)
        finally:
            con.close()
    stats["data_end"] = end.isoformat()
    features = assemble_features(prims, spec)

    out = {
        "lead_id": snaps["lead_id"].to_numpy(),
        "as_of": pd.to_datetime(snaps["as_of_us"].to_numpy(), unit="us", utc=True),
        "label": snaps["label"].to_numpy(),
    }
    rows = pd.Index(leads["lead_id"]).get_indexer(snaps["lead_id"])
    for col in spec.categorical:
        out[col] = pd.Categorical(leads[col].to_numpy()[rows].astype(object))
    for col in spec.numeric_profile:
        out[col] = leads[col].to_numpy(dtype="float64")[rows]
    out.update(zip(spec.behaviour_names, features.T, strict=True))
    return pd.DataFrame(out), spec, stats


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
    }
    return df, spec, stats


def _primitives(
    con: duckdb.DuckDBPyConnection, snaps: pd.DataFrame, dataset: Dataset, spec: FeatureSpec
) -> Primitives:
    n, k, w = len(snaps), len(spec.activity_types), len(spec.windows_days)
    acts = dataset.activities
    # Per category, not per event: its spec index (-1 if not in the spec) and sales flag.
    kinds = acts["activity_type"].astype("category")
    type_index = {t: i for i, t in enumerate(spec.activity_types)}
    categories = [str(c) for c in kinds.cat.categories]
    index_of = np.array([type_index.get(c, -1) for c in categories] + [-1], dtype=np.int16)
    sales_of = np.array([c in set(spec.sales_touch_types) for c in categories] + [False])
    codes = kinds.cat.codes.to_numpy()  # -1 (missing) picks the trailing "not in spec" entry
    type_idx, is_sales = index_of[codes], sales_of[codes]
    con.register(
        "f_acts",
        pd.DataFrame(
            {
                "lead_id": acts["lead_id"].to_numpy(),
                "t_us": timestamps_us(acts["occurred_at"]).astype("int64"),
                "type_idx": type_idx,
                "is_sales": is_sales,
                "is_engagement": (type_idx >= 0) & ~is_sales,
            }
        ),
    )
    con.register(
        "f_snaps",
        pd.DataFrame(
            {
                "sid": np.arange(n, dtype=np.int64),
                "lead_id": snaps["lead_id"].to_numpy(),
                "as_of_us": snaps["as_of_us"].to_numpy(),
            }
        ),
    )
    deals = dataset.deals
    con.register(
        "f_deals",
        pd.DataFrame(
            {
                "lead_id": deals["lead_id"].to_numpy(),
                "created_us": timestamps_us(deals["created_at"]).astype("int64"),
                "closed_us": timestamps_us(deals["closed_at"]),
            }
        ),
    )
    windows = [int(d) * US_PER_DAY for d in spec.windows_days]
    win_counts = ", ".join(
        f"count(*) FILTER (WHERE a.t_us > s.as_of_us - {u})::DOUBLE AS c{j}"
        for j, u in enumerate(windows)
    )
    active_us = spec.active_days_window * US_PER_DAY
    half_life_us = spec.decay_half_life_days * US_PER_DAY
    joined = "f_snaps s JOIN f_acts a ON a.lead_id = s.lead_id AND a.t_us <= s.as_of_us"

    per_type = con.execute(
        f"""SELECT s.sid, a.type_idx, {win_counts}, count(*)::DOUBLE AS ctot, max(a.t_us)::DOUBLE AS last_us
            FROM {joined} WHERE a.type_idx >= 0 GROUP BY s.sid, a.type_idx"""
    ).fetchnumpy()
    overall = con.execute(
        f"""SELECT s.sid, {win_counts}, count(*)::DOUBLE AS ctot, max(a.t_us)::DOUBLE AS last_us,
                   count(DISTINCT a.t_us // {US_PER_DAY}) FILTER (WHERE a.t_us > s.as_of_us - {active_us})::DOUBLE AS active_days,
                   coalesce(sum(pow(2.0, (a.t_us - s.as_of_us) / {half_life_us})) FILTER (WHERE a.is_engagement), 0.0) AS decayed,
                   min(a.t_us) FILTER (WHERE a.is_sales)::DOUBLE AS first_touch_us
            FROM {joined} GROUP BY s.sid"""
    ).fetchnumpy()
    open_deals = con.execute(
        """SELECT s.sid, count(*)::DOUBLE AS n FROM f_snaps s JOIN f_deals d
           ON d.lead_id = s.lead_id AND d.created_us <= s.as_of_us
              AND (d.closed_us IS NULL OR isnan(d.closed_us) OR d.closed_us > s.as_of_us)
           GROUP BY s.sid"""
    ).fetchnumpy()
    for name in ("f_acts", "f_snaps", "f_deals"):
        con.unregister(name)

    type_counts = np.zeros((n, k, w + 1))
    type_last = np.full((n, k), np.nan)
    sid, tix = per_type["sid"], per_type["type_idx"].astype(np.int64)
    for j in range(w):
        type_counts[sid, tix, j] = per_type[f"c{j}"]
    type_counts[sid, tix, w] = per_type["ctot"]
    type_last[sid, tix] = per_type["last_us"]

    all_counts = np.zeros((n, w + 1))
    sid = overall["sid"]
    for j in range(w):
        all_counts[sid, j] = overall[f"c{j}"]
    all_counts[sid, w] = overall["ctot"]

    def scatter(values, fill):
        arr = np.full(n, fill, dtype=np.float64)
        arr[sid] = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
        return arr

    opens = np.zeros(n)
    opens[open_deals["sid"]] = open_deals["n"]
    return Primitives(
        created_us=snaps["created_us"].to_numpy(dtype=np.float64),
        as_of_us=snaps["as_of_us"].to_numpy(dtype=np.float64),
        type_counts=type_counts,
        type_last_us=type_last,
        all_counts=all_counts,
        last_us=scatter(overall["last_us"], np.nan),
        active_days=scatter(overall["active_days"], 0.0),
        decayed=scatter(overall["decayed"], 0.0),
        first_touch_us=scatter(overall["first_touch_us"], np.nan),
        open_deals=opens,
    )
