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

from leadscore.crm.errors import LeadscoreError
from leadscore.features.definitions import FeatureSpec
from leadscore.training.config import TrainConfig


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # boolean masks over the training-set rows
    validation: np.ndarray
    test: np.ndarray
    validation_start: pd.Timestamp
    test_start: pd.Timestamp
    purged: int
    kind: str = "time"

    def describe(self, df: pd.DataFrame) -> dict:
        out = {
            "kind": self.kind,
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
    if split.train.sum() == 0 or df.loc[split.train, "label"].nunique() < 2:
        span = (end - as_of.min()) / pd.Timedelta(days=1)
        held = test_days + validation_days + horizon_days
        raise LeadscoreError(
            f"the train split has {int(split.train.sum())} rows and "
            f"{int(df.loc[split.train, 'label'].sum())} positives: it needs both outcomes. The "
            f"snapshots' as_of span {span:,.0f} days, and the split holds back test_days "
            f"({test_days:g}) + validation_days ({validation_days:g}) + one horizon "
            f"({horizon_days:g} days: a train label must close before the validation period) "
            f"= {held:,.0f} days. Shorten test_days and validation_days in the training config, "
            "or horizon_days in the feature config, or bring a longer export."
        )
    _check_outcomes(df, split, f"test_days={test_days:g} and validation_days={validation_days:g}")
    return split


def split_training_set(df: pd.DataFrame, spec: FeatureSpec, config: TrainConfig) -> Split:
    """The split `config` asks for: by time (default), or at random for comparison.

    A flat dataset's label is the final outcome, not a window after `as_of`, and it has
    one row per lead: no horizon to purge.
    """
    split = time_split(
        df,
        test_days=config.test_days,
        validation_days=config.validation_days,
        horizon_days=spec.horizon_days if spec.history else 0.0,
    )
    if config.split == "random":
        split = random_split_like(df, split, seed=config.seed)
    return split


def random_split_like(df: pd.DataFrame, split: Split, *, seed: int) -> Split:
    """Whole leads assigned at random, with the time split's shares of leads per part.

    Only for measuring how much a random split flatters a model: the test leads are then
    contemporaries of the train leads, which is not how a model meets new leads.
    """
    leads = pd.Index(df["lead_id"].unique())
    # A long-lived lead has snapshots in several periods of the time split: each part's
    # share is its leads over the leads of all three parts, so the shares add up to one.
    counts = {
        name: df.loc[getattr(split, name), "lead_id"].nunique()
        for name in ("train", "validation", "test")
    }
    share = {name: n / max(sum(counts.values()), 1) for name, n in counts.items()}
    order = np.random.default_rng(seed).permutation(len(leads))
    n_test = int(round(share["test"] * len(leads)))
    n_val = int(round(share["validation"] * len(leads)))
    part_of_lead = np.zeros(len(leads), dtype=np.int8)
    part_of_lead[order[:n_test]] = 2
    part_of_lead[order[n_test : n_test + n_val]] = 1
    part = part_of_lead[leads.get_indexer(df["lead_id"])]
    out = Split(
        train=part == 0,
        validation=part == 1,
        test=part == 2,
        validation_start=split.validation_start,
        test_start=split.test_start,
        purged=0,
        kind="random",
    )
    _check_outcomes(df, out, "a random split")
    return out


def _check_outcomes(df: pd.DataFrame, split: Split, settings: str) -> None:
    for name in ("train", "validation", "test"):
        m = getattr(split, name)
        if m.sum() == 0 or df.loc[m, "label"].nunique() < 2:
            raise LeadscoreError(
                f"the {name} split has {int(m.sum())} rows and {int(df.loc[m, 'label'].sum())} positives: "
                f"it needs both outcomes. The data may be too short or too small for {settings}; "
                "shorten test_days and validation_days in the training config."
            )
