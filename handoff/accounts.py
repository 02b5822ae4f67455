"""The account hand-off line: which accounts to hand to sales, one event per crossing.

An account crosses the account hand-off line when its grade is one of the line's grades at
this run's as_of and was not at the previous run's as_of. What the previous run saw is
recomputed, not stored: the account is scored again at the previous run's as_of with only
what was known then (features are point in time; `leadscore.operations.accounts.account_run`). A crossing's event id is derived from the
account and the as_of it was last seen below the line (or "first"), so a re-run of the same
as_of, or a crossing staged in the outbox twice, is one event. A crossing whose interval is
wider than the model's review width is `account.review` instead of `account.handoff`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import to_us
from leadscore.scoring.grades import GRADES


@dataclass(frozen=True)
class AccountLine:
    """Above the account line: the account model's grade is one of `grades` ('' : no
    account hand-offs)."""

    grades: str = "A"

    def __post_init__(self) -> None:
        bad = sorted(set(self.grades.upper()) - set(GRADES))
        if bad:
            raise LeadscoreError(
                f"account hand-off grades {self.grades!r}: {', '.join(bad)} not in A-D"
            )

    def describe(self) -> str:
        return f"account grade {' or '.join(self.grades.upper())}" if self.grades else "none"

    def above(self, grade: pd.Series) -> np.ndarray:
        return grade.astype(str).isin(list(self.grades.upper())).to_numpy()


def account_crossing_id(account_id: str, below_since_us: int | None) -> str:
    key = f"account|{account_id}|crossed|{'first' if below_since_us is None else below_since_us}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def account_events(
    scores: pd.DataFrame,
    previous: pd.DataFrame | None,
    previous_as_of: pd.Timestamp | None,
    line: AccountLine,
    *,
    reasons: Mapping[str, Sequence[list[str]]],
) -> list[dict]:
    """The accounts that crossed the line since `previous` (the accounts scored at the
    previous run's as_of; None: no previous run, every account above the line crosses).
    `scores`: the run's account rows (`leadscore.scoring.score_row.ACCOUNT_COLUMNS`);
    `reasons`: each row's worded reasons as lists (`reasons_up`, `reasons_down`)."""
    frame = scores
    if not line.grades or frame.empty:
        return []
    above = line.above(frame["grade"])
    before = np.zeros(len(frame), dtype=bool)
    if previous is not None and len(previous):
        was = previous.set_index("account_id")["grade"].reindex(frame["account_id"])
        before = line.above(was.fillna(""))
    below_us = (
        to_us(previous_as_of) if previous is not None and previous_as_of is not None else None
    )
    events = []
    for i in np.flatnonzero(above & ~before):
        row = frame.iloc[i]
        review = bool(row["review"])
        events.append(
            {
                "event_id": account_crossing_id(str(row["account_id"]), below_us),
                "type": "account.review" if review else "account.handoff",
                "triggers": ["crossed_account_line"],
                "handoff_line": line.describe(),
                "account_id": str(row["account_id"]),
                "as_of": pd.Timestamp(row["as_of"]).isoformat(),
                "probability": float(row["probability"]),
                "score": int(row["score"]),
                "grade": str(row["grade"]),
                "p_low": float(row["p_low"]),
                "p_high": float(row["p_high"]),
                "review": review,
                "contacts": int(row["contacts"]),
                "active_contacts": int(row["active_contacts"]),
                "reasons_up": list(reasons["reasons_up"][i]),
                "reasons_down": list(reasons["reasons_down"][i]),
                "model": {"name": str(row["model_name"]), "version": str(row["model_version"])},
            }
        )
    return events
