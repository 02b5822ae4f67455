"""Entity rows and outcomes: the one producer of (lead, as_of) rows for every purpose, and the
one definition of "open at as_of" and "won within the horizon".

Every consumer goes through here (Feast's entity rows): the training snapshots
(`snapshot_rows`, censored at any `data_end`), the open pipeline that `score` and `monitor`
rescore (`scoring_rows`, `open_rows`), the matured rows that monitoring sets against their
outcomes (`open_rows` one horizon back, then `won_within`), and the report's per-row revenue
and opportunities (`Timeline.deals_within`).

- **Open at as_of**: created at or before `as_of`, and no won or lost deal closed at or
  before it (an open deal does not close a lead).
- **A flat export** (one row per lead, an outcome column) has no open pipeline: each row is
  decided (`scoring_rows` refuses it).
- **Won within**: a won deal with `closed_at` in `(as_of, as_of + horizon]`.
- A snapshot is taken at each configured lead age (`as_of = created_at + age`) while the lead
  is open, and only when its horizon is observed (`as_of + horizon <= data_end`); otherwise it
  is censored (dropped, never counted as a negative). This also keeps only ages the lead has
  reached by the end of the data.

Times are `leadscore.crm.times` microseconds; leads are row positions in the dataset's leads table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.lead_index import lead_positions
from leadscore.crm.times import NEVER, days_us, timestamps_us, to_us
from leadscore.features.config import AGE_STEP


@dataclass(frozen=True)
class Timeline:
    """What the outcome rules read of a dataset: each lead's creation, and its deals."""

    created_us: np.ndarray  # per lead (int64)
    first_closed_us: np.ndarray  # per lead: its first won or lost close, NEVER when none
    deal_lead: np.ndarray  # per deal: the lead's position
    deal_created_us: np.ndarray
    deal_closed_us: np.ndarray  # NEVER while open
    deal_won: np.ndarray  # bool
    deal_amount: np.ndarray  # float64, NaN when unknown

    @classmethod
    def of(cls, leads: pd.DataFrame, deals: pd.DataFrame) -> Timeline:
        """From a leads table (lead_id, created_at) and a deals table (lead_id, created_at,
        closed_at, status, optional amount)."""
        lead = lead_positions(deals["lead_id"], leads["lead_id"])
        status = deals["status"].astype("str").to_numpy()
        closed_us = timestamps_us(deals["closed_at"])
        closes = np.isin(status, ["won", "lost"])
        first = np.full(len(leads), NEVER, dtype=np.int64)
        np.minimum.at(first, lead[closes], closed_us[closes])
        created_deals = (
            timestamps_us(deals["created_at"])
            if "created_at" in deals
            else np.full(len(deals), NEVER, dtype=np.int64)
        )
        amount = (
            deals["amount"].to_numpy(dtype=np.float64, na_value=np.nan)
            if "amount" in deals
            else np.full(len(deals), np.nan)
        )
        return cls(
            created_us=timestamps_us(leads["created_at"]),
            first_closed_us=first,
            deal_lead=lead,
            deal_created_us=created_deals,
            deal_closed_us=closed_us,
            deal_won=status == "won",
            deal_amount=amount,
        )

    @classmethod
    def of_dataset(cls, dataset: Dataset) -> Timeline:
        return cls.of(dataset.leads, dataset.deals)

    def is_open(self, lead: np.ndarray, as_of_us: np.ndarray) -> np.ndarray:
        """Open at as_of: created at or before it, not closed (won or lost) at or before it."""
        return (self.created_us[lead] <= as_of_us) & (self.first_closed_us[lead] > as_of_us)

    def deals_within(
        self,
        lead: np.ndarray,
        as_of_us: np.ndarray,
        horizon_us: int,
        *,
        when: str = "closed",
        won: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (row, deal) of the rows' deals whose `when` time ("closed" or "created")
        falls in (as_of, as_of + horizon]; with `won`, won deals only."""
        keep = self.deal_won if won else np.ones(len(self.deal_lead), dtype=bool)
        times = self.deal_closed_us if when == "closed" else self.deal_created_us
        deals = np.flatnonzero(keep & (times != NEVER))
        lo = np.asarray(as_of_us, dtype=np.int64)
        q, d = window_pairs(
            np.asarray(lead), lo, lo + horizon_us, self.deal_lead[deals], times[deals]
        )
        return q, deals[d]

    def won_within(self, lead: np.ndarray, as_of_us: np.ndarray, horizon_us: int) -> np.ndarray:
        """1 where the row's lead has a won deal closed in (as_of, as_of + horizon] (int8)."""
        rows, _ = self.deals_within(lead, as_of_us, horizon_us, won=True)
        out = np.zeros(len(lead), dtype=np.int8)
        out[rows] = 1
        return out


def window_pairs(
    q_lead: np.ndarray, lo: np.ndarray, hi: np.ndarray, d_lead: np.ndarray, d_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (query, item) with the same lead and `lo < t <= hi`, in NumPy.

    Items are sorted once by (lead, rank of t) into one int64 key; each query's bounds map to
    the same key space (the number of distinct item times at or below them), so one
    searchsorted per bound finds its run of items.
    """
    empty = np.zeros(0, dtype=np.int64)
    if not len(q_lead) or not len(d_lead):
        return empty, empty
    values = np.unique(d_t)
    r = np.int64(len(values))
    key = d_lead.astype(np.int64) * r + np.searchsorted(values, d_t, side="left")
    order = np.argsort(key, kind="stable")
    key = key[order]
    base = q_lead.astype(np.int64) * r
    start = np.searchsorted(key, base + np.searchsorted(values, lo, side="right"), side="left")
    stop = np.searchsorted(key, base + np.searchsorted(values, hi, side="right"), side="left")
    counts = np.maximum(stop - start, 0)
    total = int(counts.sum())
    q = np.repeat(np.arange(len(q_lead), dtype=np.int64), counts)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return q, order[np.repeat(start, counts) + offset]


def snapshot_rows(
    timeline: Timeline,
    *,
    ages_days: list[float],
    horizon_days: float,
    data_end: pd.Timestamp,
    spread_from_days: float | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labelled training snapshots and what was dropped. From `spread_from_days` on, an age
    starts a band up to the next age (the last: AGE_STEP times its start), and each lead's
    snapshot falls at an age of its own within it (`_spread_us`).

    Returns a frame with `lead` (row position in the leads), `created_us`, `as_of_us` and
    `label`, ordered by as_of then lead, and counts: candidates (ages reached by the data's
    end), dropped_closed, dropped_censored, snapshots, positives.
    """
    end_us = to_us(data_end)
    horizon_us = days_us(horizon_days)
    ages_us = np.array([days_us(a) for a in ages_days], dtype=np.int64)
    n = len(timeline.created_us)
    lead = np.tile(np.arange(n, dtype=np.int64), len(ages_us))
    as_of = np.repeat(ages_us, n) + timeline.created_us[lead]
    if spread_from_days is not None:
        as_of += _spread_us(timeline.created_us, ages_days, spread_from_days)
    reached = as_of <= end_us
    lead, as_of = lead[reached], as_of[reached]
    open_ = timeline.is_open(lead, as_of)
    censored = as_of + horizon_us > end_us
    stats = {
        "candidates": int(len(lead)),
        "dropped_closed": int((~open_).sum()),
        "dropped_censored": int((censored & open_).sum()),
    }
    keep = open_ & ~censored
    lead, as_of = lead[keep], as_of[keep]
    order = np.lexsort((lead, as_of))
    lead, as_of = lead[order], as_of[order]
    snaps = pd.DataFrame(
        {
            "lead": lead.astype(np.int32),
            "created_us": timeline.created_us[lead],
            "as_of_us": as_of,
            "label": timeline.won_within(lead, as_of, horizon_us),
        }
    )
    stats["snapshots"] = int(len(snaps))
    stats["positives"] = int(snaps["label"].sum())
    return snaps, stats


LIFE_TABLE_STEP = 30.0  # days between the life table's snapshots within a band of ages


def life_table_counts(
    timeline: Timeline,
    *,
    ages_days: list[float],
    spread_from_days: float,
    horizon_days: float,
    data_end: pd.Timestamp,
) -> dict[str, list]:
    """The life table of the bands of ages (from `spread_from_days` on): every lead open at
    every LIFE_TABLE_STEP days of age within each band, matured, counted by band and by
    as_of day, as plain lists (`band`: the band's starting age; `as_of_day`: days since the
    epoch; `rows`, `wins`: a training set written to Parquet keeps them). The training set holds one snapshot per lead and band, too few wins at old ages
    for a rate; this holds every age the history matured, without features. Counted by day,
    so that a model trained before a cut-off counts only what had matured by then."""
    ages = np.asarray(sorted(ages_days), dtype=np.float64)
    ends = np.append(ages[1:], ages[-1] * AGE_STEP)
    parts = []
    for start, end in zip(ages, ends, strict=True):
        if start < spread_from_days - 1e-9:
            continue
        for age in np.arange(start, end, LIFE_TABLE_STEP):  # one age at a time: bounded memory
            snaps, _ = snapshot_rows(
                timeline, ages_days=[float(age)], horizon_days=horizon_days, data_end=data_end
            )
            if len(snaps):
                parts.append(
                    pd.DataFrame(
                        {
                            "band": start,
                            "as_of_day": snaps["as_of_us"].to_numpy() // days_us(1),
                            "wins": snaps["label"].to_numpy(dtype=np.int64),
                        }
                    )
                )
    if not parts:
        return {"band": [], "as_of_day": [], "rows": [], "wins": []}
    every = pd.concat(parts, ignore_index=True)
    counted = (
        every.groupby(["band", "as_of_day"], sort=True)["wins"]
        .agg(rows="size", wins="sum")
        .reset_index()
    )
    return {
        "band": counted["band"].astype(float).tolist(),
        **{c: counted[c].astype(int).tolist() for c in ("as_of_day", "rows", "wins")},
    }


def _spread_us(created_us: np.ndarray, ages_days: list[float], spread_from: float) -> np.ndarray:
    """Per (age, lead) in `snapshot_rows`' order, how far into its band the lead's snapshot
    falls: 0 for an exact age; within a band, a uniform fraction of its width drawn from
    the lead's creation time and the band (a hash: the same rows whatever the order of the
    leads, and the same every run). A band of ages spreads one snapshot per lead over every
    age the history matured, where one exact age would leave the ages between unseen."""
    ages = np.asarray(sorted(ages_days), dtype=np.float64)
    ends = np.append(ages[1:], ages[-1] * AGE_STEP)
    n = len(created_us)
    out = np.zeros(len(ages) * n, dtype=np.int64)
    for k, (start, end) in enumerate(zip(ages, ends, strict=True)):
        if start < spread_from - 1e-9:
            continue
        fraction = _unit_hash(
            created_us.astype(np.uint64) ^ np.uint64(0x9E3779B97F4A7C15 * (k + 1) % 2**64)
        )
        out[k * n : (k + 1) * n] = (fraction * days_us(end - start)).astype(np.int64)
    return out


def _unit_hash(x: np.ndarray) -> np.ndarray:
    """splitmix64 of each value, as a fraction in [0, 1)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def open_rows(timeline: Timeline, as_of: pd.Timestamp) -> pd.DataFrame:
    """The open pipeline at `as_of`: one row per open lead (`lead`, `created_us`,
    `as_of_us`), in lead order."""
    when_us = to_us(as_of)
    every = np.arange(len(timeline.created_us), dtype=np.int64)
    lead = every[timeline.is_open(every, np.full(len(every), when_us, dtype=np.int64))]
    return pd.DataFrame(
        {
            "lead": lead.astype(np.int32),
            "created_us": timeline.created_us[lead],
            "as_of_us": np.full(len(lead), when_us, dtype=np.int64),
        }
    )


FLAT_HAS_NO_PIPELINE = (
    "a flat export (one row per lead with its outcome column) has no open pipeline: every "
    "row is a decided lead, and a lead not won is a lead that said no, not one still open. "
    "Score new leads through the endpoint (POST /score), or import an export with dates and "
    "deals to score its open pipeline"
)


def scoring_rows(dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rows `score` and `monitor` rescore at `as_of` (`lead`, `created_us`, `as_of_us`):
    the open pipeline. A flat export has none (`FLAT_HAS_NO_PIPELINE`)."""
    if dataset.is_flat:
        raise LeadscoreError(FLAT_HAS_NO_PIPELINE)
    return open_rows(Timeline.of_dataset(dataset), as_of)


def won_within(
    dataset: Dataset, lead_ids: pd.Series, as_of: pd.Series | pd.Timestamp, horizon_days: float
) -> np.ndarray:
    """The label of rows given by lead id and as_of (one time, or one per row): 1 where the
    lead won within the horizon after as_of (int8)."""
    lead = lead_positions(pd.Series(lead_ids).astype("str"), dataset.leads["lead_id"])
    if (lead < 0).any():
        raise LeadscoreError(f"{int((lead < 0).sum())} rows name leads that are not in the dataset")
    if isinstance(as_of, pd.Series):
        as_of_us = timestamps_us(pd.to_datetime(as_of.reset_index(drop=True), utc=True))
    else:
        as_of_us = np.full(len(lead), to_us(as_of), dtype=np.int64)
    return Timeline.of_dataset(dataset).won_within(lead, as_of_us, days_us(horizon_days))
