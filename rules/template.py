"""A points-rules template for a dataset: every profile value and activity type at 0 points,
with how often each occurs, for marketing to fill in (`leadscore rules init`).

The file is the rules' own YAML format (`leadscore.rules.config.RulesConfig`): it loads and scores as
it is (every lead at the base points) and passes `check_rules` on the dataset it came from.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from leadscore.crm.columns import id_like_reason
from leadscore.crm.dataset import Dataset

MAX_VALUES = 40  # a text column with more values lists the most frequent ones


def _key(value: object) -> str:
    return json.dumps(str(value))  # quoted: YAML would read `yes` or `10` as other types


def rules_template(dataset: Dataset, name: str = "rules") -> str:
    """The commented YAML template for `dataset`."""
    leads = dataset.leads
    n = len(leads)
    lines = [
        f"# Points rules for {dataset.path} ({n:,} leads), written by `leadscore rules init`.",
        "# Every entry is at 0 points: put in what each is worth to you. Leave a 0 or delete",
        "# the line for what does not matter. Format: conf/rules.yaml (leadscore.rules.config.RulesConfig).",
        "#   points = base_points + profile points + activity points + inactivity penalty,",
        "#   clipped to [floor, cap]; MQL (handed to sales) at mql_threshold.",
        f"name: {name}",
        "base_points: 0",
        "",
        "# Fit: points per value of a profile column (`other`: a value not listed; `missing`:",
        "# no value). Numeric columns give points from thresholds (`at_least`).",
        "profile:",
    ]
    columns = [c for c in ("source", *dataset.profile_columns) if c != dataset.label_column]
    leaky = set(dataset.spec.columns.leaky)
    for col in columns:
        values = leads[col]
        if col in leaky:
            lines.append(f"  # {col}: left out (declared leaky in dataset.yaml)")
            continue
        if col != "source" and id_like_reason(col, values) is not None:
            lines.append(f"  # {col}: left out (looks like an identifier)")
            continue
        missing = int(values.isna().sum())
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            finite = values.dropna().to_numpy(dtype=np.float64)
            if not len(finite):
                continue
            cuts = np.unique(np.round(np.quantile(finite, [0.25, 0.5, 0.75]), 6))
            lines.append(
                f"  {col}:  # numeric: min {finite.min():g}, median {np.median(finite):g}, "
                f"max {finite.max():g}; {missing:,} missing"
            )
            lines.append("    at_least:")
            lines += [f"      {c:g}: 0" for c in cuts]
        else:
            counts = values.astype("object").value_counts()
            lines.append(f"  {col}:  # {len(counts):,} values; {missing:,} missing")
            lines.append("    values:")
            for value, count in counts.head(MAX_VALUES).items():
                lines.append(f"      {_key(value)}: 0  # {count:,} leads")
            if len(counts) > MAX_VALUES:
                lines.append(f"      # ... {len(counts) - MAX_VALUES:,} rarer values: `other`")
        lines += ["    other: 0", "    missing: 0"]
    lines += [
        "",
        "# Engagement: points per activity, decayed with the half-life (an activity that old",
        "# counts half); `max` caps a type's points; `decay: false` counts it in full forever.",
        "half_life_days: 30",
        "activities:" if not dataset.is_flat and len(dataset.activity_table) else "activities: {}",
    ]
    if not dataset.is_flat and len(dataset.activity_table):
        sales = set(dataset.spec.sales_touch_types)
        counts = sorted(dataset.activity_table.type_counts().items(), key=lambda kv: -kv[1])
        for kind, count in counts:
            note = "; a sales touch: sales working the lead" if kind in sales else ""
            lines.append(f"  {_key(kind)}: 0  # {count:,} activities{note}")
        lines += [
            "",
            "# Inactivity: points (negative) when nothing engaging happened for this many days.",
            "# inactivity: {days: 60, points: -10}",
        ]
    lines += [
        "",
        "floor: 0",
        "cap: 100",
        "mql_threshold: 75",
        "grades: {A: 75, B: 50, C: 25}",
        "",
    ]
    return "\n".join(lines)
