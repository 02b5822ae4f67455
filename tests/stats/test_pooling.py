"""Per-segment calibration: a miscalibrated segment is corrected in proportion to its
evidence, segments that do not differ are left alone, unknown segments keep the global."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.stats.calibration import logit, sigmoid
from leadscore.stats.pooling import SegmentCalibration, fit_segment_calibration


def segment_rows(sizes: dict[str, int], shift: dict[str, float], seed: int = 0):
    """Globally calibrated probabilities p; each segment's true logit is logit(p) + shift."""
    rng = np.random.default_rng(seed)
    names = np.concatenate([[name] * n for name, n in sizes.items()])
    p = sigmoid(rng.normal(-2.0, 1.2, len(names)))
    true = sigmoid(logit(p) + np.array([shift.get(str(s), 0.0) for s in names]))
    y = (rng.random(len(names)) < true).astype(float)
    return p, y, names


def test_a_large_miscalibrated_segment_gets_its_own_and_a_small_one_is_shrunk():
    # "big" and "small" convert twice the odds their scores say; "base" as they say.
    p, y, seg = segment_rows(
        {"base": 20_000, "big": 8_000, "small": 60}, {"big": 0.7, "small": 0.7}
    )
    cal = fit_segment_calibration(p, y, seg, "product_line")
    a_big, a_small = cal.offsets["big"][0], cal.offsets["small"][0]
    assert a_big == pytest.approx(0.7, abs=0.12)
    assert abs(cal.offsets["base"][0]) < 0.08
    assert 0 <= a_small < a_big  # pulled toward 0 by its few rows
    assert cal.evidence["small"]["weight"] < cal.evidence["big"]["weight"] <= 1
    assert cal.evidence["big"]["rows"] == 8_000
    # Fresh rows of the big segment: the corrected probabilities have the lower log loss.
    p2, y2, seg2 = segment_rows({"big": 8_000}, {"big": 0.7}, seed=1)
    adjusted = cal.adjust(p2, seg2)

    def loss(q):
        return -np.mean(y2 * np.log(q) + (1 - y2) * np.log(1 - q))

    assert loss(adjusted) < loss(p2) - 0.005


def test_segments_that_do_not_differ_are_left_alone():
    p, y, seg = segment_rows({"a": 5_000, "b": 5_000, "c": 5_000}, {}, seed=2)
    cal = fit_segment_calibration(p, y, seg, "region")
    assert max(abs(v[0]) + abs(v[1]) for v in cal.offsets.values()) < 0.05
    assert np.abs(cal.adjust(p, seg) - p).max() < 0.01


def test_unknown_and_missing_segments_keep_the_global_calibration_and_it_round_trips():
    p, y, seg = segment_rows({"a": 3_000, "b": 3_000}, {"b": 1.0}, seed=3)
    cal = fit_segment_calibration(p, y, seg, "region", low=0.001, high=0.999)
    probe = np.array([0.2, 0.2, 0.2, 0.9999])
    out = cal.adjust(probe, ["new", None, "b", "b"])
    assert out[0] == 0.2 and out[1] == 0.2 and out[2] > 0.3 and out[3] <= 0.999
    again = SegmentCalibration.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again.adjust(probe, ["b"] * 4), cal.adjust(probe, ["b"] * 4))


def test_rows_that_do_not_line_up_are_refused():
    with pytest.raises(ValueError, match="one probability"):
        fit_segment_calibration(np.array([0.1, 0.2]), np.array([0, 1]), ["a"], "region")
