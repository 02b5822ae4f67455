"""`FeatureConfig`: what the point-in-time feature pipeline computes (conf/features.yaml)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadscore.crm.contract import load_yaml_model

# Dense while a lead is young (most wins come early), then about doubling up to two years:
# the open pipeline keeps every lead never closed, so most of it is months old, and a model
# that never saw such ages would extrapolate there. An age the data has not reached yet is no
# candidate (censoring drops it). benchmarks/calibration_by_age.py measured these against
# a denser 13-age grid: as calibrated at every age band, in half the training time.
DEFAULT_SNAPSHOT_AGES = (0, 3, 7, 14, 30, 60, 90, 180, 365, 730)
# Past the configured ages (`ages_follow_data`), each added age is this many times the last.
AGE_STEP = 1.5


def data_ages(
    ages: list[float], *, oldest_open_days: float | None, oldest_matured_days: float
) -> list[float]:
    """The configured snapshot ages, then ages of AGE_STEP times the last matured one (whole
    days) while the open pipeline has leads older than the last and the history has matured
    snapshots at the next: a lead created `oldest_matured_days` before the data's end minus
    the horizon reaches it."""
    out = sorted(ages)
    matured = [a for a in out if a <= oldest_matured_days]
    if oldest_open_days is None or not matured:
        return out
    last = matured[-1]
    while last < oldest_open_days:
        last = float(round(max(last, 1.0) * AGE_STEP))
        if last > oldest_matured_days:
            break
        if last not in out:
            out.append(last)
    return sorted(out)


class FeatureConfig(BaseModel):
    """Snapshot ages, horizon, windows and feature families. Frozen: a run's config is fixed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    snapshot_ages_days: list[float] = Field(
        default_factory=lambda: list(DEFAULT_SNAPSHOT_AGES),
        description="lead ages (days since creation) at which training snapshots are taken: "
        "they cover the ages the open pipeline holds (a lead older than the oldest is flagged)",
    )
    ages_follow_data: bool = Field(
        True,
        description="past the oldest configured age, add ages (each half again the last) as "
        "far as the open pipeline's oldest lead, wherever the history has matured snapshots: "
        "a years-old open lead is then scored from leads of its own age",
    )
    horizon_days: float = Field(
        90.0, gt=0, description="a snapshot is a win when a deal is won within this many days"
    )
    windows_days: list[int] = Field(
        default_factory=lambda: [7, 30, 90],
        description="trailing windows of the activity counts (and a count to date)",
    )
    trend_recent_days: int = Field(
        7, gt=0, description="recent window of the engagement trend (recent vs older)"
    )
    trend_older_days: int = Field(30, gt=0, description="older window of the engagement trend")
    active_days_window: int = Field(
        30, gt=0, description="window of the distinct active days count"
    )
    decay_half_life_days: float = Field(
        14.0, gt=0, description="half-life of the time-decayed engagement sum"
    )
    activity_types: list[str] | None = Field(
        None,
        description="activity types with features of their own (none: every type in the data, "
        "sorted, fixed from then on in the model's spec)",
    )
    sales_touch_types: list[str] | None = Field(
        None,
        description="types that are sales touches, for speed to lead (none: the sales_touch "
        "group of dataset.yaml)",
    )
    include_profile: list[str] | None = Field(
        None, description="profile columns used (none: every profile column of the dataset)"
    )
    ignore_profile: list[str] = Field(default_factory=list, description="profile columns left out")

    @field_validator("snapshot_ages_days")
    @classmethod
    def _ages(cls, ages: list[float]) -> list[float]:
        if not ages:
            raise ValueError("at least one snapshot age is needed")
        if any(a < 0 for a in ages):
            raise ValueError("snapshot ages must be >= 0 days")
        if len(set(ages)) != len(ages):
            raise ValueError("snapshot ages must be distinct")
        return sorted(ages)

    @field_validator("windows_days")
    @classmethod
    def _windows(cls, windows: list[int]) -> list[int]:
        if not windows or any(w <= 0 for w in windows) or len(set(windows)) != len(windows):
            raise ValueError("windows must be distinct positive numbers of days")
        return sorted(windows)

    @field_validator("activity_types", "sales_touch_types")
    @classmethod
    def _types(cls, types: list[str] | None) -> list[str] | None:
        if types is not None and (
            any(not t.strip() for t in types) or len(set(types)) != len(types)
        ):
            raise ValueError("activity types must be distinct non-empty names")
        return types

    @model_validator(mode="after")
    def _trend_windows(self) -> FeatureConfig:
        if self.trend_recent_days >= self.trend_older_days:
            raise ValueError("trend_recent_days must be shorter than trend_older_days")
        for name in ("trend_recent_days", "trend_older_days", "active_days_window"):
            if getattr(self, name) not in self.windows_days:
                raise ValueError(
                    f"{name} ({getattr(self, name)}) must be one of windows_days {self.windows_days}"
                )
        return self


def load_feature_config(path: str | Path | None) -> FeatureConfig:
    """Read a FeatureConfig from YAML; None gives the defaults."""
    if path is None:
        return FeatureConfig()
    return load_yaml_model(path, FeatureConfig, "feature config")
