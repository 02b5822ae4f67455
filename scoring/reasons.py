"""Per-lead reasons: TreeSHAP contributions grouped per original column, worded for people.

Features derived from the same activity type (`n_webinar_attendance_30d`,
`days_since_webinar_attendance`, ...) form one group; so do the speed-to-lead features and
each profile column. A group's contribution is the sum of its features' contributions, so
the groups plus the base value add up to the model's raw score.
"""

from __future__ import annotations

import math
import re

import numpy as np

from features.definitions import FeatureSpec

_WINDOW = re.compile(r"^n_(.+)_(\d+)d$")
SPEED = "speed_to_lead"
OVERALL = {
    "lead_age_days": "lead_age",
    "days_since_last_activity": "recent_activity",
    "engagement_trend": "engagement",
    "engagement_decayed": "engagement",
    "contacted": SPEED,
    "first_touch_seconds": SPEED,
    "uncontacted_seconds": SPEED,
    "open_deals": "open_deals",
}


def feature_groups(features: list[str], spec: FeatureSpec) -> list[str]:
    """The group (an original column or activity type) of each feature."""
    slugs = spec.type_slugs
    groups = []
    for name in features:
        if name in OVERALL:
            groups.append(OVERALL[name])
        elif name.startswith("n_activities_") or name.startswith("active_days_"):
            groups.append("recent_activity")
        else:
            groups.append(
                next(
                    (
                        s
                        for s in slugs
                        if name in (f"n_{s}_total", f"days_since_{s}") or _window_of(name, s)
                    ),
                    name,
                )
            )
    return groups


def _window_of(name: str, slug: str) -> bool:
    m = _WINDOW.match(name)
    return bool(m) and m.group(1) == slug


def _plural(n: float, word: str) -> str:
    n = int(round(float(n)))  # a NumPy float rounds ~20x slower than a Python one
    if n == 1:
        return f"{n} {word}"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"{n} {word[:-1]}ies"
    return f"{n} {word}s"


def _ago(days: float) -> str:
    days = float(days)
    return "today" if days < 1 else "1 day ago" if days < 2 else f"{days:.0f} days ago"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172_800:
        return f"{seconds / 3_600:.0f} hours"
    return f"{seconds / 86_400:.0f} days"


def describe(group: str, values: dict[str, object], spec: FeatureSpec) -> str:
    """Words for one group, from the lead's feature values."""
    if group == SPEED:
        if values.get("contacted"):
            return f"first sales touch after {_duration(float(values['first_touch_seconds']))}"
        return f"not contacted yet after {_duration(float(values.get('uncontacted_seconds') or 0))}"
    if group == "open_deals":
        n = values.get("open_deals") or 0
        return _plural(n, "open deal") if n else "no open deal"
    if group == "lead_age":
        return f"lead is {float(values['lead_age_days']):.0f} days old"
    if group == "engagement":
        trend = values.get("engagement_trend") or 0.0
        direction = "rising" if trend > 0 else "falling" if trend < 0 else "flat"
        return f"engagement {direction} (recent-engagement score {float(values.get('engagement_decayed') or 0):.1f})"
    if group == "recent_activity":
        last = values.get("days_since_last_activity")
        if last is None or (isinstance(last, float) and math.isnan(last)):
            return "no activity yet"
        w = spec.windows_days[0]
        return f"{_plural(values.get(f'n_activities_{w}d') or 0, 'activity')} in the last {w} days, the last one {_ago(last)}"
    if group in spec.type_slugs:
        label = group.replace("_", " ")
        for w in spec.windows_days:
            n = values.get(f"n_{group}_{w}d") or 0
            if n:
                return f"{_plural(n, label)} in the last {w} days"
        total = values.get(f"n_{group}_total") or 0
        if total:
            return f"{_plural(total, label)} so far, the last one {_ago(values[f'days_since_{group}'])}"
        return f"no {label} yet"
    value = values.get(group)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{group.replace('_', ' ')} unknown"
    if isinstance(value, float):
        return f"{group.replace('_', ' ')}: {value:g}"
    return f"{group.replace('_', ' ')}: {value}"


def word_reasons(
    totals: np.ndarray, names: list[str], values: dict[str, object], spec: FeatureSpec, k: int = 3
) -> dict[str, list[dict]]:
    """Top k groups up and down from per-group contribution totals, worded."""
    order = np.argsort(totals, kind="stable")
    positive = [i for i in order[::-1][:k] if totals[i] > 0]
    negative = [i for i in order[:k] if totals[i] < 0]

    def word(idx):
        return [
            {
                "feature": names[i],
                "text": describe(names[i], values, spec),
                "contribution": round(float(totals[i]), 4),
            }
            for i in idx
        ]

    return {"positive": word(positive), "negative": word(negative)}
