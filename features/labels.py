"""Snapshots and labels: which (lead, as_of) pairs become examples, and their outcome.

- A snapshot is taken at each configured lead age: `as_of = created_at + age`.
- Only while the lead is open: no won or lost deal closed at or before `as_of`.
- Only when its horizon is observed: `as_of + horizon <= data_end`; otherwise it is
  censored (dropped, never counted as a negative). This also keeps only ages the lead has
  reached by the end of the data.
- `label = 1` iff the lead has a won deal with `closed_at` in `(as_of, as_of + horizon]`.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from crm.loading import lead_positions, timestamps_us
from features.definitions import US_PER_DAY


def build_snapshots(
    leads: pd.DataFrame,
    deals: pd.DataFrame,
    *,
    ages_days: list[float],
    horizon_days: float,
    data_end: pd.Timestamp,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labelled snapshots and what was dropped.

    Returns a frame with `lead` (row position in `leads`), `created_us`, `as_of_us`
    (µs since the epoch) and `label`, ordered by as_of then lead.

    Args:
        leads: lead_id, created_at.
        deals: lead_id, closed_at, status.
        data_end: the end of observation; horizons running past it are censored.
    """
    con = con or duckdb.connect()
    horizon_us = int(round(horizon_days * US_PER_DAY))
    end_us = int(timestamps_us(pd.Series([data_end]))[0])
    created = timestamps_us(leads["created_at"]).astype("int64")
    con.register(
        "snap_leads",
        pa.table({"lead": np.arange(len(leads), dtype=np.int32), "created_us": created}),
    )
    closed = deals["status"].isin(["won", "lost"]).to_numpy()
    con.register(
        "snap_deals",
        pa.table(
            {
                "lead": lead_positions(deals["lead_id"], leads["lead_id"])[closed],
                "closed_us": timestamps_us(deals["closed_at"])[closed].astype("int64"),
                "won": deals["status"].to_numpy()[closed] == "won",
            }
        ),
    )
    ages_us = np.round(np.asarray(ages_days) * US_PER_DAY).astype("int64")
    con.register("snap_ages", pa.table({"age_us": ages_us}))
    rows = con.execute(
        f"""
        WITH first_closed AS (
            SELECT lead, min(closed_us) AS closed_us FROM snap_deals GROUP BY lead
        ),
        candidates AS (
            SELECT l.lead, l.created_us, l.created_us + a.age_us AS as_of_us, f.closed_us
            FROM snap_leads l CROSS JOIN snap_ages a LEFT JOIN first_closed f USING (lead)
            WHERE l.created_us + a.age_us <= {end_us}
        )
        SELECT c.lead, c.created_us, c.as_of_us,
               (c.as_of_us + {horizon_us} > {end_us}) AS censored,
               (c.closed_us IS NOT NULL AND c.closed_us <= c.as_of_us) AS closed,
               EXISTS (
                   SELECT 1 FROM snap_deals w
                   WHERE w.lead = c.lead AND w.won
                     AND w.closed_us > c.as_of_us AND w.closed_us <= c.as_of_us + {horizon_us}
               )::TINYINT AS label
        FROM candidates c
        ORDER BY c.as_of_us, c.lead
        """
    ).df()
    for name in ("snap_leads", "snap_deals", "snap_ages"):
        con.unregister(name)
    stats = {
        "candidates": int(len(rows)),
        "dropped_closed": int(rows["closed"].sum()),
        "dropped_censored": int((rows["censored"] & ~rows["closed"]).sum()),
    }
    keep = ~(rows["censored"] | rows["closed"])
    snaps = rows.loc[keep, ["lead", "created_us", "as_of_us", "label"]].reset_index(drop=True)
    snaps["label"] = snaps["label"].astype("int8")
    stats["snapshots"] = int(len(snaps))
    stats["positives"] = int(snaps["label"].sum())
    return snaps, stats
