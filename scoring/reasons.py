"""Per-lead reasons: TreeSHAP contributions grouped per original column, worded for people.

Features derived from the same activity type (`n_webinar_attendance_30d`,
`days_since_webinar_attendance`, ...) form one group; so do the speed-to-lead features and
each profile column. A group's contribution is the sum of its features' contributions, so
the groups plus the base value add up to the model's raw score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from leadscore.features.definitions import FeatureSpec

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
    """Top k groups up and down of one lead from its per-group contribution totals, worded
    from its feature values by name: `reason_columns` for a batch of one."""
    one = reason_columns(
        np.asarray(totals, dtype=np.float64)[None, :], names, lambda f: [values.get(f)], spec, k
    )
    return one.per_lead()[0]


@dataclass
class ReasonColumns:
    """The top reasons of a batch as columns: for each side ("positive", "negative"), arrays
    (n, k) of the group's position in `names` (-1: no reason in that slot), its worded text
    (None there) and its contribution (NaN there). Built without a dict per lead;
    `per_lead` gives the endpoint's shape."""

    names: list[str]
    groups: dict[str, np.ndarray]
    texts: dict[str, np.ndarray]
    contributions: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.groups["positive"])

    def text_lists(self, side: str) -> list[list[str]]:
        """Per lead, the words of its reasons on one side, best first."""
        texts, groups = self.texts[side], self.groups[side]
        return [[t for t, g in zip(row, gs, strict=True) if g >= 0]
                for row, gs in zip(texts.tolist(), groups.tolist(), strict=True)]  # fmt: skip

    def per_lead(self) -> list[dict[str, list[dict]]]:
        """One {"positive": [...], "negative": [...]} per lead, as `word_reasons` gives it."""
        sides = {
            side: (self.groups[side].tolist(), self.texts[side].tolist(),
                   self.contributions[side].tolist())
            for side in SIDES
        }  # fmt: skip
        out = []
        for i in range(len(self)):
            item = {}
            for side, (groups, texts, contributions) in sides.items():
                item[side] = [
                    {"feature": self.names[g], "text": t, "contribution": round(c, 4)}
                    for g, t, c in zip(groups[i], texts[i], contributions[i], strict=True)
                    if g >= 0
                ]
            out.append(item)
        return out


SIDES = ("positive", "negative")


def reason_columns(
    totals: np.ndarray,
    names: list[str],
    column: Callable[[str], list],
    spec: FeatureSpec,
    k: int = 3,
    members: dict[str, list[str]] | None = None,
) -> ReasonColumns:
    """The top k groups up and down of every lead, worded: `word_reasons` for a batch.

    Args:
        totals: per-group contributions (n, len(names)).
        column: a feature name -> its values for the batch's leads (a list), read only for
            the groups some lead's reasons name.
        members: `group_features(spec)`, when the caller keeps it (a scorer computes it
            once, not once per request).

    The same choice and the same words as `word_reasons` lead by lead: a stable sort per
    row, and `describe` on the group's own feature values; a group's words are worded once
    per distinct set of values.
    """
    totals = np.asarray(totals, dtype=np.float64)
    n = len(totals)
    k = min(k, totals.shape[1]) if totals.ndim == 2 else 0
    order = np.argsort(totals, axis=1, kind="stable")
    chosen = {"positive": order[:, ::-1][:, :k], "negative": order[:, :k]}
    groups, contributions = {}, {}
    for side, idx in chosen.items():
        picked = np.take_along_axis(totals, idx, axis=1)
        keep = picked > 0 if side == "positive" else picked < 0
        groups[side] = np.where(keep, idx, -1)
        contributions[side] = np.where(keep, picked, np.nan)
    texts = {side: np.full((n, k), None, dtype=object) for side in SIDES}
    members = group_features(spec) if members is None else members
    for g in np.unique(np.concatenate([groups[s].ravel() for s in SIDES])):
        if g < 0:
            continue
        group = names[g]
        feats = members.get(group, [group])
        # Each lead's values of the group's features, one tuple per lead (C-level zip);
        # a group's words depend on nothing else, so equal tuples share their words.
        keys = list(zip(*(column(f) for f in feats), strict=True))
        cache: dict[tuple, str] = {}
        for side in SIDES:
            rows, slots = np.nonzero(groups[side] == g)
            out = texts[side]
            for i, j in zip(rows.tolist(), slots.tolist(), strict=True):
                key = keys[i]
                text = cache.get(key)
                if text is None:
                    text = cache[key] = describe(group, dict(zip(feats, key, strict=True)), spec)
                out[i, j] = text
    return ReasonColumns(list(names), groups, texts, contributions)


def group_features(spec: FeatureSpec) -> dict[str, list[str]]:
    """Each reason group -> the features of the spec that word it."""
    out: dict[str, list[str]] = {}
    for name, group in zip(
        spec.feature_names, feature_groups(spec.feature_names, spec), strict=True
    ):
        out.setdefault(group, []).append(name)
    return out


def merge_reasons(base: ReasonColumns, part: ReasonColumns, rows: np.ndarray) -> ReasonColumns:
    """`base` with the rows at `rows` replaced by `part`'s (another model's reasons for those
    rows): group positions mapped onto one list of names, slots padded to the wider."""
    names = list(base.names) + [n for n in part.names if n not in base.names]
    position = np.array([names.index(n) for n in part.names] + [-1], dtype=np.int64)
    k = max(base.groups["positive"].shape[1], part.groups["positive"].shape[1])
    groups, texts, contributions = {}, {}, {}
    for side in SIDES:
        g, t, c = (_widen(a, k, fill) for a, fill in (
            (base.groups[side], -1), (base.texts[side], None), (base.contributions[side], np.nan)
        ))  # fmt: skip
        pg, pt, pc = (_widen(a, k, fill) for a, fill in (
            (part.groups[side], -1), (part.texts[side], None), (part.contributions[side], np.nan)
        ))  # fmt: skip
        g[rows], t[rows], c[rows] = position[pg], pt, pc  # -1 stays -1 (position[-1])
        groups[side], texts[side], contributions[side] = g, t, c
    return ReasonColumns(names, groups, texts, contributions)


def _widen(a: np.ndarray, k: int, fill) -> np.ndarray:
    out = np.full((a.shape[0], k), fill, dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out
