"""Accounts: the entity rows of buying groups and their features, one definition for the
batch engine and the endpoint.

An account example is a pair (account, `as_of`), on a calendar grid (every `every_days`),
made of the account's contacts (leads with its `account_id`) open at as_of: the buying
group in play. Its label is 1 when any contact of the account, including one who arrives
after as_of, has a won deal closed in `(as_of, as_of + horizon]` (the account produced a won
deal; `leadscore.features.labels` defines won-within for a lead). An as_of whose horizon runs past the
end of the data is censored, as lead snapshots are.

The account's features are aggregates of its contacts' lead features at as_of (each computed
by the lead engines, so only what was known at as_of is used): how many contacts, how many
active in each window, how many did each kind of thing and how often in all, the latest
activity, the company's profile (the contacts' most common value), and, with a role column,
how many contacts of each role are active. `account_features` is NumPy only: the batch
engine calls it on DuckDB's lead features, the endpoint on the payloads' online features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import days_us, to_us
from leadscore.features.definitions import FeatureSpec, slug
from leadscore.features.labels import Timeline, window_pairs

ACCOUNT_ID = "account_id"
CONTACTS = "contacts"


def account_codes(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Each lead's account as a code into the sorted account ids (-1: no account), and the
    ids. A LeadscoreError when the leads have no account_id column or no account."""
    if dataset.is_flat or ACCOUNT_ID not in dataset.leads:
        raise LeadscoreError(
            "accounts need leads with an account_id column and a history (activities and "
            "deals); see the data contract"
        )
    ids = dataset.leads[ACCOUNT_ID]
    present = ids.notna().to_numpy() & (ids.astype("str").str.len() > 0).to_numpy()
    names, codes = np.unique(ids[present].astype("str").to_numpy(dtype=object), return_inverse=True)
    out = np.full(len(ids), -1, dtype=np.int64)
    out[present] = codes
    if not len(names):
        raise LeadscoreError("accounts: no lead has an account_id")
    return out, names


@dataclass(frozen=True)
class AccountRows:
    """Account entity rows and their members.

    `rows`: account (code), as_of_us, and label when labelled. `members`: one entity row per
    (open contact, account row) for the lead engines (lead, created_us, as_of_us), with
    `row`, the account row it belongs to.
    """

    rows: pd.DataFrame
    members: pd.DataFrame


def _members_at(
    timeline: Timeline, account: np.ndarray, as_ofs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(account code, as_of index, lead) of every contact open at each as_of: one as_of at
    a time, so memory follows the open contacts, not every lead times every as_of."""
    leads = np.flatnonzero(account >= 0)
    parts_acc, parts_which, parts_lead = [], [], []
    for k, when in enumerate(as_ofs.tolist()):
        open_ = leads[timeline.is_open(leads, np.full(len(leads), when, dtype=np.int64))]
        parts_acc.append(account[open_])
        parts_which.append(np.full(len(open_), k, dtype=np.int64))
        parts_lead.append(open_)
    if not parts_lead:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(parts_acc), np.concatenate(parts_which), np.concatenate(parts_lead)


def _rows(
    timeline: Timeline, account: np.ndarray, as_ofs: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    acc, which, lead = _members_at(timeline, account, as_ofs)
    key = which.astype(np.int64) * (int(account.max()) + 1) + acc
    unique, row = np.unique(key, return_inverse=True)
    n_acc = int(account.max()) + 1
    rows = pd.DataFrame(
        {"account": (unique % n_acc).astype(np.int64), "as_of_us": as_ofs[unique // n_acc]}
    )
    order = np.lexsort((lead, row))
    members = pd.DataFrame(
        {
            "lead": lead[order].astype(np.int32),
            "created_us": timeline.created_us[lead[order]],
            "as_of_us": rows["as_of_us"].to_numpy()[row[order]],
            "row": row[order].astype(np.int64),
        }
    )
    return rows, members


def account_won_within(
    timeline: Timeline, account: np.ndarray, rows: pd.DataFrame, horizon_us: int
) -> np.ndarray:
    """1 where any contact of the row's account has a won deal closed in (as_of, as_of +
    horizon] (int8): a contact created after as_of counts too."""
    won = np.flatnonzero(timeline.deal_won)
    deal_account = account[timeline.deal_lead[won]]
    keep = deal_account >= 0
    lo = rows["as_of_us"].to_numpy(dtype=np.int64)
    q, _ = window_pairs(
        rows["account"].to_numpy(), lo, lo + horizon_us, deal_account[keep],
        timeline.deal_closed_us[won][keep],
    )  # fmt: skip
    out = np.zeros(len(rows), dtype=np.int8)
    out[q] = 1
    return out


def account_snapshot_rows(
    dataset: Dataset,
    *,
    every_days: float,
    horizon_days: float,
    data_end: pd.Timestamp | None = None,
) -> tuple[AccountRows, dict]:
    """Labelled account snapshots on a calendar grid and their members, with counts:
    as_ofs, censored (grid dates whose horizon runs past the data's end), snapshots,
    positives, accounts."""
    account, _ = account_codes(dataset)
    timeline = Timeline.of_dataset(dataset)
    end_us = to_us(data_end if data_end is not None else dataset.data_end)
    horizon_us, step_us = days_us(horizon_days), days_us(every_days)
    first = int(timeline.created_us[account >= 0].min())
    grid = np.arange(first + step_us, end_us + 1, step_us, dtype=np.int64)
    matured = grid[grid + horizon_us <= end_us]
    rows, members = _rows(timeline, account, matured)
    rows["label"] = account_won_within(timeline, account, rows, horizon_us)
    stats = {
        "as_ofs": int(len(matured)),
        "censored_as_ofs": int(len(grid) - len(matured)),
        "snapshots": int(len(rows)),
        "positives": int(rows["label"].sum()),
        "accounts": int(rows["account"].nunique()),
        "contacts_per_snapshot": round(len(members) / max(len(rows), 1), 2),
    }
    return AccountRows(rows, members), stats


def account_open_rows(dataset: Dataset, as_of: pd.Timestamp) -> AccountRows:
    """The open accounts at `as_of` (at least one open contact) and their open contacts."""
    account, _ = account_codes(dataset)
    rows, members = _rows(
        Timeline.of_dataset(dataset), account, np.array([to_us(as_of)], dtype=np.int64)
    )
    return AccountRows(rows, members)


# --- the account features: one NumPy definition for both engines -------------------------


@dataclass(frozen=True)
class AccountSpec:
    """The account feature set, fixed at training: the lead spec's windows and activity
    types, the company columns (text profile columns: their most common value among the
    contacts), the numeric ones (their mean), and the role column with its levels."""

    lead: FeatureSpec
    role_column: str | None = None
    role_levels: tuple[str, ...] = ()

    @property
    def company_columns(self) -> list[str]:
        return [c for c in self.lead.categorical if c != self.role_column]

    @property
    def active_window(self) -> int:
        """The window that makes a contact "active" in the role counts (the middle one)."""
        windows = self.lead.windows_days
        return windows[len(windows) // 2]

    @property
    def numeric_names(self) -> list[str]:
        spec = self.lead
        names = [CONTACTS, "oldest_contact_days", "newest_contact_days"]
        names += [f"active_contacts_{w}d" for w in spec.windows_days]
        names += [f"n_activities_{w}d" for w in spec.windows_days]
        names += ["days_since_last_activity", "engagement_decayed", "engagement_top_contact"]
        names += ["contacted_contacts", "open_deals"]
        for s in spec.type_slugs:
            for w in spec.windows_days:
                names += [f"contacts_{s}_{w}d", f"n_{s}_{w}d"]
        names += [f"mean_{c}" for c in spec.numeric_profile]
        if self.role_column is not None:
            names += [self.role_feature(v) for v in self.role_levels]
        return names

    @property
    def categorical_names(self) -> list[str]:
        return list(self.company_columns)

    @property
    def names(self) -> list[str]:
        return [*self.categorical_names, *self.numeric_names]

    def role_feature(self, level: str) -> str:
        return f"active_{slug(self.role_column)}_{slug(level)}"

    def unsupported(self) -> set[str]:
        """Account features made of lead features the data cannot support."""
        bad = set(self.lead.unsupported_features)
        out = set()
        if {"n_activities_total", "days_since_last_activity"} & bad:
            out |= {f"active_contacts_{w}d" for w in self.lead.windows_days}
            out |= {f"n_activities_{w}d" for w in self.lead.windows_days}
            out |= {"days_since_last_activity", "engagement_decayed", "engagement_top_contact"}
            out |= {self.role_feature(v) for v in self.role_levels}
        if "contacted" in bad:
            out.add("contacted_contacts")
        return out

    def to_dict(self) -> dict:
        return {"role_column": self.role_column, "role_levels": list(self.role_levels)}


def account_features(
    spec: AccountSpec,
    behaviour: np.ndarray,
    categorical: Mapping[str, Sequence],
    numeric: Mapping[str, np.ndarray],
    row: np.ndarray,
    n_rows: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The account features of `n_rows` accounts from their contacts' lead features.

    Args:
        behaviour: the contacts' behaviour matrix (m, len(spec.lead.behaviour_names)).
        categorical, numeric: the contacts' profile values per column (None or NaN: blank).
        row: each contact's account row (0..n_rows-1).

    Returns:
        (numeric matrix (n_rows, len(spec.numeric_names)), company columns -> each row's
        most common value among its contacts, None when all are blank).
    """
    lead = spec.lead
    col = lead.behaviour_index
    row = np.asarray(row, dtype=np.int64)
    b = np.asarray(behaviour, dtype=np.float64)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(row, weights=values, minlength=n_rows)

    def extreme(values: np.ndarray, ufunc, empty: float) -> np.ndarray:
        out = np.full(n_rows, empty)
        ufunc.at(out, row, values)
        return out

    contacts = np.bincount(row, minlength=n_rows).astype(np.float64)
    values: dict[str, np.ndarray] = {CONTACTS: contacts}
    age = b[:, col["lead_age_days"]]
    values["oldest_contact_days"] = extreme(age, np.maximum, -np.inf)
    values["newest_contact_days"] = extreme(age, np.minimum, np.inf)
    for w in lead.windows_days:
        n = b[:, col[f"n_activities_{w}d"]]
        values[f"active_contacts_{w}d"] = total((n > 0).astype(np.float64))
        values[f"n_activities_{w}d"] = total(n)
    values["days_since_last_activity"] = extreme(
        np.nan_to_num(b[:, col["days_since_last_activity"]], nan=np.inf), np.minimum, np.inf
    )
    decayed = b[:, col["engagement_decayed"]]
    values["engagement_decayed"] = total(decayed)
    values["engagement_top_contact"] = extreme(decayed, np.maximum, -np.inf)
    values["contacted_contacts"] = total(b[:, col["contacted"]])
    values["open_deals"] = total(b[:, col["open_deals"]])
    for s in lead.type_slugs:
        for w in lead.windows_days:
            n = b[:, col[f"n_{s}_{w}d"]]
            values[f"contacts_{s}_{w}d"] = total((n > 0).astype(np.float64))
            values[f"n_{s}_{w}d"] = total(n)
    for c in lead.numeric_profile:
        v = np.asarray(numeric[c], dtype=np.float64)
        seen = ~np.isnan(v)
        count = np.bincount(row[seen], minlength=n_rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[f"mean_{c}"] = np.bincount(row[seen], v[seen], n_rows) / count
    if spec.role_column is not None:
        roles = np.asarray(categorical[spec.role_column], dtype=object)
        active = b[:, col[f"n_activities_{spec.active_window}d"]] > 0
        for level in spec.role_levels:
            values[spec.role_feature(level)] = total(((roles == level) & active).astype(float))
    x = np.empty((n_rows, len(spec.numeric_names)))
    for j, name in enumerate(spec.numeric_names):
        v = values[name]
        x[:, j] = np.where(np.isinf(v), np.nan, v)  # an account without contacts: blank
    company = {c: _most_common(categorical[c], row, n_rows) for c in spec.company_columns}
    return x, company


def _most_common(values: Sequence, row: np.ndarray, n_rows: int) -> np.ndarray:
    """Each row's most common non-blank value (ties: the first in sorted order)."""
    out = np.full(n_rows, None, dtype=object)
    v = np.asarray(values, dtype=object)
    seen = np.array([x is not None and x == x for x in v], dtype=bool)
    if not seen.any():
        return out
    levels, code = np.unique(v[seen].astype(str), return_inverse=True)
    pair, count = np.unique(row[seen] * len(levels) + code, return_counts=True)
    r, c = pair // len(levels), pair % len(levels)
    order = np.lexsort((c, -count, r))  # per row: the most contacts, then the first level
    r, c = r[order], c[order]
    first = np.r_[True, r[1:] != r[:-1]]
    out[r[first]] = levels[c[first]]
    return out


def role_levels(dataset: Dataset, column: str | None) -> tuple[str, ...]:
    """The role column's values among contacts of an account, most frequent first (at most
    12: rarer roles are not counted)."""
    if column is None:
        return ()
    if column not in dataset.leads or column not in dataset.profile_columns:
        raise LeadscoreError(
            f"accounts.role_column {column!r}: not a profile column of the leads "
            f"(columns: {', '.join(dataset.profile_columns)})"
        )
    values = dataset.leads.loc[dataset.leads[ACCOUNT_ID].notna(), column].dropna()
    return tuple(str(v) for v in values.astype(str).value_counts().index[:12])


def account_frames(
    dataset: Dataset, spec: AccountSpec, rows: AccountRows
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The account rows with their features (account_id, as_of, label when labelled, then
    `spec.names`), and their members' lead rows as the batch engine builds them (lead_id,
    as_of, row, profile and behaviour features: what the lead model and the rules read)."""
    from leadscore.features.batch import behaviour_matrix, lead_frame

    _, names = account_codes(dataset)
    members = rows.members
    matrix = behaviour_matrix(dataset, spec.lead, members)
    contacts = lead_frame(dataset, spec.lead, members, matrix, {"row": members["row"].to_numpy()})
    categorical = {
        c: contacts[c].astype(object).where(contacts[c].notna(), None).to_numpy()
        for c in spec.lead.categorical
    }
    numeric = {c: contacts[c].to_numpy(dtype=np.float64) for c in spec.lead.numeric_profile}
    x, company = account_features(
        spec, matrix, categorical, numeric, members["row"].to_numpy(), len(rows.rows)
    )
    front = {
        ACCOUNT_ID: pd.array(names[rows.rows["account"].to_numpy()], dtype="str"),
        "as_of": pd.to_datetime(rows.rows["as_of_us"].to_numpy(), unit="us", utc=True),
    }
    if "label" in rows.rows:
        front["label"] = rows.rows["label"].to_numpy()
    df = pd.DataFrame(x, columns=spec.numeric_names)
    for position, (name, values) in enumerate(
        [*front.items(), *((c, pd.Categorical(company[c])) for c in spec.company_columns)]
    ):
        df.insert(position, name, values)
    return df, contacts
