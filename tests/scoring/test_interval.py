"""The Venn-Abers interval of every score: fitted with the calibrator, carried by the scorer,
containing its probability, flagging wide ones for review, saved and loaded with the model."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from leadscore.features.batch import build_scoring_set
from leadscore.scoring.scorer import LeadScorer


@pytest.fixture(scope="module")
def open_rows(small_sim, trained):
    return build_scoring_set(small_sim, trained.scorer.spec, small_sim.data_end).reset_index(
        drop=True
    )


def test_every_score_has_an_interval_that_contains_it(trained, shipped, open_rows):
    for scorer in (trained.scorer, shipped.scorer):
        assert scorer.interval is not None and scorer.interval.rows > 0
        record = scorer.score(scorer.frame_batch(open_rows), reasons=0)
        p, low, high = record.probability, record.p_low, record.p_high
        assert np.all((low > 0) & (low <= p) & (p <= high) & (high < 1))
        # The interval is the Venn-Abers table's at the raw score, moved with the
        # probability by its calibration by age, and widened only to hold p.
        p0, p1 = scorer.interval(scorer.raw_scores(scorer.encode_frame(open_rows)))
        factor = scorer.age_hazard.factor(open_rows["lead_age_days"].to_numpy(dtype=float))
        assert scorer.age_hazard.oldest is not None and not np.all(factor == 1.0)
        np.testing.assert_array_equal(low, np.minimum(p0 * factor, p))
        np.testing.assert_array_equal(high, np.maximum(np.minimum(p1 * factor, 1.0), p))
    # The shipped model's interval comes from its own calibration rows (the out-of-time
    # windows of the refit), not the evaluated model's validation rows.
    assert shipped.scorer.interval.rows != trained.scorer.interval.rows


def test_review_follows_the_configured_width(trained, open_rows):
    scorer = copy.copy(trained.scorer)
    batch = scorer.frame_batch(open_rows)
    record = scorer.score(batch, reasons=0)
    width = record.p_high - record.p_low
    assert scorer.review_width == 0.25
    np.testing.assert_array_equal(record.review, width > 0.25)
    narrow = float(np.quantile(width, 0.5))
    scorer.info = {**scorer.info, "interval_review_width": narrow}
    flagged = scorer.score(batch, reasons=0).review
    assert 0 < flagged.sum() < len(flagged)
    np.testing.assert_array_equal(flagged, width > narrow + 1e-12)
    scorer.info = {**scorer.info, "interval_review_width": None}
    assert not scorer.score(batch, reasons=0).review.any()


def test_the_interval_is_saved_with_the_model_and_an_old_model_scores_without_one(
    trained, open_rows, tmp_path
):
    loaded = LeadScorer.load(trained.scorer.save(tmp_path / "scorer"))
    a = trained.scorer.score(trained.scorer.frame_batch(open_rows), reasons=0)
    b = loaded.score(loaded.frame_batch(open_rows), reasons=0)
    np.testing.assert_array_equal(a.p_low, b.p_low)
    np.testing.assert_array_equal(a.p_high, b.p_high)

    old = copy.copy(trained.scorer)
    old.interval = None
    record = old.score(old.frame_batch(open_rows.head(5)), reasons=0)
    assert record.p_low is None and record.review is None
    assert "p_low" not in record.rows()[0]
    row = trained.scorer.score(trained.scorer.frame_batch(open_rows.head(5)), reasons=0).rows()[0]
    assert row["p_low"] <= row["probability"] <= row["p_high"] and row["review"] in (True, False)


def test_the_training_run_records_the_test_rows_intervals(trained):
    from leadscore.training.tracking import _metrics_for_mlflow

    metrics = _metrics_for_mlflow(trained)
    test = trained.test
    assert (test["interval_low_model"] <= test["p_model"]).all()
    assert (test["p_model"] <= test["interval_high_model"]).all()
    for key in ("test_interval_width_mean_model", "test_interval_width_p90_model"):
        assert 0 < metrics[key] < 1
    assert metrics["test_review_share_model"] == test["review_model"].mean()
    # the figures' scorers are the p_ columns: the interval adds none
    assert [c for c in test.columns if c.startswith("p_")] == [
        "p_model",
        "p_logistic",
        "p_lead_age",
    ]
