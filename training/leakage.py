"""Leakage audit before fitting: features too good to be true, and declared leaky columns.

Two tests, on the train rows only:

- a feature that alone separates the classes with AUC >= `leakage_auc` (0.95 by default)
  is almost always a recording of the outcome. Text columns are scored through an
  out-of-fold target encoding, so an id-like column cannot score high by memorising rows;
- a text feature that pins the outcome both ways, with a sizeable group of leads almost
  all won under one value and another almost all lost under another value (shrunk
  log-odds at least `leakage_log_odds` above and below the base rate), is a disposition
  written by sales after contact ("Closed by Horizzon" / "Already a student", "High in
  Relevance" / "Worst"). A real profile attribute known when the lead arrives moves the
  odds one way or the other for some values; it rarely settles the outcome in both
  directions. This catches columns like X Education's `Lead Quality`, whose AUC alone
  (0.80) is nowhere near a threshold an honest strong feature would not also reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

PRIOR_ROWS = 10.0  # pseudo-rows at the base rate: a value's win rate is shrunk towards it


@dataclass(frozen=True)
class PinnedValue:
    """A value of a text feature under which the outcome is (nearly) settled."""

    value: str
    rows: int
    win_rate: float
    log_odds_shift: float  # shrunk log-odds minus the base rate's


@dataclass(frozen=True)
class LeakageReport:
    single_feature_auc: dict[str, float]
    flagged: list[str]  # by either test
    declared: list[str]  # by dataset.yaml
    excluded: list[str]  # what the model will not use
    pinned: dict[str, tuple[PinnedValue, PinnedValue]] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        out = []
        for f in self.flagged:
            auc = self.single_feature_auc[f]
            if f in self.pinned:
                won, lost = self.pinned[f]
                out.append(
                    f"feature {f!r} settles the outcome both ways on train: {won.value!r} "
                    f"{won.win_rate:.0%} won ({won.rows:,} rows), {lost.value!r} "
                    f"{lost.win_rate:.0%} won ({lost.rows:,} rows); AUC alone {auc:.3f}: "
                    "likely entered after contact"
                )
            else:
                out.append(
                    f"feature {f!r} alone reaches AUC {auc:.3f} on train: likely leaks the outcome"
                )
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


def pinned_values(
    x: pd.Series, y: np.ndarray, *, log_odds: float, min_rows: int
) -> tuple[PinnedValue, PinnedValue] | None:
    """The most-won and most-lost values of a text feature when both settle the outcome.

    A value counts with at least `min_rows` rows (missing is a value: "blank until sales
    fills it in"). Its win rate is shrunk towards the base rate by PRIOR_ROWS pseudo-rows;
    the feature is returned when one value's log-odds are at least `log_odds` above the
    base rate's and another's at least `log_odds` below.
    """
    base = float(y.mean())
    if not 0.0 < base < 1.0:
        return None
    codes = pd.Categorical(x.astype("object").where(x.notna(), "(missing)"))
    rows = np.bincount(codes.codes, minlength=len(codes.categories))
    wins = np.bincount(codes.codes, weights=y, minlength=len(codes.categories))
    keep = rows >= min_rows
    if keep.sum() < 2:
        return None
    rate = (wins + PRIOR_ROWS * base) / (rows + PRIOR_ROWS)
    shift = np.log(rate / (1 - rate)) - np.log(base / (1 - base))
    shift = np.where(keep, shift, 0.0)
    hi, lo = int(np.argmax(shift)), int(np.argmin(shift))
    if shift[hi] < log_odds or shift[lo] > -log_odds:
        return None

    def value(i: int) -> PinnedValue:
        return PinnedValue(
            str(codes.categories[i]), int(rows[i]), float(wins[i] / rows[i]), float(shift[i])
        )

    return value(hi), value(lo)


def audit_leakage(
    train: pd.DataFrame,
    features: list[str],
    declared: list[str],
    *,
    threshold: float,
    allow_leaky: bool,
    log_odds: float = 2.5,
    min_rows: int = 30,
    min_share: float = 0.005,
    seed: int = 0,
) -> LeakageReport:
    """Flag features by either test (module docstring); exclude them and the declared ones.

    Args:
        threshold: single-feature AUC from which a feature is flagged.
        log_odds: the both-ways shift from which a text feature is flagged.
        min_rows, min_share: a value needs max(min_rows, min_share * rows) rows to count.
    """
    y = train["label"].to_numpy().astype(int)
    aucs = {f: single_feature_auc(train[f], y, seed) for f in features}
    support = max(min_rows, int(np.ceil(min_share * len(train))))
    pinned = {}
    for f in features:
        x = train[f]
        if isinstance(x.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(x):
            found = pinned_values(x, y, log_odds=log_odds, min_rows=support)
            if found is not None:
                pinned[f] = found
    flagged = [f for f, auc in aucs.items() if auc >= threshold or f in pinned]
    declared = [c for c in declared if c in features]
    excluded = [] if allow_leaky else sorted(set(flagged) | set(declared), key=features.index)
    return LeakageReport(aucs, flagged, declared, excluded, pinned)
