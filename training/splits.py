"""Out-of-time splits: train on the past, validate after it, test on the most recent period.

Rule (no leak across a boundary): rows are assigned by `as_of` (test: the last
`test_days`; validation: the `validation_days` before). Train keeps only snapshots whose
label window `(as_of, as_of + horizon]` has closed by the start of validation: otherwise a
lead's train label would tell the model how that same lead's later validation or test
snapshots end. The rule is purely about time, so it cannot bias which outcomes are kept (a
per-lead rule would: leads that win leave the open set early and would be purged less).
Validation and test are not purged against each other: validation only decides scalars
(the number of boosting rounds, a monotone calibrator), from which no lead can be learnt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import LeadscoreError


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # boolean masks over the training-set rows
    validation: np.ndarray
    test: np.ndarray
    validation_start: pd.Timestamp
    test_start: pd.Timestamp
    purged: int

    def describe(self, df: pd.DataFrame) -> dict:
        out = {
            "purged": self.purged,
            "validation_start": self.validation_start.isoformat(),
            "test_start": self.test_start.isoformat(),
        }
        for name in ("train", "validation", "test"):
            m = getattr(self, name)
            out[f"{name}_rows"] = int(m.sum())
            out[f"{name}_positives"] = int(df.loc[m, "label"].sum())
            if m.any():
                out[f"{name}_as_of"] = [
                    df.loc[m, "as_of"].min().isoformat(),
                    df.loc[m, "as_of"].max().isoformat(),
                ]
        return out


def time_split(
    df: pd.DataFrame, *, test_days: float, validation_days: float, horizon_days: float
) -> Split:
    """Assign each snapshot to train, validation or test by as_of, with per-lead purging."""
    as_of = df["as_of"]
    end = as_of.max()
    test_start = end - pd.Timedelta(days=test_days)
    val_start = test_start - pd.Timedelta(days=validation_days)
    part = np.where(as_of >= test_start, 2, np.where(as_of >= val_start, 1, 0))
    resolved = (as_of + pd.Timedelta(days=horizon_days) <= val_start).to_numpy()
    split = Split(
        train=(part == 0) & resolved,
        validation=part == 1,
        test=part == 2,
        validation_start=val_start,
        test_start=test_start,
        purged=int(((part == 0) & ~resolved).sum()),
    )
    for name in ("train", "validation", "test"):
        m = getattr(split, name)
        if m.sum() == 0 or df.loc[m, "label"].nunique() < 2:
            raise LeadscoreError(
                f"the {name} split has {int(m.sum())} rows and {int(df.loc[m, 'label'].sum())} positives: "
                "it needs both outcomes. The data may be too short or too small for "
                f"test_days={test_days:g} and validation_days={validation_days:g}; shorten them in the training config."
            )
    return split
