"""Plant the leaks real CRM exports carry into a simulated dataset (tests and benchmarks).

Each writes one undeclared profile column into the leads table of a dataset folder:

- `post_outcome`: a status written when the lead's deal closed ("customer", "closed lost"),
  blank while nothing closed: a recording of the outcome;
- `missingness`: an honest-looking attribute (a sector) filled only once a deal closed,
  blank on every lead that never closed: its values mean little, its blankness a lot;
- `identifier`: a record id, one distinct value per lead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError

KINDS = ("post_outcome", "missingness", "identifier")
COLUMNS = {"post_outcome": "account_status", "missingness": "sector", "identifier": "record_id"}


def plant_leaks(dataset_path: str | Path, kinds: tuple[str, ...] = KINDS, seed: int = 0) -> dict:
    """Add one column per kind to `leads.parquet` (or `.csv`); returns kind -> column."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise LeadscoreError(f"unknown leak kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    folder = Path(dataset_path)
    path = next((p for p in (folder / "leads.parquet", folder / "leads.csv") if p.is_file()), None)
    if path is None:
        raise LeadscoreError(f"{folder}: no leads table to plant leaks into")
    read = pd.read_parquet if path.suffix == ".parquet" else pd.read_csv
    leads = read(path)
    deals = read(path.with_name("deals" + path.suffix))
    status = deals.groupby("lead_id")["status"].agg(
        lambda s: "won" if (s == "won").any() else ("lost" if (s == "lost").any() else "open")
    )
    final = leads["lead_id"].map(status).fillna("none").to_numpy()
    rng = np.random.default_rng(seed)
    planted = {}
    if "post_outcome" in kinds:
        leads[COLUMNS["post_outcome"]] = np.select(
            [final == "won", final == "lost"], ["customer", "closed lost"], default=None
        )
        planted["post_outcome"] = COLUMNS["post_outcome"]
    if "missingness" in kinds:
        closed = np.isin(final, ["won", "lost"])
        sectors = rng.choice(["manufacturing", "services", "retail", "public"], len(leads))
        leads[COLUMNS["missingness"]] = np.where(closed, sectors, None)
        planted["missingness"] = COLUMNS["missingness"]
    if "identifier" in kinds:
        leads[COLUMNS["identifier"]] = [f"REC-{i:07d}" for i in rng.permutation(len(leads))]
        planted["identifier"] = COLUMNS["identifier"]
    if path.suffix == ".parquet":
        leads.to_parquet(path, index=False)
    else:
        leads.to_csv(path, index=False)
    return planted
