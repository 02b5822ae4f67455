"""Grades A-D of the model's calibrated probability (the rules have their own, on points).

One definition: the letters (`GRADES`, best first) and the cut-offs (`Grades`), which the
training config reads from YAML (`grade_cutoffs: {A: 0.40, B: 0.20, C: 0.08}`) and the
scorer saves with the model (`{"a": ..., "b": ..., "c": ...}`, as it always has).
"""

from __future__ import annotations

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

GRADES = ("A", "B", "C", "D")  # best first


def _cutoff(default: float, letter: str):
    return Field(
        default,
        validation_alias=AliasChoices(letter, letter.lower()),
        serialization_alias=letter,
        description=f"lowest probability graded {letter}",
    )


class Grades(BaseModel):
    """Probability cut-offs of grades A-D (a probability >= A's cut-off is an A, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    a: float = _cutoff(0.40, "A")
    b: float = _cutoff(0.20, "B")
    c: float = _cutoff(0.08, "C")

    @model_validator(mode="after")
    def _ordered(self) -> Grades:
        if not (1 >= self.a > self.b > self.c > 0):
            raise ValueError("grade_cutoffs needs A > B > C, all in (0, 1]")
        return self

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p)
        return np.where(
            p >= self.a, "A", np.where(p >= self.b, "B", np.where(p >= self.c, "C", "D"))
        )
