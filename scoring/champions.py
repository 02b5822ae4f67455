"""Segment champions at scoring time: the rows of a segment whose own model beat the main
one on its rows (`leadscore.training.segment_champions`) are scored by that model, in place
in the main model's record. `scorer` and the champions are `LeadScorer`s."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from leadscore.scoring.reasons import merge_reasons
from leadscore.scoring.record import ScoreRecord, ScoringBatch


def route_to_champions(scorer: Any, batch: ScoringBatch, record: ScoreRecord, reasons: int) -> None:
    """The rows of a segment with its own champion scored by it, in place: probability,
    grade, interval, review flag and reasons (the rules' columns stay: one set of rules
    for every segment)."""
    values = batch.column(scorer.champion_column)
    for value, champion in scorer.segment_champions.items():
        rows = np.flatnonzero([v == value for v in values])
        if not len(rows):
            continue
        sub = champion.score(_sub_batch(scorer, batch, rows, champion), reasons=reasons)
        record.probability[rows] = sub.probability
        record.grade = np.asarray(record.grade, dtype=object)
        record.grade[rows] = sub.grade
        if record.p_low is not None and sub.p_low is not None:
            record.p_low[rows], record.p_high[rows] = sub.p_low, sub.p_high
            record.review[rows] = sub.review
        record.beyond_trained_age[rows] = sub.beyond_trained_age
        if record.reason_columns is not None and sub.reason_columns is not None:
            record.reason_columns = merge_reasons(record.reason_columns, sub.reason_columns, rows)
    record.grade = np.asarray(record.grade).astype(str)


def _sub_batch(scorer: Any, batch: ScoringBatch, rows: np.ndarray, other: Any) -> ScoringBatch:
    """Rows of a batch as `other` reads them: the same matrix when it has `scorer`'s
    features and categories, else encoded again from the rows' feature values."""
    if other.features == scorer.features and other.categories == scorer.categories:
        x = batch.x[rows]
    else:
        x = np.empty((len(rows), len(other.features)))
        for j, name in enumerate(other.features):
            values = batch.column(name)
            codes = other._codes.get(name)
            picked = [values[i] for i in rows]
            if codes is not None:
                x[:, j] = [codes.get(v, math.nan) if v is not None else math.nan for v in picked]
            else:
                x[:, j] = np.asarray(picked, dtype=np.float64)
    age = batch.age_days[rows] if batch.age_days is not None else None

    def column(name: str) -> list:
        values = batch.column(name)
        return [values[i] for i in rows]

    return ScoringBatch(batch.lead_id[rows], x, column, None, age)
