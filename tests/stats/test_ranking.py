"""Rank-based numbers do not depend on row order, and every interval holds its estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.stats.bootstrap import lead_resample_weights, percentile_interval
from leadscore.stats.metrics import bootstrap_auc, calibration_bins, deciles, gains_curve
from leadscore.stats.ranking import top_share


def _coarse(seed: int = 0, n: int = 2_000):
    """A coarse scorer (five distinct scores) on leads with three snapshots each."""
    rng = np.random.default_rng(seed)
    score = rng.integers(0, 5, n).astype(float)
    y = (rng.random(n) < 0.05 + 0.05 * score).astype(int)
    leads = np.repeat(np.arange(n // 2), 2)
    return y, score, leads


def test_tied_scores_share_credit_at_the_cut():
    y = np.array([1, 0, 0, 1, 0, 0])
    score = np.array([3.0, 2, 2, 2, 2, 1])
    share = top_share(score, 3)  # the top row, then 2 places for 4 tied rows
    assert share.tolist() == [1, 0.5, 0.5, 0.5, 0.5, 0]
    assert share @ y == pytest.approx(1.5)  # 1 + 2 * (1 win / 4 tied rows)


def test_tables_are_identical_after_shuffling_the_rows():
    y, score, leads = _coarse()
    order = np.random.default_rng(9).permutation(len(y))
    for table in (deciles, lambda y, s: calibration_bins(y, s / 5)):
        pd.testing.assert_frame_equal(
            pd.DataFrame(table(y, score)), pd.DataFrame(table(y[order], score[order]))
        )
    for a, b in zip(gains_curve(y, score), gains_curve(y[order], score[order]), strict=True):
        np.testing.assert_allclose(a, b)
    assert bootstrap_auc(y, score, 100, groups=leads) == pytest.approx(
        bootstrap_auc(y[order], score[order], 100, groups=leads[order])
    )


def test_deciles_give_expected_wins_not_row_order_wins():
    # 100 rows all tied: every decile holds a tenth of the wins, whatever the order
    y = np.r_[np.ones(30), np.zeros(70)]
    table = deciles(y, np.zeros(100))
    assert [row["wins"] for row in table] == pytest.approx([3.0] * 10)
    assert table[0]["lift"] == pytest.approx(1.0)


def test_resamples_keep_leads_whole_and_both_classes():
    y, _, leads = _coarse(1)
    for w in lead_resample_weights(leads, y, 20, seed=2):
        assert (w[::2] == w[1::2]).all()  # a lead's two rows are drawn together
        assert (w * y).sum() > 0 and (w * (1 - y)).sum() > 0
        assert w.sum() == len(y)


def test_an_interval_always_contains_its_estimate():
    draws = [1.0, 1.1, 1.2, 1.3] * 10
    assert percentile_interval(draws, 0.86) == pytest.approx((0.86, 1.3))
    assert percentile_interval(draws, 1.15)[0] <= 1.15 <= percentile_interval(draws, 1.15)[1]
    assert np.isnan(percentile_interval([], 1.0)[0])


def test_same_day_auc_is_each_days_auc_weighted_by_its_wins_in_any_row_order():
    from sklearn.metrics import roc_auc_score

    from leadscore.stats.ranking import day_index, same_day_auc

    rng = np.random.default_rng(3)
    n = 3_000
    day = rng.integers(0, 40, n)
    score = rng.integers(0, 8, n).astype(float)  # coarse: ties inside a day count half
    y = (rng.random(n) < 0.03 + 0.02 * score).astype(int)
    aucs, wins = [], []
    for d in np.unique(day):
        on = day == d
        if 0 < y[on].sum() < on.sum():
            aucs.append(roc_auc_score(y[on], score[on]))
            wins.append(y[on].sum())
    expected = np.average(aucs, weights=wins)
    assert same_day_auc(y, score, day) == pytest.approx(expected, abs=1e-12)
    shuffled = rng.permutation(n)
    assert same_day_auc(y[shuffled], score[shuffled], day[shuffled]) == pytest.approx(expected)
    # an age mix the pooled ranking sees and the same day does not: old rows never win
    age_score = np.where(day < 20, 1.0, 0.0)  # constant inside each day
    assert same_day_auc(y, age_score, day) == pytest.approx(0.5)
    # no day with both outcomes: no figure, not a number made up
    assert np.isnan(same_day_auc(np.r_[1, 0], np.r_[0.2, 0.1], np.r_[0, 1]))
    stamps = pd.Series(pd.to_datetime(["2025-01-01T23:59:00Z", "2025-01-02T00:01:00Z"]))
    assert np.diff(day_index(stamps.to_numpy()))[0] == 1  # calendar days in UTC


def test_top_share_by_day_fills_each_days_own_slots():
    from leadscore.stats.ranking import top_share_by_day

    score = np.array([0.9, 0.1, 0.5, 0.5, 0.8, 0.2])
    day = np.array([0, 0, 1, 1, 1, 2])
    matched = np.array([0, 1, 1, 0, 0, 0], dtype=float)  # the other scorer's picks: 1, 1, 0
    share = top_share_by_day(score, matched, day)
    # day 0: the 0.9 row; day 1: the 0.8 row (not a 0.5 row, though higher than day 0's
    # second); day 2: none
    assert share.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    tied = top_share_by_day(np.array([0.5, 0.5]), np.array([1.0, 0.0]), np.array([4, 4]))
    assert tied.tolist() == [0.5, 0.5]  # a tie at the cut shares the place
