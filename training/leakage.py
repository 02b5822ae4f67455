"""Leakage audit before fitting: features too good to be true, and declared leaky columns.

A feature that alone separates the classes on train with AUC >= threshold (0.95 by default)
is almost always a recording of the outcome (a status set by sales after the fact). Text
columns are scored through an out-of-fold target encoding, so an id-like column cannot
score high by memorising its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold


@dataclass(frozen=True)
class LeakageReport:
    single_feature_auc: dict[str, float]
    flagged: list[str]  # by the AUC threshold
    declared: list[str]  # by dataset.yaml
    excluded: list[str]  # what the model will not use

    def warnings(self) -> list[str]:
        out = [
            f"feature {f!r} alone reaches AUC {self.single_feature_auc[f]:.3f} on train: likely leaks the outcome"
            for f in self.flagged
        ]
        out += [f"column {c!r} is declared leaky in dataset.yaml" for c in self.declared]
        return out


def single_feature_auc(x: pd.Series, y: np.ndarray, seed: int = 0) -> float:
    """max(AUC, 1 - AUC) of one feature on its own (missing values as their own level)."""
    if isinstance(x.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(x):
        codes = pd.Categorical(x.astype("object")).codes
        score = np.zeros(len(x))
        n_splits = int(min(5, np.bincount(y).min()))
        if n_splits < 2:
            return 0.5
        for fit_idx, eval_idx in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(
            codes, y
        ):
            rates = pd.Series(y[fit_idx]).groupby(codes[fit_idx]).mean()
            score[eval_idx] = (
                pd.Series(codes[eval_idx]).map(rates).fillna(y[fit_idx].mean()).to_numpy()
            )
    else:
        values = x.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.all(np.isnan(values)):
            return 0.5
        score = np.where(np.isnan(values), np.nanmin(values) - 1.0, values)
    if np.unique(score).size < 2:
        return 0.5
    auc = roc_auc_score(y, score)
    return float(max(auc, 1.0 - auc))


def audit_leakage(
    train: pd.DataFrame,
    features: list[str],
    declared: list[str],
    *,
    threshold: float,
    allow_leaky: bool,
    seed: int = 0,
) -> LeakageReport:
    y = train["label"].to_numpy().astype(int)
    aucs = {f: single_feature_auc(train[f], y, seed) for f in features}
    flagged = [f for f, auc in aucs.items() if auc >= threshold]
    declared = [c for c in declared if c in features]
    excluded = [] if allow_leaky else sorted(set(flagged) | set(declared), key=features.index)
    return LeakageReport(aucs, flagged, declared, excluded)
