"""Bayes oracle: the exact probability of a win in `(as_of, as_of + horizon]`.

It knows what no model sees (each lead's funnel rates and its state at `as_of`), so its AUC
is the ceiling a model's out-of-time AUC can be held against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.linalg import expm

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import US_PER_DAY
from leadscore.simulation import funnel as fm
from leadscore.simulation.files import TRUTH_FILE
from leadscore.simulation.paths import state_at

PATH_COLUMNS = ("touched_at", "qualified_at", "advanced_at", "cold_at", "closed_at")


def read_truth(dataset_path: str | Path) -> pd.DataFrame:
    """Read `truth.csv` of a simulated dataset, indexed by lead_id."""
    path = Path(dataset_path) / TRUTH_FILE
    if not path.is_file():
        raise LeadscoreError(f"{path}: no truth file (only simulated datasets have one)")
    truth = pd.read_csv(path, dtype={"lead_id": str})
    for col in (*PATH_COLUMNS, "created_at"):
        if col in truth:
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


def account_oracle_probability(
    truth: pd.DataFrame, account_ids, as_of, horizon_days: float = 90.0
) -> np.ndarray:
    """P(the account has a won deal in (as_of, as_of + horizon]) given its contacts' latent
    rates, their states at as_of, and when the contacts yet to come arrive (the simulator
    knows; a model does not). Contacts' paths are independent given their rates, so the
    account loses only when each contact does: 1 - prod(1 - p_contact).

    Args:
        truth: from `read_truth` of a dataset simulated with accounts.
        account_ids: one account id per row.
        as_of: one UTC timestamp per row (or a single one for all).
    """
    if "account_id" not in truth:
        raise LeadscoreError(f"{TRUTH_FILE}: no accounts (simulate with `accounts`)")
    ids = np.asarray(account_ids, dtype=object)
    as_of = pd.DatetimeIndex(np.broadcast_to(pd.to_datetime(as_of, utc=True), len(ids)))
    members = truth.reset_index()[["lead_id", "account_id", "created_at"]]
    rows = pd.DataFrame({"account_id": ids, "as_of": as_of, "row": np.arange(len(ids))})
    pairs = rows.merge(members, on="account_id", how="inner")
    unknown = ~pd.Index(ids).isin(members["account_id"])
    if unknown.any():
        raise LeadscoreError(f"{TRUTH_FILE}: no account {ids[unknown][0]!r}")
    horizon = pd.Timedelta(days=horizon_days)
    created, t = pairs["created_at"], pairs["as_of"]
    known = (created <= t).to_numpy()
    coming = ((created > t) & (created <= t + horizon)).to_numpy()
    p = np.zeros(len(pairs))
    if known.any():
        p[known] = oracle_probability(
            truth, pairs.loc[known, "lead_id"], pairs.loc[known, "as_of"], horizon_days
        )
    if coming.any():  # from NEW at its arrival, for what is left of the window
        sub = truth.loc[pairs.loc[coming, "lead_id"]]
        left = ((t + horizon - created)[coming] / pd.Timedelta(days=1)).to_numpy()
        q = fm.generator_matrices({c: sub[c].to_numpy(float) for c in fm.RATE_COLUMNS})
        p[coming] = np.clip(_batched_expm(q * left[:, None, None])[:, fm.NEW, fm.WON], 0, 1)
    log_lose = np.zeros(len(ids))
    np.add.at(log_lose, pairs["row"].to_numpy(), np.log1p(-np.minimum(p, 1 - 1e-15)))
    return -np.expm1(log_lose)


def _batched_expm(q: np.ndarray) -> np.ndarray:
    """expm of a stack of generators. The funnel's Q is upper triangular, for which scipy
    falls back to a slow per-matrix path; an orthogonal change of basis P keeps it on the
    batched one: expm(Q) = P.T @ expm(P @ Q @ P.T) @ P."""
    p, _ = np.linalg.qr(np.random.default_rng(0).standard_normal(q.shape[-2:]))
    return p.T @ expm(p @ q @ p.T) @ p


def _days(stamps: pd.DatetimeIndex) -> np.ndarray:
    values = stamps.as_unit("us").asi8.astype(float) / US_PER_DAY
    return np.where(stamps.isna(), np.inf, values)
