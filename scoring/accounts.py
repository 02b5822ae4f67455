"""The account scorer at run time: the probability that an account produces a won deal
within the horizon, learned at account level (`leadscore.training.accounts`), with its interval,
grade and worded reasons; and a dataset's open accounts scored at an as_of
(`open_account_scores`: daily scoring's account rows, and training's most engaged accounts).

It travels inside the lead scorer's folder (`LeadScorer.accounts`), so the endpoint, batch
scoring and the MLflow model score accounts with what was trained. One path: account
features from the contacts' lead features (`leadscore.features.accounts.account_features`), whichever
engine computed those.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.features.accounts import (
    ACCOUNT_ID,
    CONTACTS,
    AccountSpec,
    account_features,
    account_frames,
    account_open_rows,
)
from leadscore.features.definitions import FeatureSpec
from leadscore.features.online import OnlineFeaturizer, lead_as_ofs, payload_time
from leadscore.scoring.grades import Grades
from leadscore.scoring.record import scores_of
from leadscore.stats.calibration import Calibrator
from leadscore.stats.venn_abers import VennAbers, contain

ACCOUNT_FOLDER = "accounts"
ACCOUNT_FILE = "account.json"
ACCOUNT_BOOSTER = "booster.txt"


@dataclass
class Contacts:
    """The contacts of a batch of accounts, as the lead engines give them: behaviour matrix,
    profile values per column, each contact's account row and lead id."""

    behaviour: np.ndarray
    categorical: Mapping[str, Sequence]
    numeric: Mapping[str, np.ndarray]
    row: np.ndarray
    lead_id: Sequence


@dataclass
class AccountRecord:
    """One entry per account: probability, grade, interval and review flag, contacts in
    play, worded reasons (lists of {feature, text, contribution} each way)."""

    account_id: np.ndarray
    probability: np.ndarray
    grade: np.ndarray
    p_low: np.ndarray
    p_high: np.ndarray
    review: np.ndarray
    contacts: np.ndarray
    reasons: list[dict[str, list[dict]]] | None = None

    def __len__(self) -> int:
        return len(self.account_id)

    @property
    def score(self) -> np.ndarray:
        return scores_of(self.probability)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        score = self.score.tolist()
        for i, account_id in enumerate(self.account_id.tolist()):
            item = {
                "account_id": account_id,
                "probability": float(self.probability[i]),
                "score": score[i],
                "grade": str(self.grade[i]),
                "p_low": float(self.p_low[i]),
                "p_high": float(self.p_high[i]),
                "review": bool(self.review[i]),
                "contacts": int(self.contacts[i]),
            }
            if self.reasons is not None:
                item["reasons"] = self.reasons[i]
            out.append(item)
        return out


def account_groups(spec: AccountSpec, features: list[str]) -> list[str]:
    """The reason group of each account feature: the buying group, activity, one per
    activity type, sales contact, open deals, roles, and each company column."""
    slugs = sorted(spec.lead.type_slugs, key=len, reverse=True)
    role = {spec.role_feature(v) for v in spec.role_levels} if spec.role_column else set()
    out = []
    for name in features:
        if name in (CONTACTS, "oldest_contact_days", "newest_contact_days"):
            out.append("buying_group")
        elif name.startswith(("active_contacts_", "n_activities_")) or name in (
            "days_since_last_activity", "engagement_decayed", "engagement_top_contact",
        ):  # fmt: skip
            out.append("activity")
        elif name == "contacted_contacts":
            out.append("sales_contact")
        elif name in role:
            out.append("roles")
        elif name.startswith(("contacts_", "n_")):
            body = name.removeprefix("contacts_").removeprefix("n_")
            out.append(next((s for s in slugs if body.startswith(s + "_")), name))
        else:
            out.append(name.removeprefix("mean_"))
    return out


def _plural(n: float, word: str) -> str:
    n = int(round(float(n)))
    if n == 1:
        return f"1 {word}"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return f"{n} {word[:-1]}ies"
    return f"{n} {word}s"


def _a(word: str) -> str:
    """'a director', 'an individual contributor': a role value as a person."""
    word = word.replace("_", " ")
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def describe_account(
    group: str, v: Mapping[str, Any], spec: AccountSpec, top_role: str | None
) -> str:
    """Words for one reason group of one account, from its feature values (`top_role`: the
    role of the contact who did most of the group's activity, when a role column is set)."""
    windows = spec.lead.windows_days
    if group == "buying_group":
        days = float(v["newest_contact_days"])
        ago = "today" if days < 1 else "1 day ago" if days < 2 else f"{days:.0f} days ago"
        return f"{_plural(v[CONTACTS], 'contact')} in play, the newest joined {ago}"
    if group == "activity":
        for w in windows:
            n = v.get(f"active_contacts_{w}d") or 0
            if n:
                active = "1 contact" if round(n) == 1 else f"{int(round(n))} contacts"
                return f"{active} active in the last {w} days"
        return f"no contact active in the last {windows[-1]} days"
    if group == "sales_contact":
        n = v.get("contacted_contacts") or 0
        return (
            f"{_plural(n, 'contact')} reached by sales" if n else "no contact reached by sales yet"
        )
    if group == "open_deals":
        n = v.get("open_deals") or 0
        return _plural(n, "open deal") if n else "no open deal"
    if group == "roles":
        active = [(v.get(spec.role_feature(level)) or 0, level) for level in spec.role_levels]
        named = [f"{int(n)} {level}" for n, level in sorted(active, reverse=True) if n][:3]
        window = spec.active_window
        if not named:
            return f"no {spec.role_column.replace('_', ' ')} active in the last {window} days"
        return f"active in the last {window} days: " + ", ".join(named)
    if group in spec.lead.type_slugs:
        label = group.replace("_", " ")
        for w in windows:
            n = v.get(f"contacts_{group}_{w}d") or 0
            if n:
                who = _a(top_role) if round(n) == 1 and top_role else _plural(n, "contact")
                text = f"{who} had {_plural(v.get(f'n_{group}_{w}d') or 0, label)} in the last {w} days"
                if round(n) > 1 and top_role:
                    text += f" (most: {_a(top_role)})"
                return text
        return f"no {label} in the last {windows[-1]} days"
    value = v.get(group, v.get(f"mean_{group}"))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{group.replace('_', ' ')} unknown"
    if isinstance(value, float):
        return f"{group.replace('_', ' ')} (average of the contacts): {value:g}"
    return f"{group.replace('_', ' ')}: {value}"


class AccountScorer:
    """A trained account model and what it needs to score accounts from their contacts."""

    def __init__(
        self,
        spec: AccountSpec,
        booster: lgb.Booster,
        features: list[str],
        categories: dict[str, list[str]],
        calibrator: Calibrator,
        interval: VennAbers,
        grades: Grades,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.booster = booster
        self.features = list(features)
        self.categories = {c: list(v) for c, v in categories.items()}
        self.calibrator = calibrator
        self.interval = interval
        self.grades = grades
        self.info = dict(info or {})
        self._codes = {
            c: {v: float(i) for i, v in enumerate(vals)} for c, vals in self.categories.items()
        }
        self._numeric = {name: j for j, name in enumerate(spec.numeric_names)}
        self._groups = account_groups(spec, self.features)
        self._group_names = list(dict.fromkeys(self._groups))
        self._group_matrix = np.zeros((len(self.features), len(self._group_names)))
        for j, group in enumerate(self._groups):
            self._group_matrix[j, self._group_names.index(group)] = 1.0
        # This evaluated model when it is the refit that ships (held-out rows are its).
        self.evaluated: AccountScorer | None = None

    # --- features -----------------------------------------------------------------

    def features_of(self, contacts: Contacts, n_rows: int) -> tuple[np.ndarray, dict]:
        """Account features (numeric matrix, company columns) of `n_rows` accounts."""
        return account_features(
            self.spec, contacts.behaviour, contacts.categorical, contacts.numeric,
            contacts.row, n_rows,
        )  # fmt: skip

    def encode(self, numeric: np.ndarray, company: Mapping[str, Sequence]) -> np.ndarray:
        """The model matrix (categoricals as fixed codes, unseen: NaN)."""
        x = np.empty((len(numeric), len(self.features)))
        for j, name in enumerate(self.features):
            codes = self._codes.get(name)
            if codes is not None:
                x[:, j] = [
                    codes.get(v, math.nan) if v is not None else math.nan for v in company[name]
                ]
            else:
                x[:, j] = numeric[:, self._numeric[name]]
        return x

    # --- prediction ---------------------------------------------------------------

    def predict_interval(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated probabilities and Venn-Abers intervals that contain them."""
        raw = self.booster.predict(x, raw_score=True, num_threads=1 if len(x) <= 64 else 0)
        p = self.calibrator(raw)
        return (p, *contain(p, *self.interval(raw)))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.predict_interval(x)[0]

    @property
    def review_width(self) -> float | None:
        width = self.info.get("interval_review_width")
        return None if width is None else float(width)

    def score(
        self,
        account_id: Sequence,
        contacts: Contacts,
        *,
        reasons: int = 3,
    ) -> AccountRecord:
        """Score accounts from their contacts (contact `row` i belongs to `account_id[i]`)."""
        ids = np.asarray(account_id, dtype=object)
        numeric, company = self.features_of(contacts, len(ids))
        x = self.encode(numeric, company)
        p, low, high = self.predict_interval(x)
        width = self.review_width
        review = high - low > width + 1e-12 if width is not None else np.zeros(len(p), bool)
        record = AccountRecord(
            ids, p, self.grades(p), low, high, review,
            numeric[:, self._numeric[CONTACTS]].astype(np.int64),
        )  # fmt: skip
        if reasons:
            record.reasons = self._reasons(x, numeric, company, contacts, reasons)
        return record

    def _reasons(self, x, numeric, company, contacts: Contacts, k: int) -> list[dict]:
        totals = self.booster.predict(x, pred_contrib=True)[:, :-1] @ self._group_matrix
        top_roles = self._top_roles(contacts, len(x))
        out = []
        for i in range(len(x)):
            values = {name: numeric[i, j] for name, j in self._numeric.items()}
            values.update({c: company[c][i] for c in company})
            order = np.argsort(totals[i], kind="stable")
            item = {}
            for side, picks in (("positive", order[::-1][:k]), ("negative", order[:k])):
                item[side] = [
                    {
                        "feature": self._group_names[g],
                        "text": describe_account(
                            self._group_names[g],
                            values,
                            self.spec,
                            top_roles.get((i, self._group_names[g])),
                        ),  # fmt: skip
                        "contribution": round(float(totals[i, g]), 4),
                    }
                    for g in picks
                    if (totals[i, g] > 0 if side == "positive" else totals[i, g] < 0)
                ]
            out.append(item)
        return out

    def _top_roles(self, contacts: Contacts, n: int) -> dict[tuple[int, str], str]:
        """(account row, activity type) -> the role of the contact with the most of it in
        the shortest window where the account has any (the window its reason words);
        nothing when a role column is not set or that contact's role is blank."""
        column = self.spec.role_column
        if column is None or not len(contacts.row):
            return {}
        roles = np.asarray(contacts.categorical[column], dtype=object)
        index = self.spec.lead.behaviour_index
        out: dict[tuple[int, str], str] = {}
        for s in self.spec.lead.type_slugs:
            done: set[int] = set()
            for w in self.spec.lead.windows_days:
                counts = contacts.behaviour[:, index[f"n_{s}_{w}d"]]
                order = np.lexsort((-counts, contacts.row))
                rows = contacts.row[order]
                first = np.r_[True, rows[1:] != rows[:-1]]
                for r, c in zip(rows[first].tolist(), order[first].tolist(), strict=True):
                    if r in done or counts[c] <= 0:
                        continue
                    done.add(r)
                    role = roles[c]
                    if role is not None and role == role:
                        out[(r, s)] = str(role)
        return out

    # --- persistence --------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / ACCOUNT_BOOSTER))
        meta = {
            "spec": self.spec.to_dict(),
            "features": self.features,
            "categories": self.categories,
            "calibrator": self.calibrator.__dict__,
            "interval": self.interval.to_dict(),
            "grades": self.grades.model_dump(),
            "info": self.info,
        }
        (folder / ACCOUNT_FILE).write_text(json.dumps(meta, indent=1, default=float))
        if self.evaluated is not None:
            self.evaluated.save(folder / "evaluated")
        return folder

    @classmethod
    def load(cls, folder: str | Path, lead_spec: FeatureSpec) -> AccountScorer:
        folder = Path(folder)
        try:
            meta = json.loads((folder / ACCOUNT_FILE).read_text())
            booster = lgb.Booster(model_file=str(folder / ACCOUNT_BOOSTER))
        except (OSError, ValueError, lgb.basic.LightGBMError) as exc:
            raise LeadscoreError(f"{folder}: not a saved account scorer ({exc})") from exc
        spec = AccountSpec(
            lead_spec, meta["spec"]["role_column"], tuple(meta["spec"]["role_levels"])
        )
        scorer = cls(
            spec, booster, meta["features"], meta["categories"], Calibrator(**meta["calibrator"]),
            VennAbers.from_dict(meta["interval"]), Grades.model_validate(meta["grades"]),
            meta.get("info"),
        )  # fmt: skip
        if (folder / "evaluated" / ACCOUNT_FILE).is_file():
            scorer.evaluated = cls.load(folder / "evaluated", lead_spec)
        return scorer

    @property
    def for_evaluation(self) -> AccountScorer:
        return self.evaluated if self.evaluated is not None else self


def _contacts(spec: AccountSpec, frame: pd.DataFrame, rows: np.ndarray, positions) -> Contacts:
    """The Contacts at `positions` of a members frame, their account rows renumbered as
    positions into `rows` (sorted)."""
    sub = frame.iloc[positions]
    return Contacts(
        behaviour=sub[spec.lead.behaviour_names].to_numpy(dtype=np.float64),
        categorical={
            c: sub[c].astype(object).where(sub[c].notna(), None).to_numpy()
            for c in spec.lead.categorical
        },
        numeric={c: sub[c].to_numpy(dtype=np.float64) for c in spec.lead.numeric_profile},
        row=np.searchsorted(rows, sub["row"].to_numpy()).astype(np.int64),
        lead_id=sub["lead_id"].astype(str).tolist(),
    )


def open_account_scores(
    dataset: Dataset,
    scorer: AccountScorer,
    as_of: pd.Timestamp,
    *,
    reasons: int = 3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The open accounts at as_of scored (account_id, as_of, probability, score, grade,
    p_low, p_high, review, contacts, active contacts, reasons) and their contacts' lead
    rows (for the lead-level columns a caller adds)."""
    rows = account_open_rows(dataset, as_of)
    frame, contacts = account_frames(dataset, scorer.spec, rows)
    record = scorer.score(
        frame[ACCOUNT_ID].astype(str).to_numpy(dtype=object),
        _contacts(scorer.spec, contacts, np.arange(len(frame)), np.arange(len(contacts))),
        reasons=reasons,
    )
    out = pd.DataFrame(record.rows())
    out.insert(1, "as_of", frame["as_of"].to_numpy())
    w = scorer.spec.lead.windows_days[0]
    out[f"active_contacts_{w}d"] = frame[f"active_contacts_{w}d"].to_numpy().astype(int)
    return out, contacts


def _closed(lead: Mapping[str, Any], as_of_us: int) -> bool:
    """A won or lost deal closed at or before as_of: the lead is out of play."""
    for deal in lead.get("deals") or ():
        closed = deal.get("closed_at")
        if (
            deal.get("status") in ("won", "lost")
            and closed
            and payload_time(closed, "closed_at") <= as_of_us
        ):
            return True
    return False


def score_account_payloads(
    accounts: AccountScorer | None,
    featurizer: OnlineFeaturizer,
    spec: FeatureSpec,
    account_id: str,
    leads: Sequence[Mapping[str, Any]],
    as_of: Any,
    *,
    reasons: int = 3,
    strict: bool = False,
) -> dict[str, Any]:
    """The account score of one account from its contacts' payloads at one `as_of`
    (`LeadScorer.score_account`, the endpoint's `POST /accounts/score`): contacts closed
    at as_of are not in play; a LeadscoreError without an account model (`accounts` None)
    or when no contact is open."""
    if accounts is None:
        raise LeadscoreError(
            "this model has no account model (trained without account_id on the leads)"
        )
    as_ofs = lead_as_ofs(leads, as_of)
    batch = featurizer.batch(leads, as_ofs, strict=strict)
    in_play = np.array(
        [not _closed(lead, int(t)) for lead, t in zip(leads, batch.as_of_us, strict=True)]
    ) if batch.as_of_us is not None else np.ones(len(leads), dtype=bool)  # fmt: skip
    if not in_play.any():
        raise LeadscoreError("no contact of the account is open at as_of (each has a closed deal)")
    keep = np.flatnonzero(in_play)
    contacts = Contacts(
        behaviour=batch.behaviour[keep],
        categorical={c: [batch.categorical[c][i] for i in keep] for c in spec.categorical},
        numeric={c: np.asarray(batch.numeric[c])[keep] for c in spec.numeric_profile},
        row=np.zeros(len(keep), dtype=np.int64),
        lead_id=[leads[i].get("lead_id") for i in keep],
    )
    return accounts.score([account_id], contacts, reasons=reasons).rows()[0]
