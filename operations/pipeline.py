"""Score the open pipeline: every lead open at `as_of`, featurised by the batch engine and
scored by the scorer the endpoint runs (`LeadScorer`), rules next to the model.

The per-lead numbers equal what `POST /score` returns for the same leads at the same
`as_of` (tests/operations check it): the batch and online featurizers are one definition,
and the prediction, grades and reasons are the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.crm.csv_out import write_csv
from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.folders import write_whole
from leadscore.crm.times import utc
from leadscore.features.batch import build_scoring_set
from leadscore.features.labels import scoring_rows
from leadscore.rules.scorer import entity_rule_inputs
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.record import ScoreRecord, scores_of
from leadscore.scoring.score_row import COLUMNS
from leadscore.scoring.scorer import LeadScorer

CHUNK = 20_000  # leads per step: bounds the reasons' memory and paces the progress bar
REASON_SEPARATOR = "; "


@dataclass
class PipelineScores:
    """The scores file's rows (COLUMNS, `leadscore.scoring.score_row`, but the trend), and
    each row's worded reasons as lists (`reasons_up`, `reasons_down`: what the file joins
    with REASON_SEPARATOR, kept whole for the hand-off events)."""

    frame: pd.DataFrame
    reasons: dict[str, list[list[str]]]


def past_trained_ages(
    scorer: LeadScorer, beyond: np.ndarray, probability: np.ndarray | None = None
) -> str | None:
    """What a run says of the open leads older than the oldest age the model learned from
    (`beyond`: per lead): how many, their share of the expected wins (with `probability`),
    and what their probability is (the history's age hazard). None when there are none."""
    beyond = np.asarray(beyond, dtype=bool)
    n = int(beyond.sum())
    if not n:
        return None
    share = ""
    if probability is not None:
        total = float(np.sum(probability))
        if total > 0:
            share = f", {float(np.sum(probability[beyond])) / total:.0%} of the expected wins"
    return (
        f"{n:,} open leads ({n / len(beyond):.0%}{share}) are older than the oldest age the "
        f"model learned from ({scorer.oldest_trained_age_days:g} days): "
        f"{scorer.age_hazard.describe()}; flagged beyond_trained_age"
    )


def score_pipeline(
    dataset: Dataset,
    scorer: LeadScorer,
    model: ModelRef,
    as_of: pd.Timestamp | str | None = None,
    *,
    reasons: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> PipelineScores:
    """Every lead open at `as_of` scored by the one scoring call (`LeadScorer.score`) on the
    batch engine's rows, in chunks: the scores file's rows (COLUMNS but the trend) and the
    reasons as lists. `progress(done, total)` is told after each chunk."""
    when = utc(as_of) if as_of is not None else utc(dataset.data_end)
    # One table of entity rows, which both retrievals consume: the features and the rules'
    # inputs (these once for every row, one pass over the activities, sliced per chunk).
    rows = scoring_rows(dataset, when)
    df = build_scoring_set(dataset, scorer.spec, when, rows=rows)
    n = len(df)
    rules_x = (
        entity_rule_inputs(
            scorer.rules.config, dataset, rows["lead"].to_numpy(), rows["as_of_us"].to_numpy()
        )
        if scorer.rules is not None
        else None
    )
    parts: list[ScoreRecord] = []
    for start in range(0, n, CHUNK):
        part = df.iloc[start : start + CHUNK]
        sliced = (
            None if rules_x is None else {k: v[start : start + CHUNK] for k, v in rules_x.items()}
        )
        batch = scorer.frame_batch(part, rules_x=sliced)
        parts.append(scorer.score(batch, reasons=3 if reasons else 0, model=model))
        if progress is not None:
            progress(min(start + CHUNK, n), n)
    if progress is not None and n == 0:
        progress(0, 0)
    return _scores(df, parts, scorer, model, reasons=reasons)


def _scores(
    df: pd.DataFrame,
    parts: list[ScoreRecord],
    scorer: LeadScorer,
    model: ModelRef,
    *,
    reasons: bool,
) -> PipelineScores:
    """The scores file's rows from the records of `df`'s chunks."""
    lists = {
        name: [texts for r in parts for texts in r.reason_texts(side)]
        for side, name in (("positive", "reasons_up"), ("negative", "reasons_down"))
    }

    def column(name: str) -> np.ndarray:
        return np.concatenate([getattr(r, name) for r in parts]) if parts else np.zeros(0)

    columns = {
        "lead_id": df["lead_id"].astype(str).to_numpy(dtype=object),
        "as_of": df["as_of"].to_numpy(),
        "probability": column("probability"),
        "grade": column("grade").astype(str),
        "beyond_trained_age": column("beyond_trained_age").astype(bool),
    }
    if parts and all(r.p_low is not None for r in parts):
        columns.update(p_low=column("p_low"), p_high=column("p_high"), review=column("review"))
    if scorer.rules is not None:
        columns["rule_score"] = column("rule_score").astype(np.int64)
        columns["rule_grade"] = column("rule_grade").astype(str)
        columns["mql"] = column("mql").astype(bool)
    return scores_from_columns(columns, lists, model, scorer.spec.version, reasons=reasons)


def scores_from_columns(
    columns: dict[str, np.ndarray],
    lists: dict[str, list[list[str]]],
    model: ModelRef,
    feature_set_version: str,
    *,
    reasons: bool,
) -> PipelineScores:
    """The scores file's rows from the scoring call's columns (lead_id, as_of, probability,
    grade, beyond_trained_age; with an interval p_low, p_high, review; with rules,
    rule_score, rule_grade, mql) and the reasons as lists: one construction for every
    engine that scored them."""
    n = len(columns["lead_id"])
    probability = np.asarray(columns["probability"], dtype=np.float64)
    out: dict[str, Any] = {
        "lead_id": columns["lead_id"],
        "as_of": columns["as_of"],
        "probability": probability,
        "score": scores_of(probability).astype(int),
        "grade": columns["grade"],
        "beyond_trained_age": columns["beyond_trained_age"],
    }
    if "p_low" in columns:
        out["p_low"] = np.asarray(columns["p_low"], dtype=np.float64)
        out["p_high"] = np.asarray(columns["p_high"], dtype=np.float64)
        out["review"] = np.asarray(columns["review"]).astype(bool)
    else:  # a model saved before intervals: the columns stay, empty
        out["p_low"] = np.full(n, np.nan)
        out["p_high"] = np.full(n, np.nan)
        out["review"] = pd.array([None] * n, dtype="boolean")
    if "rule_score" in columns:
        out["rule_score"] = pd.array(np.asarray(columns["rule_score"]).astype(int), dtype="Int64")
        out["rule_grade"] = columns["rule_grade"]
        out["mql"] = pd.array(np.asarray(columns["mql"]).astype(bool), dtype="boolean")
    else:  # a model trained without rules: the columns stay, empty
        out["rule_score"] = pd.array([None] * n, dtype="Int64")
        out["rule_grade"] = pd.array([None] * n, dtype="str")
        out["mql"] = pd.array([None] * n, dtype="boolean")
    for name, words in lists.items():
        if reasons:
            out[name] = np.array([REASON_SEPARATOR.join(t) for t in words], dtype=object)
        else:
            out[name] = pd.array([None] * n, dtype="str")
    out["model_name"] = model.name
    out["model_version"] = str(model.version)
    out["feature_set_version"] = feature_set_version
    frame = pd.DataFrame(out, columns=COLUMNS[:-1])
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return PipelineScores(frame, lists)


def write_scores(frame: pd.DataFrame, path: str | Path) -> Path:
    """Parquet or CSV by the file's suffix, written whole or not at all (a temporary file
    renamed into place); a path without a suffix is a folder of Parquet partitioned by
    as_of (`write_partition`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == "":
        return write_partition(frame, path)
    if suffix not in (".parquet", ".csv"):
        raise LeadscoreError(
            f"{path}: the scores file must end in .parquet or .csv (or be a folder, no suffix)"
        )
    if suffix == ".parquet":
        return write_whole(path, lambda tmp: frame.to_parquet(tmp, index=False))
    # for people: formulas neutralised, one time format (`leadscore.crm.csv_out`)
    return write_whole(path, lambda tmp: write_csv(frame, tmp, ["as_of"]))


def partition_name(as_of: pd.Timestamp) -> str:
    """`as_of=<ISO-8601 UTC>`, the colons escaped as Spark and Arrow's Hive partitioning
    write and read them."""
    return "as_of=" + utc(as_of).strftime("%Y-%m-%dT%H:%M:%SZ").replace(":", "%3A")


def write_partition(frame: pd.DataFrame, folder: str | Path) -> Path:
    """The run's rows as the partition of its as_of in a folder of Parquet partitioned by
    as_of (`<folder>/as_of=.../part-00000.parquet`, the as_of in the folder name, not in
    the file). A re-run of the same as_of replaces its partition: the file is written whole
    and renamed over the old one (`leadscore.crm.folders.write_whole`), so a reader, or a run killed
    at any point, leaves the old rows or the new, never a part; other data files a partition
    held are removed after."""
    folder = Path(folder)
    whens = frame["as_of"].unique() if len(frame) else []
    if len(whens) > 1:
        raise LeadscoreError(f"{folder}: one run, one as_of (found {len(whens)})")
    if not len(whens):
        return folder
    final = folder / partition_name(pd.Timestamp(whens[0]))
    try:
        final.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LeadscoreError(f"{final}: not written ({exc.strerror or exc})") from exc
    part = final / PART_FILE
    rows = frame.drop(columns=["as_of"])
    write_whole(part, lambda tmp: rows.to_parquet(tmp, index=False))
    for stale in final.iterdir():  # an earlier writer's files (readers skip hidden ones)
        if stale != part and not stale.name.startswith((".", "_")) and stale.is_file():
            stale.unlink()
    return final


PART_FILE = "part-00000.parquet"
