from __future__ import annotations

import pandas as pd
import pytest

from features.errors import LeadscoreError
from training.splits import time_split


def test_split_has_no_time_overlap_and_train_labels_are_closed(small_set):
    df, spec, _ = small_set
    split = time_split(df, test_days=60, validation_days=60, horizon_days=spec.horizon_days)
    train, val, test = df[split.train], df[split.validation], df[split.test]
    assert train["as_of"].max() < val["as_of"].min() <= val["as_of"].max() < test["as_of"].min()
    # Every train label window has closed before validation starts.
    assert (train["as_of"] + pd.Timedelta(days=spec.horizon_days)).max() <= split.validation_start
    assert not (split.train & split.validation).any() and not (split.validation & split.test).any()
    assert split.purged == int(((df["as_of"] < split.validation_start) & ~split.train).sum()) > 0
    assert test["as_of"].max() == df["as_of"].max()


def test_split_keeps_outcome_rates_unbiased(small_set):
    """The purge is by time only, so it must not change the positive rate much."""
    df, spec, _ = small_set
    split = time_split(df, test_days=60, validation_days=60, horizon_days=spec.horizon_days)
    before = df.loc[df["as_of"] < split.validation_start, "label"].mean()
    assert abs(df.loc[split.train, "label"].mean() - before) < 0.02


def test_split_without_both_outcomes_is_a_clear_error(small_set):
    df, spec, _ = small_set
    with pytest.raises(LeadscoreError, match="the train split has 0 rows"):
        time_split(df, test_days=300, validation_days=300, horizon_days=spec.horizon_days)
