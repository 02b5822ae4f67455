"""Point-in-time feature definitions shared by the batch (DuckDB) and online (NumPy) engines.

Both engines compute the same *primitives* for each (lead, as_of): counts per activity type
and window, the last time of each type, the first sales touch, distinct active days, a
decayed engagement sum and open deals, all from rows with a timestamp `<= as_of`.
`assemble_features` then turns primitives into named features, so every formula exists once.
Times are integer microseconds since the epoch (`leadscore.crm.times`; exact in float64 until the year
2255, which the primitives use so that a missing time is NaN).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pydantic import BaseModel, ConfigDict

from leadscore.crm.errors import ConfigError
from leadscore.crm.times import US_PER_DAY, US_PER_SECOND
from leadscore.features.config import FeatureConfig

FEATURE_SET_VERSION = "pit-1"


class FeatureSpec(BaseModel):
    """The resolved feature set: fixed at training time, shipped with the model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    history: bool = True  # False for flat datasets: profile features only

    def __eq__(self, other: object) -> bool:
        # The fields alone: the cached properties (NumPy masks among them) are derived from
        # them, and pydantic's own comparison would compare those arrays too, ambiguously.
        if not isinstance(other, FeatureSpec):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # its list fields never hashed: equal by value, no hash
    horizon_days: float
    snapshot_ages_days: list[float]
    # From this age on, each snapshot age starts a band up to the next (the last: AGE_STEP
    # times its start), and a lead's snapshot falls at an age of its own within it
    # (`leadscore.features.labels.snapshot_rows`). None: every age is exact.
    spread_from_days: float | None = None
    windows_days: list[int]
    trend_recent_days: int
    trend_older_days: int
    active_days_window: int
    decay_half_life_days: float
    activity_types: list[str]
    sales_touch_types: list[str]
    categorical: list[str]
    numeric_profile: list[str]

    @cached_property
    def type_slugs(self) -> list[str]:
        return [slug(t) for t in self.activity_types]

    @cached_property
    def behaviour_names(self) -> list[str]:
        if not self.history:
            return []
        names = ["lead_age_days"]
        for s in self.type_slugs:
            names += [f"n_{s}_{w}d" for w in self.windows_days] + [
                f"n_{s}_total",
                f"days_since_{s}",
            ]
        names += [f"n_activities_{w}d" for w in self.windows_days] + ["n_activities_total"]
        names += [
            "days_since_last_activity",
            f"active_days_{self.active_days_window}d",
            "engagement_trend",
            "engagement_decayed",
            "contacted",
            "first_touch_seconds",
            "uncontacted_seconds",
            "open_deals",
        ]
        return names

    @cached_property
    def behaviour_index(self) -> dict[str, int]:
        """Each behaviour feature's column in the behaviour matrix."""
        return {name: j for j, name in enumerate(self.behaviour_names)}

    @cached_property
    def feature_names(self) -> list[str]:
        return [*self.categorical, *self.numeric_profile, *self.behaviour_names]

    @cached_property
    def unsupported_features(self) -> dict[str, str]:
        """Behaviour features from a family the data does not have, with the reason: the
        engines still compute them (zeros, or the lead's age), but nothing may learn from
        them or word a reason from them ("not contacted yet" where no call is recorded)."""
        names = self.behaviour_names
        activity = [
            n
            for n in names
            if n.startswith(("n_activities_", "active_days_"))
            or n in ("days_since_last_activity", "engagement_trend", "engagement_decayed")
        ]
        speed = ["contacted", "first_touch_seconds", "uncontacted_seconds"]
        if not self.activity_types:
            why = "the data has no activities"
            return {n: why for n in [*activity, *speed] if n in names}
        if not self.sales_mask.any():
            why = "the data records no sales touch (see dataset.yaml activity_groups.sales_touch)"
            return {n: why for n in speed if n in names}
        return {}

    @cached_property
    def sales_mask(self) -> np.ndarray:
        touches = set(self.sales_touch_types)
        return np.array([t in touches for t in self.activity_types], dtype=bool)


def slug(name: str) -> str:
    """A stable feature-name fragment for an activity type: `Pricing Page` -> `pricing_page`."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "unnamed"


def resolve_spec(
    config: FeatureConfig,
    *,
    profile_dtypes: dict[str, str],
    observed_types: list[str],
    sales_touch_types: list[str],
    history: bool = True,
    spread_from_days: float | None = None,
) -> FeatureSpec:
    """Fix the feature set from a config and what the dataset holds.

    Args:
        profile_dtypes: profile column -> "categorical" or "numeric".
        observed_types: activity types present in the data (used when the config lists none).
        sales_touch_types: the dataset's sales-touch group (used when the config lists none).
        spread_from_days: the ages added to follow the data start here (bands, not exact
            ages; `leadscore.features.config.data_ages`).
    """
    types = (
        list(config.activity_types) if config.activity_types is not None else sorted(observed_types)
    )
    if not history:
        types = []
    slugs = [slug(t) for t in types]
    clash = {s for s in slugs if slugs.count(s) > 1}
    if clash:
        raise ConfigError(
            f"activity types {sorted(t for t in types if slug(t) in clash)} give the same feature name"
        )
    columns = list(profile_dtypes)
    if config.include_profile is not None:
        unknown = [c for c in config.include_profile if c not in profile_dtypes]
        if unknown:
            raise ConfigError(f"include_profile names columns the dataset does not have: {unknown}")
        columns = list(config.include_profile)
    columns = [c for c in columns if c not in set(config.ignore_profile)]
    reserved = set(FeatureSpec.model_fields) | {"lead_id", "as_of", "label", "source"}
    taken = set()
    for s in slugs:
        taken |= {f"n_{s}_total", f"days_since_{s}"}
    bad = [c for c in columns if c in reserved or c in taken]
    if bad:
        raise ConfigError(
            f"profile columns {bad} collide with feature names; rename them or ignore_profile them"
        )
    body = {
        "history": history,
        "horizon_days": config.horizon_days,
        "snapshot_ages_days": list(config.snapshot_ages_days),
        "windows_days": list(config.windows_days),
        "trend_recent_days": config.trend_recent_days,
        "trend_older_days": config.trend_older_days,
        "active_days_window": config.active_days_window,
        "decay_half_life_days": config.decay_half_life_days,
        "activity_types": types,
        "sales_touch_types": list(
            config.sales_touch_types if config.sales_touch_types is not None else sales_touch_types
        ),
        "categorical": ["source"] + [c for c in columns if profile_dtypes[c] == "categorical"],
        "numeric_profile": [c for c in columns if profile_dtypes[c] == "numeric"],
    }
    if spread_from_days is not None and history:  # absent otherwise: earlier versions hold
        body["spread_from_days"] = float(spread_from_days)
    digest = hashlib.sha1(json.dumps(_canonical(body), sort_keys=True).encode()).hexdigest()[:10]
    return FeatureSpec(version=f"{FEATURE_SET_VERSION}+{digest}", **body)


def _canonical(value):
    """Whole floats as ints, recursively: `[0, 3]` and `[0.0, 3.0]` are the same features and
    get the same version."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class Primitives:
    """Per-snapshot aggregates, arrays over n snapshots (float64; NaN where none)."""

    created_us: np.ndarray  # (n,)
    as_of_us: np.ndarray  # (n,)
    type_counts: np.ndarray  # (n, K, W + 1): per window of spec.windows_days, then to date
    type_last_us: np.ndarray  # (n, K)
    all_counts: np.ndarray  # (n, W + 1): every activity, known type or not
    last_us: np.ndarray  # (n,)
    active_days: np.ndarray  # (n,)
    decayed: np.ndarray  # (n,)
    first_touch_us: np.ndarray  # (n,)
    open_deals: np.ndarray  # (n,)


def assemble_features(p: Primitives, spec: FeatureSpec) -> np.ndarray:
    """Behaviour features, a matrix (n, len(spec.behaviour_names)) in that order.

    Column-major and filled in place, block by block (not one operation per feature), so
    that one online row is cheap and a million batch rows need no extra copies.
    """
    n, k, w1 = p.type_counts.shape
    out = np.empty((n, len(spec.behaviour_names)), order="F")
    out[:, 0] = (p.as_of_us - p.created_us) / US_PER_DAY
    col = 1
    for t in range(k):  # per type: window counts, total, days since the last one
        out[:, col : col + w1] = p.type_counts[:, t, :]
        out[:, col + w1] = (p.as_of_us - p.type_last_us[:, t]) / US_PER_DAY
        col += w1 + 1
    out[:, col : col + w1] = p.all_counts
    col += w1
    j_recent = spec.windows_days.index(spec.trend_recent_days)
    j_older = spec.windows_days.index(spec.trend_older_days)
    engaged = np.flatnonzero(~spec.sales_mask)
    recent = p.type_counts[:, engaged, j_recent].sum(axis=1)
    older = p.type_counts[:, engaged, j_older].sum(axis=1)
    contacted = ~np.isnan(p.first_touch_us)
    out[:, col] = (p.as_of_us - p.last_us) / US_PER_DAY
    out[:, col + 1] = p.active_days
    out[:, col + 2] = recent / spec.trend_recent_days - (older - recent) / (
        spec.trend_older_days - spec.trend_recent_days
    )
    out[:, col + 3] = p.decayed
    out[:, col + 4] = contacted
    out[:, col + 5] = (p.first_touch_us - p.created_us) / US_PER_SECOND
    out[:, col + 6] = np.where(contacted, np.nan, (p.as_of_us - p.created_us) / US_PER_SECOND)
    out[:, col + 7] = p.open_deals
    return out
