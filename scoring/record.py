"""The one prediction record: what a scoring call returns, columnar, for every consumer.

`LeadScorer.score(batch)` returns a `ScoreRecord`, whatever built the batch: the payload
adapter (`LeadScorer.payload_batch`: the CRM's JSON, for the endpoint and the MLflow
pyfunc) or the frame adapter (`LeadScorer.frame_batch`: rows of the batch engine, for batch
scoring, monitoring and the marketing report). The endpoint and the pyfunc read its `rows()`,
batch scoring its columns; reasons stay lists of worded reasons until a file joins them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.reasons import ReasonColumns


def scores_of(probability: np.ndarray) -> np.ndarray:
    """The score marketing sees: round(100 x probability), half to even (int64)."""
    return np.rint(100 * np.asarray(probability, dtype=np.float64)).astype(np.int64)


@dataclass
class ScoringBatch:
    """What a scoring call needs of its leads, however they arrived.

    `x`: the model matrix; `column(name)`: a feature's values for every lead, as a list
    (read only for the reasons being worded); `rules_x`: the points rules' inputs
    (`leadscore.rules.scorer.rule_inputs`), None for no rule scores.
    """

    lead_id: np.ndarray
    x: np.ndarray
    column: Callable[[str], list]
    rules_x: Mapping[str, np.ndarray] | None = None
    age_days: np.ndarray | None = None  # each lead's age at its as_of (None: a flat export)

    def __len__(self) -> int:
        return len(self.lead_id)


@dataclass
class ScoreRecord:
    """One entry per lead: the model's probability, score and grade; its Venn-Abers interval
    (`p_low`, `p_high`, containing the probability) and whether that is too wide for an
    automatic hand-off (`review`), None for a model saved without one; whether the lead is older
    than any age the model learned from (`beyond_trained_age`: its probability follows the
    history's age hazard, `LeadScorer.age_hazard`, and it is flagged so); the rules' score, grade, MQL flag and probability
    (None without rules); the worded reasons as columns (None when not asked; `reasons`
    gives them lead by lead); and which model scored (None until the caller says)."""

    lead_id: np.ndarray
    probability: np.ndarray
    grade: np.ndarray
    beyond_trained_age: np.ndarray | None = None
    p_low: np.ndarray | None = None
    p_high: np.ndarray | None = None
    review: np.ndarray | None = None
    rule_score: np.ndarray | None = None
    rule_grade: np.ndarray | None = None
    mql: np.ndarray | None = None
    rule_probability: np.ndarray | None = None
    reason_columns: ReasonColumns | None = None
    model: ModelRef | None = field(default=None)

    def __len__(self) -> int:
        return len(self.lead_id)

    @property
    def score(self) -> np.ndarray:
        return scores_of(self.probability)

    @property
    def reasons(self) -> list[dict[str, list[dict]]] | None:
        """Per lead, {"positive": [...], "negative": [...]} of {feature, text, contribution}."""
        return None if self.reason_columns is None else self.reason_columns.per_lead()

    def reason_texts(self, side: str) -> list[list[str]]:
        """Per lead, the words of its reasons on one side ("positive" or "negative")."""
        if self.reason_columns is None:
            return [[] for _ in range(len(self))]
        return self.reason_columns.text_lists(side)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per lead, in the endpoint's and the pyfunc's shape."""
        score, p = self.score.tolist(), self.probability.tolist()
        beyond = (
            self.beyond_trained_age.tolist()
            if self.beyond_trained_age is not None
            else [False] * len(self)
        )
        out = [
            {
                "lead_id": lead_id,
                "probability": p[i],
                "score": score[i],
                "grade": str(grade),
                "beyond_trained_age": beyond[i],
            }
            for i, (lead_id, grade) in enumerate(zip(self.lead_id, self.grade, strict=True))
        ]
        if self.p_low is not None:
            low, high, review = self.p_low.tolist(), self.p_high.tolist(), self.review.tolist()
            for i, item in enumerate(out):
                item.update(p_low=low[i], p_high=high[i], review=review[i])
        reasons = self.reasons
        if reasons is not None:
            for item, worded in zip(out, reasons, strict=True):
                item["reasons"] = worded
        if self.rule_score is not None:
            rule_score, grades, mql = self.rule_score.tolist(), self.rule_grade, self.mql.tolist()
            for i, item in enumerate(out):
                item.update(rule_score=rule_score[i], rule_grade=str(grades[i]), mql=mql[i])
            if self.rule_probability is not None:
                for item, q in zip(out, self.rule_probability.tolist(), strict=True):
                    item["rule_probability"] = q
        if self.model is not None:
            model = {"name": self.model.name, "version": self.model.version}
            for item in out:
                item["model"] = model
        return out
