from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.training.splits import split_training_set, time_split
from tests.training.conftest import FAST


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


def test_random_split_keeps_leads_whole_and_the_time_split_shares(small_set):
    df, spec, _ = small_set
    by_time = split_training_set(df, spec, FAST)
    by_chance = split_training_set(df, spec, FAST.model_copy(update={"split": "random"}))
    assert by_chance.kind == "random" and by_chance.describe(df)["kind"] == "random"
    parts = [by_chance.train, by_chance.validation, by_chance.test]
    assert (sum(p.astype(int) for p in parts) == 1).all()  # every row in exactly one part
    owner = pd.Series(np.select(parts, [0, 1, 2]), index=df.index).groupby(df["lead_id"]).nunique()
    assert (owner == 1).all()  # a lead's snapshots never straddle two parts
    # Leads drawn in the time split's proportions (a long-lived lead counts in each period).
    counts = {
        n: df.loc[getattr(by_time, n), "lead_id"].nunique() for n in ("train", "validation", "test")
    }
    for name in ("validation", "test"):
        expected = counts[name] / sum(counts.values()) * df["lead_id"].nunique()
        leads_chance = df.loc[getattr(by_chance, name), "lead_id"].nunique()
        assert abs(leads_chance - expected) <= 1
    # Random test rows come from the whole period, time-split ones only from the end.
    assert df.loc[by_chance.test, "as_of"].min() < by_time.validation_start


def test_flat_data_is_not_purged_by_a_horizon(small_set):
    df, spec, _ = small_set
    flat = df.groupby("lead_id", sort=False).head(1).reset_index(drop=True)
    flat_spec = spec.model_copy(update={"history": False})
    split = split_training_set(flat, flat_spec, FAST)
    assert split.purged == 0
    assert split.train.sum() == int((flat["as_of"] < split.validation_start).sum())


def test_a_train_split_emptied_by_the_horizon_says_what_to_change(small_set):
    """A short export: 60 + 60 days held back and a 90-day purge leave no train rows; the
    message names the span, what the split holds back, and the keys to change."""
    df, spec, _ = small_set
    short = df[df["as_of"] >= df["as_of"].max() - pd.Timedelta(days=166)].reset_index(drop=True)
    with pytest.raises(LeadscoreError) as caught:
        split_training_set(short, spec, FAST)
    text = str(caught.value)
    assert "the train split has 0 rows" in text and re.search(r"span 16[56] days", text)
    assert "= 210 days" in text and "horizon_days" in text and "test_days" in text
