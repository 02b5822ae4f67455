"""Calibration on matured outcomes: the pipeline one horizon before the monitored date,
scored now with what was known then, against what happened within the horizon: predicted
vs actual by grade and by decile (tie-aware), ECE with its interval from the one bootstrap
over leads, ROC AUC, and observed / expected wins with its z-test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.batch import build_scoring_set
from features.labels import won_within
from scoring.grades import GRADES
from stats.bootstrap import lead_resample_weights, percentile_interval
from stats.metrics import expected_calibration_error
from stats.ranking import ranked_groups

BINS = 10
ECE_BOOTSTRAP = 200


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
    in_training: bool  # the matured date is not after the model's test start


def _ece_interval(lead_ids, p: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
    """95 % interval of the ECE from the one bootstrap over leads (`stats.bootstrap`); it
    contains the estimate, and does not depend on the order of the rows."""
    draws = []
    for counts in lead_resample_weights(np.asarray(lead_ids), y, ECE_BOOTSTRAP, seed):
        rows = np.repeat(np.arange(len(p)), counts)
        draws.append(expected_calibration_error(y[rows], p[rows]))
    return percentile_interval(draws, expected_calibration_error(y, p))


def _decile_table(p: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Calibration by decile of the probability (1 = lowest), tie-aware (`stats.ranking`):
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


def matured_calibration(
    scorer, ds, as_of, horizon, test_start, seed=0
) -> tuple[Matured, pd.DataFrame] | None:
    """The pipeline at `as_of` scored and set against its outcomes; with its rows."""
    frame, _ = in_domain(build_scoring_set(ds, scorer.spec, as_of), scorer.spec)
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
        in_training=test_start is not None and as_of <= test_start,
    ), frame.assign(label=y)


def in_domain(frame: pd.DataFrame, spec) -> tuple[pd.DataFrame, int]:
    """The leads no older than the model's oldest training snapshot (the ages it learned),
    and how many were older. Without a lead age (a flat export), every lead."""
    if "lead_age_days" not in frame.columns or not spec.snapshot_ages_days:
        return frame, 0
    keep = frame["lead_age_days"].to_numpy(dtype=float) <= max(spec.snapshot_ages_days) + 1e-9
    return frame[keep].reset_index(drop=True), int((~keep).sum())
