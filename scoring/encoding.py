"""The model matrix: rows encoded as the booster reads them, from a training-set frame
(the batch engine's rows) or from an online batch (payloads, no pandas); categoricals as
fixed codes, a value unseen in training as NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadscore.features.online import OnlineBatch


def encode_frame(
    df: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> np.ndarray:
    """Model matrix from a training-set frame: categoricals as fixed codes (unseen: NaN)."""
    x = np.empty((len(df), len(features)), dtype=np.float64, order="F")
    for j, name in enumerate(features):
        if name in categories:
            codes = pd.Categorical(df[name].astype("object"), categories=categories[name]).codes
            x[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            x[:, j] = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return x


def category_codes(categories: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Each categorical feature's values -> their fixed codes."""
    return {c: {v: float(i) for i, v in enumerate(vals)} for c, vals in categories.items()}


def encode_batch(
    batch: OnlineBatch,
    features: list[str],
    feature_codes: dict[str, dict[str, float]],
    behaviour_index: dict[str, int],
) -> np.ndarray:
    """Model matrix from an OnlineBatch (no pandas, no per-feature dicts): `feature_codes` from
    `category_codes`, `behaviour_index` each behaviour feature's column in the batch."""
    n = len(batch.behaviour)
    x = np.empty((n, len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        codes = feature_codes.get(name)
        if codes is not None:
            x[:, j] = [
                codes.get(v, math.nan) if v is not None else math.nan
                for v in batch.categorical[name]
            ]
        elif name in batch.numeric:
            x[:, j] = batch.numeric[name]
        else:
            x[:, j] = batch.behaviour[:, behaviour_index[name]]
    return x
