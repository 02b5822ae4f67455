"""The score row, declared once: the columns of a scoring run's lead rows and account rows,
and which lead columns the score history stores (with their SQL types).

The batch writes these rows (`leadscore.operations.pipeline`, `leadscore.operations.accounts`),
the score history stores the stored columns (`leadscore.operations.history`), and the event
stream queues its rescores for the history in the same columns
(`leadscore.stream.processor`): a column added here reaches all three, or fails loudly in
the one that does not supply it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The lead row, in the scores file's order: (column, its type in the score history; None:
# in the scores file only). The history leaves out the reasons, the age flag and the
# interval (a store made before them keeps working).
LEAD_ROW: tuple[tuple[str, str | None], ...] = (
    ("lead_id", "VARCHAR NOT NULL"),
    ("as_of", "TIMESTAMP"),
    ("probability", "FLOAT8"),
    ("score", "INTEGER"),
    ("grade", "VARCHAR"),
    ("p_low", None),
    ("p_high", None),
    ("review", None),
    ("beyond_trained_age", None),
    ("rule_score", "INTEGER"),
    ("rule_grade", "VARCHAR"),
    ("mql", "BOOLEAN"),
    ("reasons_up", None),
    ("reasons_down", None),
    ("model_name", "VARCHAR"),
    ("model_version", "VARCHAR"),
    ("feature_set_version", "VARCHAR"),
    ("trend", "VARCHAR"),
)
# The scores file's columns (the trend last: the run adds it from the history).
COLUMNS = [name for name, _ in LEAD_ROW]

# The score history's table: the run's key, as_of_us (µs since the epoch, UTC: exact in every
# database), then the lead row's stored columns (as_of: UTC without a zone, for people
# querying the table), then when the row was scored. Its columns and types are fixed, never
# inferred from a run's data (an empty first run would give typeless columns that no later
# run could fill). Key: (as_of_us, lead_id).
HISTORY_SCHEMA: dict[str, str] = {
    "as_of_us": "BIGINT NOT NULL",
    **{name: kind for name, kind in LEAD_ROW if kind is not None},
    "scored_at": "TIMESTAMP",
}
STORED = list(HISTORY_SCHEMA)

# The account row of a scoring run (the file next to the lead scores; not in the history).
ACCOUNT_COLUMNS = [
    "account_id",
    "as_of",
    "probability",
    "score",
    "grade",
    "p_low",
    "p_high",
    "review",
    "contacts",
    "active_contacts",
    "reasons_up",
    "reasons_down",
    "model_name",
    "model_version",
]


def stored_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the score history (STORED, in order) from a writer's values; a column the
    writer does not supply is a KeyError naming it, never a silent gap."""
    missing = [c for c in STORED if c not in values]
    if missing:
        raise KeyError(f"a score history row lacks {', '.join(missing)}")
    return {c: values[c] for c in STORED}
