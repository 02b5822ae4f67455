"""The model that ships is refit on every matured snapshot, calibrated out of time, and
carries the evaluated model, which alone scores held-out rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.scoring.scorer import LeadScorer
from leadscore.training.refit import CALIBRATION_WINDOWS, scaled_rounds, ship
from tests.training.conftest import FAST


def test_the_shipped_model_learned_every_matured_snapshot(small_set, trained, shipped):
    df, spec, _ = small_set
    s = shipped.shipped
    assert s["rows"] == len(df) > int(trained.split.train.sum())
    assert s["leads_won"] == df.loc[df["label"] == 1, "lead_id"].nunique()
    assert pd.Timestamp(s["last_as_of"]) == df["as_of"].max()
    assert shipped.scorer.info["trained_to"] == s["last_as_of"]
    # The evaluated model travels with it, untouched; the figures are still the evaluated ones.
    evaluated = shipped.scorer.evaluated
    assert evaluated.booster.model_to_string() == trained.scorer.booster.model_to_string()
    assert shipped.metrics is trained.metrics
    assert shipped.scorer.booster.model_to_string() != evaluated.booster.model_to_string()
    assert s["rounds"] >= int(trained.scorer.info["best_iteration"])


def test_its_calibration_is_fitted_out_of_time(small_set, shipped):
    """Each window is scored by a booster fitted only on what had matured before it."""
    df, spec, _ = small_set
    windows = shipped.shipped["calibration"]["windows"]
    assert 1 <= len(windows) <= CALIBRATION_WINDOWS
    assert "cross-fitting" in shipped.shipped["calibration"]["fitted_by"]
    horizon = pd.Timedelta(days=spec.horizon_days)
    for w in windows:
        start, end = pd.Timestamp(w["start"]), pd.Timestamp(w["end"])
        assert w["trained_rows"] == int((df["as_of"] + horizon <= start).sum())
        assert w["rows"] == int(((df["as_of"] > start) & (df["as_of"] <= end)).sum())
    p = shipped.scorer.score(shipped.scorer.frame_batch(df.head(200)), reasons=0).probability
    assert ((p > 0) & (p < 1)).all()


def test_rounds_grow_with_the_rows_within_bounds():
    assert scaled_rounds(100, 4_000, 1_000, 2_000) == 200
    assert scaled_rounds(100, 1_000_000, 1_000, 2_000) == 300  # at most 3x
    assert scaled_rounds(100, 500, 1_000, 2_000) == 100  # never fewer than the best round
    assert scaled_rounds(1_500, 4_000, 1_000, 2_000) == 2_000  # the configured cap


def test_held_out_rows_are_scored_by_the_evaluated_model(small_sim, small_set, trained, shipped):
    from leadscore.training.registry import champion_gate
    from leadscore.training.report import compare

    df, spec, _ = small_set
    before = compare(small_sim, trained.scorer, None, FAST, training_set=df, learned=False)
    after = compare(small_sim, shipped.scorer, None, FAST, training_set=df, learned=False)
    np.testing.assert_array_equal(before.rows["probability"], after.rows["probability"])
    assert after.meta["shipped"]["rows"] == len(df)
    # The champion gate, like with like: a shipped champion is judged by its evaluated model.
    ours = champion_gate("1", shipped.scorer, trained, lambda _: df, bootstrap=0)
    theirs = champion_gate("1", trained.scorer, trained, lambda _: df, bootstrap=0)
    assert ours["champion"]["roc_auc"] == pytest.approx(theirs["champion"]["roc_auc"], rel=1e-12)


def test_save_and_load_keep_the_evaluated_model(tmp_path, shipped):
    folder = shipped.scorer.save(tmp_path / "scorer")
    back = LeadScorer.load(folder)
    assert back.booster.model_to_string() == shipped.scorer.booster.model_to_string()
    assert back.evaluated is not None and back.for_evaluation is back.evaluated
    assert (
        back.evaluated.booster.model_to_string()
        == shipped.scorer.evaluated.booster.model_to_string()
    )
    assert LeadScorer.load(back.evaluated.save(tmp_path / "plain")).evaluated is None


def test_refit_off_ships_the_evaluated_model(small_set, trained):
    same = ship(trained, small_set[0], FAST.model_copy(update={"refit": False}))
    assert same is trained and same.scorer.evaluated is None and same.shipped is None


def test_monitoring_the_shipped_model_on_its_own_data_is_not_called_out_of_sample(
    small_sim, shipped
):
    from leadscore.operations.monitor import monitor
    from leadscore.scoring.model_ref import ModelRef

    report = monitor(small_sim, shipped.scorer, ModelRef("m", "1"))
    trained_to = pd.Timestamp(shipped.scorer.info["trained_to"])
    assert report.reference_as_of <= trained_to  # the reference: where its knowledge ends
    assert report.matured is not None and report.matured.in_training
    assert any("not an out-of-sample check" in n for n in report.notes)
    if report.verdict == "ok":  # and the verdict does not call them "as predicted"
        assert "not checked out of sample" in report.reasons[0]
    assert (
        len(report.matured.by_age) and report.matured.by_age["leads"].sum() == report.matured.leads
    )
