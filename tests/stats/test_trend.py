"""The trend rule (`leadscore.stats.trend`): one lead at a time gives what the history's vectorised
trends give."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.operations.history import trends
from leadscore.stats.trend import NOT_ENOUGH, trend_of


def test_one_lead_at_a_time_agrees_with_the_history():
    rng = np.random.default_rng(4)
    rows, current = [], []
    for i in range(300):
        n = int(rng.integers(0, 6))
        p = rng.uniform(0.01, 0.9, n)
        rows += [
            (f"L{i}", pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=d), v)
            for d, v in enumerate(p)
        ]
        current.append((f"L{i}", float(rng.uniform(0.01, 0.9)), list(p)))
    earlier = pd.DataFrame(rows, columns=["lead_id", "as_of", "probability"])
    now = pd.DataFrame([(c[0], c[1]) for c in current], columns=["lead_id", "probability"])
    batch = trends(now, earlier).tolist()
    assert batch == [trend_of(p, previous) for _, p, previous in current]
    assert {"improving", "declining", "steady", NOT_ENOUGH} <= set(batch)
    assert trend_of(0.5, [0.1]) == NOT_ENOUGH
    assert trend_of(0.9, [0.1, 0.1, 0.1, 0.1]) == "improving"
