"""Our TreeSHAP (leadscore.scoring.treeshap) against LightGBM's own pred_contrib: the same numbers on
numeric, categorical and missing values of every missing type, and LightGBM's where ours
does not reach."""

from __future__ import annotations

import copy

import lightgbm as lgb
import numpy as np
import pytest

import leadscore.scoring.treeshap as treeshap
from leadscore.scoring.treeshap import TreeShap


def _data(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.integers(0, 12, n).astype(float),  # categorical codes
            rng.integers(0, 4, n).astype(float),  # categorical codes
            rng.normal(size=n),
            rng.exponential(size=n),
            rng.integers(0, 3, n).astype(float),  # many zeros (missing type Zero)
            rng.normal(size=n),
        ]
    )
    x[rng.random(n) < 0.15, 2] = np.nan
    x[rng.random(n) < 0.1, 0] = np.nan
    logit = (x[:, 0] % 3 == 0) * 1.2 + np.nan_to_num(x[:, 2]) - 0.5 * x[:, 3] + 0.4 * x[:, 4]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


def _booster(**params) -> tuple[lgb.Booster, np.ndarray]:
    x, y = _data()
    base = {
        "objective": "binary",
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "verbosity": -1,
        "seed": 1,
    }
    data = lgb.Dataset(x, y, categorical_feature=[0, 1], free_raw_data=False)
    return lgb.train({**base, **params}, data, num_boost_round=40), x


def _probe(x: np.ndarray) -> np.ndarray:
    """Rows the training data never had: NaN everywhere, negative and unseen category codes,
    exact zeros, thresholds' neighbourhoods."""
    probe = x[:400].copy()
    probe[::7] = np.nan
    probe[1::9, 0] = -1
    probe[2::9, 0] = 250
    probe[3::9, 1] = 2.7  # a fractional code is truncated, as LightGBM does
    probe[4::5, 4] = 0.0
    probe[5::11, 5] = 0.0
    return probe


@pytest.mark.parametrize(
    "params",
    [
        {},  # missing type NaN on the columns with NaN, None elsewhere
        {"zero_as_missing": True},  # missing type Zero
        {"use_missing": False},  # missing type None: NaN is treated as 0
        {"max_depth": 3, "num_leaves": 8},
        {"num_leaves": 63, "min_data_in_leaf": 5},  # deeper, leaf-wise paths
    ],
)
def test_contributions_equal_lightgbm(params):
    booster, x = _booster(**params)
    explainer = TreeShap.build(booster)
    assert explainer is not None
    for rows in (x[:1], x[:300], _probe(x)):
        ours = explainer(rows)
        theirs = booster.predict(rows, pred_contrib=True)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
        # contributions plus the base value are the raw score
        np.testing.assert_allclose(
            ours.sum(axis=1), booster.predict(rows, raw_score=True), rtol=1e-9, atol=1e-9
        )


def test_chunks_and_constant_trees():
    """More rows than one pass, and trees that are one leaf (nothing left to split)."""
    x, y = _data(600)
    booster = lgb.train(
        {"objective": "binary", "min_data_in_leaf": 400, "verbosity": -1},
        lgb.Dataset(x, y),
        num_boost_round=5,
    )
    explainer = TreeShap.build(booster)
    rows = np.tile(x, (2, 1))
    assert len(rows) > treeshap.CHUNK_ROWS
    np.testing.assert_allclose(
        explainer(rows), booster.predict(rows, pred_contrib=True), rtol=1e-9, atol=1e-9
    )


def test_models_beyond_it_are_left_to_lightgbm(monkeypatch, trained):
    x, y = _data(800)
    linear = lgb.train(
        {"objective": "binary", "linear_tree": True, "verbosity": -1},
        lgb.Dataset(x[:, 2:], y),
        num_boost_round=3,
    )
    assert TreeShap.build(linear) is None
    booster, x = _booster()
    monkeypatch.setattr(treeshap, "MAX_PATH_FEATURES", 2)  # paths longer than its tables
    assert TreeShap.build(booster) is None
    monkeypatch.undo()
    monkeypatch.setattr(treeshap, "MAX_TABLE_ENTRIES", 1_000)  # a model too big for tables
    assert TreeShap.build(booster) is None
    scorer = copy.copy(trained.scorer)
    scorer.booster = booster
    if hasattr(scorer, "_explainer"):
        del scorer._explainer
    assert scorer.explainer is None  # then LightGBM's own TreeSHAP answers
    np.testing.assert_array_equal(
        scorer.contributions(x[:5]), booster.predict(x[:5], pred_contrib=True)
    )


def test_the_scorer_uses_it_and_agrees_with_lightgbm(trained, small_set):
    scorer = trained.scorer
    x = scorer.encode_frame(small_set[0].head(500))
    assert scorer.explainer is not None
    np.testing.assert_allclose(
        scorer.contributions(x),
        scorer.booster.predict(x, pred_contrib=True),
        rtol=1e-9,
        atol=1e-9,
    )


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"use_missing": False}])
def test_the_compiled_kernel_gives_the_numpy_paths_values(monkeypatch, params):
    """Batches of KERNEL_ROWS and more run compiled: the same contributions as the NumPy
    path and as LightGBM, on the probe's NaNs, odd codes and exact zeros too."""
    booster, x = _booster(**params)
    explainer = TreeShap.build(booster)
    rows = np.concatenate([_probe(x), x[:2_000]])
    assert len(rows) >= treeshap.KERNEL_ROWS
    compiled = explainer(rows)
    monkeypatch.setattr(treeshap, "KERNEL_ROWS", 10**9)
    np.testing.assert_allclose(compiled, explainer(rows), rtol=1e-12, atol=1e-12)
    expected = booster.predict(rows, pred_contrib=True)
    np.testing.assert_allclose(compiled, expected, rtol=1e-9, atol=1e-9)
