"""Negative sampling by lead (leadscore.training.sampling): how a training set larger than memory is
fitted, and what it costs in calibration and ranking (held-out rows stay whole)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.training.sampling import fit_rows


def test_every_lead_with_a_win_stays_whole_and_the_others_are_weighted_back():
    rng = np.random.default_rng(0)
    leads = pd.Series([f"L{i // 4}" for i in range(40_000)])  # 10,000 leads, 4 rows each
    labels = (rng.random(40_000) < 0.02).astype(int)
    rows = np.arange(40_000)
    chosen = fit_rows(leads, labels, rows, 12_000, seed=3)
    assert chosen.sampled and 0 < chosen.rate < 1
    kept = leads.iloc[chosen.rows]
    won = set(leads[labels == 1])
    assert won <= set(kept)  # every lead with a win
    # leads are kept whole: 4 rows each
    assert (kept.value_counts() == 4).all()
    # the weighted rows have the whole win rate and row count (about)
    w = chosen.weights
    assert w[labels[chosen.rows] == 1].max() == 1.0
    assert w.sum() == pytest.approx(40_000, rel=0.05)
    assert (w * labels[chosen.rows]).sum() / w.sum() == pytest.approx(labels.mean(), rel=0.05)
    assert len(chosen.rows) == pytest.approx(12_000, rel=0.1)
    # the same seed, the same rows; no cap or a cap above the rows: nothing sampled
    assert (fit_rows(leads, labels, rows, 12_000, seed=3).rows == chosen.rows).all()
    for cap in (None, 40_000):
        whole = fit_rows(leads, labels, rows, cap, seed=3)
        assert not whole.sampled and (whole.rows == rows).all()


def test_a_sampled_fit_stays_calibrated_on_the_whole_held_out_rows(small_set, trained):
    from leadscore.training.fit import fit_models
    from tests.training.conftest import FAST

    df, spec, _ = small_set
    total = int(trained.split.train.sum())
    config = FAST.model_copy(update={"max_fit_rows": 5_000})
    assert total > 8_000
    sampled = fit_models(df, spec, config)
    assert sampled.params["fit_rows"] < 5_600 < total == trained.params["fit_rows"]
    assert any("more than max_fit_rows" in w for w in sampled.warnings)
    # the held-out rows are the same, whole
    assert sampled.split.validation.sum() == trained.split.validation.sum()
    assert len(sampled.test) == len(trained.test)
    whole, part = trained.metrics["model"], sampled.metrics["model"]
    assert part["roc_auc"] > whole["roc_auc"] - 0.02
    assert part["ece"] < max(2 * whole["ece"], 0.02)


def test_the_shipped_refit_samples_too_and_scores_its_windows_whole(small_set, trained):
    from leadscore.training.refit import ship
    from tests.training.conftest import FAST

    df, _, _ = small_set
    config = FAST.model_copy(update={"max_fit_rows": 5_000})
    shipped = ship(trained, df, config)
    info = shipped.scorer.info["shipped"]
    assert info["rows"] == len(df)  # what it was refit on: every matured snapshot
    windows = info["calibration"]["windows"]
    assert windows and all(w["rows"] > 0 for w in windows)
    p = shipped.scorer.predict_proba(shipped.scorer.encode_frame(df.tail(2_000)))
    assert p.min() > 0 and p.max() < 1
    assert abs(p.mean() - df.tail(2_000)["label"].mean()) < 0.05


def test_the_baseline_learns_from_the_weighted_sample_too(small_set):
    """The logistic baseline of a sampled fit is weighted back like the booster: its mean
    probability on the whole test rows stays near their win rate."""
    from leadscore.training.fit import fit_models
    from tests.training.conftest import FAST

    df, spec, _ = small_set
    sampled = fit_models(df, spec, FAST.model_copy(update={"max_fit_rows": 5_000}))
    test = sampled.test
    assert abs(test["p_logistic"].mean() - test["label"].mean()) < 0.03  # unweighted: 0.058
