"""Calibration on matured outcomes: the pipeline one horizon before the monitored date,
scored now with what was known then, against what happened within the horizon: predicted
vs actual by grade, by decile (tie-aware) and by lead-age band (every age: the open
pipeline keeps every lead never closed, and none is set aside), ECE with its interval from
the one bootstrap over leads, ROC AUC, and observed / expected wins with its z-test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

from leadscore.features.batch import build_scoring_set
from leadscore.features.labels import won_within
from leadscore.scoring.grades import GRADES
from leadscore.stats.bootstrap import lead_resample_weights, percentile_interval
from leadscore.stats.metrics import expected_calibration_error
from leadscore.stats.ranking import ranked_groups

BINS = 10
ECE_BOOTSTRAP = 200
# Lead-age bands (days) of the calibration check: the open pipeline holds every age.
AGE_BANDS = (0, 14, 30, 60, 90, 180, 365)
# A band with this many expected wins is judged on its ratio; a smaller one on a Poisson
# 95 % band around its expected wins (its ratio alone is noise).
RATIO_BAND = (0.8, 1.25)
MIN_EXPECTED_FOR_RATIO = 20.0


@dataclass
class Matured:
    as_of: pd.Timestamp
    leads: int
    wins: int
    expected: float
    z: float
    ece: float
    ece_interval: tuple[float, float]
    roc_auc: float | None
    by_grade: pd.DataFrame
    by_decile: pd.DataFrame
    by_age: pd.DataFrame  # `age_band_table`: every age of the open pipeline, none set aside
    in_training: bool  # the matured date is not after what the model may have learned from


def _ece_interval(lead_ids, p: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
    """95 % interval of the ECE from the one bootstrap over leads (`leadscore.stats.bootstrap`); it
    contains the estimate, and does not depend on the order of the rows."""
    draws = []
    for counts in lead_resample_weights(np.asarray(lead_ids), y, ECE_BOOTSTRAP, seed):
        rows = np.repeat(np.arange(len(p)), counts)
        draws.append(expected_calibration_error(y[rows], p[rows]))
    return percentile_interval(draws, expected_calibration_error(y, p))


def _decile_table(p: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Calibration by decile of the probability (1 = lowest), tie-aware (`leadscore.stats.ranking`):
    tied probabilities across a decile edge share their rows, so wins are expectations."""
    rows = []
    for decile, (slots, share) in enumerate(ranked_groups(p, BINS, descending=False), start=1):
        wins, expected = float(share @ y), float(share @ p)
        rows.append(
            {
                "group": decile,
                "leads": slots,
                "predicted": expected / slots,
                "actual": wins / slots,
                "wins": wins,
                "expected_wins": expected,
            }
        )
    return pd.DataFrame(rows)


def _calibration_table(groups: np.ndarray, p: np.ndarray, y: np.ndarray, order) -> pd.DataFrame:
    rows = []
    for g in order:
        m = groups == g
        if m.any():
            rows.append(
                {
                    "group": g,
                    "leads": int(m.sum()),
                    "predicted": float(p[m].mean()),
                    "actual": float(y[m].mean()),
                    "wins": int(y[m].sum()),
                    "expected_wins": float(p[m].sum()),
                }
            )
    return pd.DataFrame(rows)


def age_band_table(age_days: np.ndarray, p: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Matured calibration by lead age: per band, leads, expected wins (the sum of the
    probabilities), observed wins, their ratio, and whether the band holds: observed /
    expected within RATIO_BAND when at least MIN_EXPECTED_FOR_RATIO wins are expected, else
    the observed count inside the Poisson 95 % interval of the expected one (`holds`); and
    the two-sided Poisson p-value of the observed count, for a verdict that shares its alpha
    with the other tests."""
    age = np.asarray(age_days, dtype=np.float64)
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    edges = [*AGE_BANDS, np.inf]
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (age >= lo) & (age < hi)
        if not m.any():
            continue
        expected, wins = float(p[m].sum()), float(y[m].sum())
        if expected >= MIN_EXPECTED_FOR_RATIO:
            low, high = RATIO_BAND[0] * expected, RATIO_BAND[1] * expected
        else:
            low, high = (float(v) for v in stats.poisson.interval(0.95, expected))
        # Two-sided Poisson test of the observed count against the expected one.
        tail = min(stats.poisson.cdf(wins, expected), stats.poisson.sf(wins - 1, expected))
        rows.append(
            {
                "group": f"{lo:g}-{hi:g} d" if np.isfinite(hi) else f"{lo:g}+ d",
                "leads": int(m.sum()),
                "expected_wins": expected,
                "wins": wins,
                "observed_over_expected": wins / expected if expected > 0 else float("nan"),
                "low": low,
                "high": high,
                "holds": bool(low <= wins <= high),
                "p_value": float(min(1.0, 2 * tail)) if expected > 0 else 1.0,
            }
        )
    return pd.DataFrame(rows)


def matured_calibration(
    scorer, ds, as_of, horizon, seen_to, seed=0
) -> tuple[Matured, pd.DataFrame] | None:
    """The pipeline at `as_of` scored and set against its outcomes; with its rows.
    `seen_to`: the end of the outcomes the model may have learned from (None: unknown);
    a matured date not after it is flagged `in_training`."""
    frame = build_scoring_set(ds, scorer.spec, as_of)
    if frame.empty:
        return None
    record = scorer.score(scorer.frame_batch(frame), reasons=0)
    p = record.probability
    y = won_within(ds, frame["lead_id"], as_of, horizon).astype(int)
    expected = float(p.sum())
    variance = float(np.sum(p * (1 - p)))
    z = (y.sum() - expected) / np.sqrt(variance) if variance > 0 else 0.0
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
    return Matured(
        as_of=as_of,
        leads=len(y),
        wins=int(y.sum()),
        expected=expected,
        z=float(z),
        ece=expected_calibration_error(y, p),
        ece_interval=_ece_interval(frame["lead_id"], p, y, seed),
        roc_auc=auc,
        by_grade=_calibration_table(record.grade.astype(str), p, y, GRADES),
        by_decile=_decile_table(p, y),
        by_age=age_band_table(frame["lead_age_days"].to_numpy(), p, y)
        if "lead_age_days" in frame
        else pd.DataFrame(),
        in_training=seen_to is not None and as_of <= seen_to,
    ), frame.assign(label=y)
