"""Spend per acquisition lever and period (`costs.csv`: source, period_start, period_end,
spend; or the same rows in a YAML file), and the part of it that falls in a window.

A period's dates are inclusive (2025-01-01 .. 2025-01-31 is all of January); a period's
spend is spread evenly over its days, so a window that covers half of it gets half.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from leadscore.crm.cells import as_text, fail_rows, parse_numbers, parse_timestamps, require_columns
from leadscore.crm.errors import DatasetError, LeadscoreError
from leadscore.crm.times import timestamps_us, to_us

COLUMNS = ("source", "period_start", "period_end", "spend")
# What `kpis` and `plan` add with costs, and never without (absent, not zero).
COST_COLUMNS = (
    "spend",
    "cost_per_lead",
    "cost_per_handoff",
    "cost_per_accepted",
    "cost_per_won",
    "revenue_over_spend",
)


def load_costs(path: str | Path) -> pd.DataFrame:
    """The spend rows of a CSV or YAML file, checked: source, period_start, period_stop
    (the day after period_end, exclusive) and spend >= 0. Errors name file, column, row."""
    path = Path(path)
    if not path.is_file():
        raise LeadscoreError(f"{path}: costs file not found")
    name = path.name
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            raw = yaml.safe_load(path.read_text()) or []
        except yaml.YAMLError as exc:
            raise LeadscoreError(f"{name}: not valid YAML ({exc})") from exc
        if isinstance(raw, dict):
            raw = raw.get("costs", raw)
        if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
            raise LeadscoreError(
                f"{name}: expected a list of rows (source, period_start, period_end, spend), "
                "at the top level or under costs:"
            )
        df = pd.DataFrame(raw, dtype=object)
    elif path.suffix.lower() == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        raise LeadscoreError(f"{name}: costs are a .csv or a .yaml file")
    if df.empty:
        raise DatasetError(name, "no spend rows", expected="one row per lever and period")
    df.columns = [str(c).strip() for c in df.columns]
    require_columns(df, name, COLUMNS)
    source = as_text(df["source"].astype(object).map(lambda v: None if v is None else str(v)))
    fail_rows(name, "source", source.isna(), "empty source", expected="the lever's source")
    start = parse_timestamps(df.astype({"period_start": str}), name, "period_start", required=True)
    end = parse_timestamps(df.astype({"period_end": str}), name, "period_end", required=True)
    fail_rows(
        name,
        "period_end",
        end < start,
        "period_end before period_start",
        df["period_end"],
        expected="period_end on or after period_start",
    )
    spend = parse_numbers(df.astype({"spend": str}), name, "spend")
    fail_rows(name, "spend", spend.isna(), "empty spend", expected="an amount >= 0")
    fail_rows(name, "spend", spend < 0, "negative spend", spend, expected="an amount >= 0")
    # A date without a time means the whole day: the period runs to the end of period_end.
    whole_day = end == end.dt.normalize()
    stop = end + pd.to_timedelta(whole_day.astype(int), unit="D")
    return pd.DataFrame(
        {"source": source.astype(str), "period_start": start, "period_stop": stop, "spend": spend}
    )


def spend_between(
    costs: pd.DataFrame, source: str | None, start: pd.Timestamp, end: pd.Timestamp
) -> float:
    """The spend of one lever (every lever: None) that falls in [start, end)."""
    rows = costs if source is None else costs[costs["source"] == source]
    if not len(rows):
        return float("nan") if source is not None else 0.0
    first, stop = timestamps_us(rows["period_start"]), timestamps_us(rows["period_stop"])
    overlap = np.minimum(stop, to_us(end)) - np.maximum(first, to_us(start))
    share = np.clip(overlap, 0, None) / np.maximum(stop - first, 1)
    return float((rows["spend"].to_numpy(dtype=float) * share).sum())


def unmatched_sources(costs: pd.DataFrame, sources: list[str]) -> tuple[list[str], list[str]]:
    """(levers with leads but no spend row, spend rows' sources with no lead)."""
    spent = set(costs["source"])
    return sorted(set(sources) - spent), sorted(spent - set(sources))
