"""Lead ids to row positions: how every table of a dataset points at its lead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def lead_positions(ids: pd.Series, lead_ids: pd.Series) -> np.ndarray:
    """Row position in `lead_ids` of each id in `ids` (int64; -1 where unknown).

    Arrow's hash lookup: pandas' isin on Arrow text builds a Python object per value.
    """
    keys = pc.index_in(
        pa.array(ids, type=pa.large_string()), value_set=pa.array(lead_ids, type=pa.large_string())
    )
    return keys.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


class LeadIndex:
    """Lead ids -> row positions, hashed once for many lookups (the batches of an activity
    export: `lead_positions` would hash every lead again for each batch)."""

    def __init__(self, lead_ids: pd.Series) -> None:
        self._index = pd.Index(pd.array(lead_ids, dtype="str"))

    def positions(self, ids: pd.Series) -> np.ndarray:
        """Row position of each id (int64; -1 where unknown)."""
        return self._index.get_indexer(pd.array(ids, dtype="str")).astype(np.int64)
