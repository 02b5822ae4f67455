from __future__ import annotations

import pytest

from features.batch import build_training_set
from training.config import LightGBMParams, TrainConfig
from training.fit import fit_models

FAST = TrainConfig(bootstrap=30, lightgbm=LightGBMParams(max_rounds=300, early_stopping_rounds=30))


@pytest.fixture(scope="session")
def small_set(small_sim):
    return build_training_set(small_sim)


@pytest.fixture(scope="session")
def trained(small_set):
    df, spec, _ = small_set
    return fit_models(df, spec, FAST)
