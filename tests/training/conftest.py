from __future__ import annotations

from training.config import LightGBMParams, TrainConfig

# Fewer bootstrap resamples and rounds than the defaults: the same code, faster.
FAST = TrainConfig(bootstrap=30, lightgbm=LightGBMParams(max_rounds=300, early_stopping_rounds=30))
