"""Account rows of a scoring run, and their hand-offs against the previous run's.

`leadscore score` writes, next to its lead rows, one row per open account (an account with
at least one open contact at as_of) scored by the account model the lead scorer carries:
the same scorer the endpoint's `POST /accounts/score` runs. The account hand-off line, its
crossings and their ids are hand-off's (`leadscore.handoff.accounts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.times import utc
from leadscore.handoff.accounts import AccountLine, account_events
from leadscore.scoring.accounts import open_account_scores
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.score_row import ACCOUNT_COLUMNS
from leadscore.scoring.scorer import LeadScorer


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
        now.frame,
        previous,
        previous_as_of if previous is not None else None,
        line,
        reasons=now.reasons,
    )
