"""Account rows of a scoring run and the account hand-off line.

`leadscore score` writes, next to its lead rows, one row per open account (an account with
at least one open contact at as_of) scored by the account model the lead scorer carries:
the same scorer the endpoint's `POST /accounts/score` runs.

An account crosses the account hand-off line when its grade is one of the line's grades at
this run's as_of and was not at the previous run's as_of. What the previous run saw is
recomputed, not stored: the account is scored again at the previous run's as_of with only
what was known then (features are point in time). A crossing's event id is derived from the
account and the as_of it was last seen below the line (or "first"), so a re-run of the same
as_of, or a crossing staged in the outbox twice, is one event. A crossing whose interval is
wider than the model's review width is `account.review` instead of `account.handoff`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.loading import Dataset
from leadscore.crm.times import to_us, utc
from leadscore.scoring.accounts import open_account_scores
from leadscore.scoring.grades import GRADES
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.score_row import ACCOUNT_COLUMNS
from leadscore.scoring.scorer import LeadScorer


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


@dataclass
class AccountScores:
    frame: pd.DataFrame  # ACCOUNT_COLUMNS
    reasons: dict[str, list[list[str]]]  # reasons_up, reasons_down as lists per row


def has_accounts(dataset: Dataset, scorer: LeadScorer) -> bool:
    """Whether a run scores accounts: the model has an account model and the data names
    each lead's account."""
    return scorer.accounts is not None and not dataset.is_flat and "account_id" in dataset.leads


def score_accounts(
    dataset: Dataset,
    scorer: LeadScorer,
    model: ModelRef,
    as_of: pd.Timestamp,
    *,
    reasons: bool = True,
) -> AccountScores:
    """Every account open at as_of scored by the model's account scorer (ACCOUNT_COLUMNS)."""
    when = utc(as_of)
    scored, _ = open_account_scores(dataset, scorer.accounts, when, reasons=3 if reasons else 0)
    if scored.empty:
        return AccountScores(
            pd.DataFrame(columns=ACCOUNT_COLUMNS), {"reasons_up": [], "reasons_down": []}
        )
    active = next(c for c in scored.columns if c.startswith("active_contacts_"))
    worded = {"reasons_up": [], "reasons_down": []}
    for item in scored.pop("reasons") if "reasons" in scored else [None] * len(scored):
        worded["reasons_up"].append([r["text"] for r in item["positive"]] if item else [])
        worded["reasons_down"].append([r["text"] for r in item["negative"]] if item else [])
    frame = scored.rename(columns={active: "active_contacts"})
    frame["reasons_up"] = ["; ".join(r) for r in worded["reasons_up"]]
    frame["reasons_down"] = ["; ".join(r) for r in worded["reasons_down"]]
    frame["model_name"], frame["model_version"] = model.name, str(model.version)
    return AccountScores(frame[ACCOUNT_COLUMNS].reset_index(drop=True), worded)


def account_scores_path(out: Path) -> Path:
    """Where the account rows go, next to the lead scores file: `<out>.accounts.<suffix>`,
    or `<out>_accounts/` for a partitioned folder."""
    out = Path(out)
    if out.suffix:
        return out.with_name(out.stem + ".accounts" + out.suffix)
    return out.with_name(out.name + "_accounts")


def account_crossing_id(account_id: str, below_since_us: int | None) -> str:
    key = f"account|{account_id}|crossed|{'first' if below_since_us is None else below_since_us}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def account_events(
    now: AccountScores,
    previous: pd.DataFrame | None,
    previous_as_of: pd.Timestamp | None,
    line: AccountLine,
) -> list[dict]:
    """The accounts that crossed the line since `previous` (the accounts scored at the
    previous run's as_of; None: no previous run, every account above the line crosses)."""
    frame = now.frame
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
                "reasons_up": list(now.reasons["reasons_up"][i]),
                "reasons_down": list(now.reasons["reasons_down"][i]),
                "model": {"name": str(row["model_name"]), "version": str(row["model_version"])},
            }
        )
    return events


def account_run(
    dataset: Dataset,
    scorer: LeadScorer,
    model: ModelRef,
    as_of: pd.Timestamp,
    previous_as_of: pd.Timestamp | None,
    line: AccountLine,
    *,
    reasons: bool = True,
) -> tuple[AccountScores, list[dict]]:
    """The run's account rows and account hand-off events (`previous_as_of`: the as_of of
    the previous scoring run, None when there was none)."""
    now = score_accounts(dataset, scorer, model, as_of, reasons=reasons)
    previous = None
    if line.grades and previous_as_of is not None and utc(previous_as_of) < utc(as_of):
        previous = score_accounts(dataset, scorer, model, previous_as_of, reasons=False).frame
    return now, account_events(
        now, previous, previous_as_of if previous is not None else None, line
    )
