"""Bayes oracle: the exact probability of a win in `(as_of, as_of + horizon]`.

It knows what no model sees (each lead's funnel rates and its state at `as_of`), so its AUC
is the ceiling a model's out-of-time AUC can be held against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.linalg import expm

from crm.errors import LeadscoreError
from crm.times import US_PER_DAY
from simulation import funnel as fm
from simulation.simulator import TRUTH_FILE, state_at

PATH_COLUMNS = ("touched_at", "qualified_at", "advanced_at", "cold_at", "closed_at")


def read_truth(dataset_path: str | Path) -> pd.DataFrame:
    """Read `truth.csv` of a simulated dataset, indexed by lead_id."""
    path = Path(dataset_path) / TRUTH_FILE
    if not path.is_file():
        raise LeadscoreError(f"{path}: no truth file (only simulated datasets have one)")
    truth = pd.read_csv(path, dtype={"lead_id": str})
    for col in PATH_COLUMNS:
        truth[col] = pd.to_datetime(truth[col], utc=True, format="ISO8601")
    return truth.set_index("lead_id")


def oracle_probability(
    truth: pd.DataFrame, lead_ids, as_of, horizon_days: float = 90.0
) -> np.ndarray:
    """P(win in (as_of, as_of + horizon]) given each lead's latent rates and state at as_of.

    Args:
        truth: from `read_truth`.
        lead_ids: one lead id per snapshot.
        as_of: one UTC timestamp per snapshot (or a single one for all).
    """
    ids = pd.Index(np.asarray(lead_ids, dtype=object))
    missing = ~ids.isin(truth.index)
    if missing.any():
        raise LeadscoreError(f"{TRUTH_FILE}: no latent state for lead_id {ids[missing][0]!r}")
    rows = truth.loc[ids]
    as_of = pd.DatetimeIndex(np.broadcast_to(pd.to_datetime(as_of, utc=True), len(ids)))
    # Times as float days since the epoch; a path time never reached (NaT) is +inf.
    t = _days(as_of)
    path = {c: _days(pd.DatetimeIndex(rows[c])) for c in PATH_COLUMNS}
    path["final_state"] = (
        rows["final_state"].map({n: i for i, n in enumerate(fm.STATE_NAMES)}).to_numpy()
    )
    state = state_at(path, t)
    q = fm.generator_matrices({c: rows[c].to_numpy(float) for c in fm.RATE_COLUMNS})
    transition = _batched_expm(q * horizon_days)
    p = np.clip(transition[np.arange(len(ids)), state, fm.WON], 0.0, 1.0)  # round-off
    # A lead already closed at as_of cannot enter WON again within the window.
    return np.where(np.isin(state, (fm.WON, fm.LOST)), 0.0, p)


def _batched_expm(q: np.ndarray) -> np.ndarray:
    """expm of a stack of generators. The funnel's Q is upper triangular, for which scipy
    falls back to a slow per-matrix path; an orthogonal change of basis P keeps it on the
    batched one: expm(Q) = P.T @ expm(P @ Q @ P.T) @ P."""
    p, _ = np.linalg.qr(np.random.default_rng(0).standard_normal(q.shape[-2:]))
    return p.T @ expm(p @ q @ p.T) @ p


def _days(stamps: pd.DatetimeIndex) -> np.ndarray:
    values = stamps.as_unit("us").asi8.astype(float) / US_PER_DAY
    return np.where(stamps.isna(), np.inf, values)
