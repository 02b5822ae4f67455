"""Batch scoring on Spark: the open pipeline scored on the executors by the endpoint's scorer.

`leadscore.features.spark_engine` shuffles the entity rows (with the profile columns the model and
the rules read) and the history by lead bucket; each bucket's task computes the batch
engine's features, the rules' inputs (`leadscore.rules.scorer.rule_inputs`, the batch and online
computation) and calls `LeadScorer.score` on them, the scorer shipped to the executors once
per task. The driver collects the scoring call's columns and builds the scores file's rows
with `leadscore.operations.pipeline.scores_from_columns`, as a DuckDB run does: the same rows, the
same numbers (tests/operations/test_spark_scoring.py).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.crm.times import from_us, utc
from leadscore.features.batch import bucket_primitives
from leadscore.features.definitions import assemble_features
from leadscore.features.labels import scoring_rows
from leadscore.features.spark_engine import (
    SparkHistory,
    bucket_inputs,
    per_bucket,
)
from leadscore.operations.pipeline import PipelineScores, scores_from_columns
from leadscore.rules.scorer import rule_inputs
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.scorer import LeadScorer

SCORES_SCHEMA = (
    "sid BIGINT, probability DOUBLE, grade STRING, beyond_trained_age BOOLEAN, "
    "p_low DOUBLE, p_high DOUBLE, review BOOLEAN, "
    "rule_score BIGINT, rule_grade STRING, mql BOOLEAN, "
    "reasons_up ARRAY<STRING>, reasons_down ARRAY<STRING>"
)
# Scorers unpickled in this Python worker, by their bytes' identity: a reused worker loads
# the model once, not once per task.
_LOADED: dict[int, LeadScorer] = {}


def spark_score_pipeline(
    history: SparkHistory,
    scorer: LeadScorer,
    model: ModelRef,
    as_of: pd.Timestamp | str | None = None,
    *,
    reasons: bool = True,
    buckets: int | None = None,
) -> PipelineScores:
    """`leadscore.operations.pipeline.score_pipeline` on Spark: every lead open at `as_of` (default:
    the data's end), the same rows and numbers."""
    dataset = history.dataset
    when = utc(as_of) if as_of is not None else history.data_end
    rows = scoring_rows(dataset, when)
    columns = _profile_columns(scorer)
    extra = _profile_table(dataset.leads, columns, rows["lead"].to_numpy())
    task = _score_bucket(_scorer_bytes(scorer), columns, reasons)
    table = per_bucket(history, rows, task, SCORES_SCHEMA, extra=extra, buckets=buckets)
    leads = dataset.leads
    out = {
        "lead_id": leads["lead_id"].take(rows["lead"].to_numpy()).astype(str).to_numpy(object),
        "as_of": from_us(rows["as_of_us"].to_numpy()),
        "probability": table["probability"].to_numpy(),
        "grade": table["grade"].to_numpy(zero_copy_only=False).astype(str),
        "beyond_trained_age": table["beyond_trained_age"].to_numpy(zero_copy_only=False),
    }
    if scorer.interval is not None:
        out["p_low"] = table["p_low"].to_numpy()
        out["p_high"] = table["p_high"].to_numpy()
        out["review"] = table["review"].to_numpy(zero_copy_only=False)
    if scorer.rules is not None:
        out["rule_score"] = table["rule_score"].to_numpy(zero_copy_only=False)
        out["rule_grade"] = table["rule_grade"].to_numpy(zero_copy_only=False).astype(str)
        out["mql"] = table["mql"].to_numpy(zero_copy_only=False)
    lists = {name: table[name].to_pylist() for name in ("reasons_up", "reasons_down")}
    return scores_from_columns(out, lists, model, scorer.spec.version, reasons=reasons)


def _profile_columns(scorer: LeadScorer) -> list[str]:
    """The lead columns the scorer and its rules read, in a fixed order."""
    spec = scorer.spec
    wanted = [*spec.categorical, *spec.numeric_profile]
    if scorer.rules is not None:
        wanted += [c for c in scorer.rules.config.profile if c not in wanted]
    return wanted


def _profile_table(leads: pd.DataFrame, columns: list[str], lead: np.ndarray) -> pa.Table:
    """Each entity row's profile values: numbers as float64, the rest as text (NULL where
    missing)."""
    out = {}
    for c in columns:
        values = leads[c].take(lead)
        if pd.api.types.is_numeric_dtype(values) and not isinstance(
            values.dtype, pd.CategoricalDtype
        ):
            out[f"p_{c}"] = pa.array(values.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            out[f"p_{c}"] = pa.array(values.astype(object).to_numpy(), type=pa.string(),
                                     from_pandas=True)  # fmt: skip
    return pa.table(out)


def _scorer_bytes(scorer: LeadScorer) -> bytes:
    """The scorer as bytes for the executors (without its explainer: each task builds its
    own on first use)."""
    state = dict(scorer.__dict__)
    state.pop("_explainer", None)
    clone = LeadScorer.__new__(LeadScorer)
    clone.__dict__.update(state)
    return pickle.dumps(clone, protocol=pickle.HIGHEST_PROTOCOL)


def _score_bucket(blob: bytes, columns: list[str], reasons: bool) -> Callable:
    key = hash(blob)

    def run(left: pa.Table, right: pa.Table) -> pa.Table:
        scorer = _LOADED.get(key)
        if scorer is None:
            scorer = _LOADED[key] = pickle.loads(blob)
        spec = scorer.spec
        rows, acts, deals, types = bucket_inputs(left, right)
        matrix = assemble_features(bucket_primitives(rows, acts, deals, types, spec), spec)
        frame = pd.DataFrame(matrix, columns=spec.behaviour_names, copy=False)
        profile = {}
        for c in columns:
            values = rows[f"p_{c}"]
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                # Missing text as NaN, as the batch engine's categoricals give it.
                values = values.astype(object).where(values.notna(), np.nan).to_numpy()
            else:
                values = values.to_numpy(dtype=np.float64)
            profile[c] = values
        front = {"lead_id": np.full(len(rows), "", dtype=object), "as_of": rows["as_of_us"]}
        for c in [*spec.categorical, *spec.numeric_profile]:
            front[c] = profile[c]
        for position, (name, values) in enumerate(front.items()):
            frame.insert(position, name, values)
        rules_x = None
        if scorer.rules is not None:
            kinds = np.array(types, dtype=object)[acts["code"].to_numpy().astype(np.int64)]
            rules_x = rule_inputs(
                scorer.rules.config,
                profile={c: profile[c] for c in scorer.rules.config.profile},
                row_lead=rows["lead"].to_numpy().astype(np.int64),
                created_us=rows["created_us"].to_numpy(),
                as_of_us=rows["as_of_us"].to_numpy(),
                event_lead=acts["lead"].to_numpy().astype(np.int64),
                event_t=acts["t_us"].to_numpy(),
                event_kind=kinds,
            )
        record = scorer.score(scorer.frame_batch(frame, rules_x=rules_x), reasons=3 * reasons)
        out = {
            "sid": pa.array(rows["sid"].to_numpy()),
            "probability": pa.array(record.probability),
            "grade": pa.array(np.asarray(record.grade).astype(str)),
            "beyond_trained_age": pa.array(np.asarray(record.beyond_trained_age, dtype=bool)),
        }
        n = len(rows)
        if record.p_low is not None:
            out["p_low"] = pa.array(record.p_low)
            out["p_high"] = pa.array(record.p_high)
            out["review"] = pa.array(np.asarray(record.review, dtype=bool))
        else:
            out["p_low"] = pa.nulls(n, pa.float64())
            out["p_high"] = pa.nulls(n, pa.float64())
            out["review"] = pa.nulls(n, pa.bool_())
        if record.rule_score is not None:
            out["rule_score"] = pa.array(np.asarray(record.rule_score).astype(np.int64))
            out["rule_grade"] = pa.array(np.asarray(record.rule_grade).astype(str))
            out["mql"] = pa.array(np.asarray(record.mql, dtype=bool))
        else:
            out["rule_score"] = pa.nulls(n, pa.int64())
            out["rule_grade"] = pa.nulls(n, pa.string())
            out["mql"] = pa.nulls(n, pa.bool_())
        out["reasons_up"] = pa.array(record.reason_texts("positive"), type=pa.list_(pa.string()))
        out["reasons_down"] = pa.array(record.reason_texts("negative"), type=pa.list_(pa.string()))
        return pa.table(out)

    return run
