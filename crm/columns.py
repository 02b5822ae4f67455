"""What a profile column is, judged from its values: identifiers are not attributes.

An id-like column (a record id, an e-mail, a hash, a free-text note: one value per lead or
nearly) cannot generalise to new leads; a model that gets it memorises, and reasons worded
from it mean nothing. `validate` lists such columns and the leakage audit excludes them
from everything fitted. `dataset.yaml` can keep one (`columns: {keep: [...]}`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# Present values at least this share distinct: one value per lead, or near it.
DISTINCT_SHARE = 0.9
MIN_VALUES = 50  # fewer present values than this: too few to judge
HASH = re.compile(
    r"^(?:[0-9a-f]{16,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I
)
# A numeric column needs its name to say so too (a count or an amount can be near-unique).
ID_NAME = re.compile(r"(?:^|[_\s])(?:id|uuid|guid|key|hash|number|no|num|ref)$", re.I)


def id_like_reason(name: str, values: pd.Series) -> str | None:
    """Why a column (one value per lead) looks like an identifier, or None when it does not."""
    present = values.dropna()
    if len(present) < MIN_VALUES:
        return None
    distinct = present.nunique()
    share = distinct / len(present)
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if numeric:
        x = present.to_numpy(dtype=np.float64)
        whole = bool(np.all(np.isfinite(x)) and np.all(x == np.rint(x)))
        if whole and share >= DISTINCT_SHARE and ID_NAME.search(name):
            return f"whole numbers, {distinct:,} distinct among {len(present):,} leads, named like an id"
        return None
    text = present.astype(str)
    if text.str.match(HASH).mean() >= DISTINCT_SHARE:
        return f"hash-like values (e.g. {text.iloc[0][:12]!r}...)"
    if share >= DISTINCT_SHARE:
        return f"{distinct:,} distinct values among {len(present):,} leads: one per lead"
    return None


def id_like_columns(
    leads: pd.DataFrame, columns: list[str], keep: list[str] = ()
) -> dict[str, str]:
    """Profile columns of the leads table (one row per lead) that look like identifiers,
    with the reason; columns in `keep` are never listed."""
    kept = set(keep)
    out = {}
    for col in columns:
        if col in kept or col not in leads:
            continue
        reason = id_like_reason(col, leads[col])
        if reason is not None:
            out[col] = reason
    return out
