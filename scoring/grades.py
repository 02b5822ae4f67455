"""Grades A-D of the model's calibrated probability (the rules have their own, on points)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grades:
    """Probability cut-offs of grades A-D (a probability >= A's cut-off is an A, ...)."""

    a: float = 0.40
    b: float = 0.20
    c: float = 0.08

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p)
        return np.where(
            p >= self.a, "A", np.where(p >= self.b, "B", np.where(p >= self.c, "C", "D"))
        )
