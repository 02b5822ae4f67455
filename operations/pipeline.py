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

from crm.errors import LeadscoreError
from crm.loading import Dataset
from features.batch import build_scoring_set
from rules.scorer import batch_rule_inputs
from scoring.scorer import LeadScorer

CHUNK = 20_000  # leads per step: bounds the reasons' memory and paces the progress bar
COLUMNS = [
    "lead_id",
    "as_of",
    "probability",
    "score",
    "grade",
    "rule_score",
    "rule_grade",
    "mql",
    "reasons_up",
    "reasons_down",
    "model_name",
    "model_version",
    "feature_set_version",
    "trend",
]
REASON_SEPARATOR = "; "


@dataclass(frozen=True)
class ModelRef:
    """Which model scored: its registered name and version (a folder: its path, "local")."""

    name: str
    version: str


def score_pipeline(
    dataset: Dataset,
    scorer: LeadScorer,
    model: ModelRef,
    as_of: pd.Timestamp | str | None = None,
    *,
    reasons: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One row per open lead (COLUMNS). `progress(done, total)` is told after each chunk."""
    df = build_scoring_set(dataset, scorer.spec, as_of)
    n = len(df)
    probability = np.empty(n)
    up = np.full(n, "", dtype=object)
    down = np.full(n, "", dtype=object)
    for start in range(0, n, CHUNK):
        part = df.iloc[start : start + CHUNK]
        x = scorer.encode_frame(part)
        probability[start : start + len(part)] = scorer.predict_proba(x)
        if reasons:
            for i, worded in enumerate(scorer.reasons_frame(part, x=x)):
                up[start + i] = REASON_SEPARATOR.join(r["text"] for r in worded["positive"])
                down[start + i] = REASON_SEPARATOR.join(r["text"] for r in worded["negative"])
        if progress is not None:
            progress(min(start + CHUNK, n), n)
    if progress is not None and n == 0:
        progress(0, 0)
    out: dict[str, Any] = {
        "lead_id": df["lead_id"].astype(str).to_numpy(),
        "as_of": df["as_of"].to_numpy(),
        "probability": probability,
        "score": np.rint(100 * probability).astype(int),
        "grade": scorer.grades(probability).astype(str),
    }
    if scorer.rules is not None:
        x_rules = batch_rule_inputs(scorer.rules.config, dataset, df["lead_id"], df["as_of"])
        rule_score = scorer.rules.rule_scores(x_rules)
        out["rule_score"] = pd.array(rule_score.astype(int), dtype="Int64")
        out["rule_grade"] = scorer.rules.grade(rule_score).astype(str)
        out["mql"] = pd.array(scorer.rules.mql(rule_score).astype(bool), dtype="boolean")
    else:  # a model trained without rules: the columns stay, empty
        out["rule_score"] = pd.array([None] * n, dtype="Int64")
        out["rule_grade"] = pd.array([None] * n, dtype="str")
        out["mql"] = pd.array([None] * n, dtype="boolean")
    out["reasons_up"] = up if reasons else pd.array([None] * n, dtype="str")
    out["reasons_down"] = down if reasons else pd.array([None] * n, dtype="str")
    out["model_name"] = model.name
    out["model_version"] = str(model.version)
    out["feature_set_version"] = scorer.spec.version
    frame = pd.DataFrame(out, columns=COLUMNS[:-1])
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return frame


def write_scores(frame: pd.DataFrame, path: str | Path) -> Path:
    """Parquet or CSV by the file's suffix, written whole or not at all (a temporary file
    renamed into place)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise LeadscoreError(f"{path}: the scores file must end in .parquet or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        out = frame.copy()
        out["as_of"] = out["as_of"].map(lambda t: t.isoformat())
        out.to_csv(tmp, index=False)
    tmp.replace(path)
    return path
