"""`RulesConfig`: marketing's points rules as a typed config (`conf/rules.yaml`), loading
and checking them against a dataset. The computation lives in `leadscore.rules.scorer`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadscore.crm.contract import load_yaml_model
from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import ConfigError


class ProfileRule(BaseModel):
    """Points for one profile column (or `source`): by value, or by numeric threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    values: dict[str, float] | None = Field(
        None, description="text value -> points (other values: `other`)"
    )
    at_least: dict[float, float] | None = Field(
        None, description="threshold -> points of the highest threshold reached (numbers)"
    )
    other: float = Field(
        0.0, description="a value not listed (text), or below every threshold (number)"
    )
    missing: float = Field(0.0, description="no value")

    @model_validator(mode="after")
    def _one_kind(self) -> ProfileRule:
        if (self.values is None) == (self.at_least is None):
            raise ValueError("give either `values` (text column) or `at_least` (numeric column)")
        return self

    @field_validator("values", mode="before")
    @classmethod
    def _text_keys(cls, values: Any) -> Any:
        # YAML reads `1000+` as text but `true` or `10` as other types: keys are text.
        if isinstance(values, dict):
            return {str(k): v for k, v in values.items()}
        return values


class ActivityRule(BaseModel):
    """Points per activity of one type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: float = Field(description="points per activity (negative: a penalty)")
    max: float | None = Field(None, gt=0, description="cap on this type's points (absolute)")
    decay: bool = Field(
        True, description="false: an old activity counts in full (e.g. an unsubscribe)"
    )


class InactivityRule(BaseModel):
    """Points (a penalty) when nothing engaging happened for a while."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: float = Field(gt=0, description="days without an engaging activity")
    points: float = Field(description="points added then (negative: a penalty)")


class RuleGrades(BaseModel):
    """Score cut-offs: a score >= A is an A, ... below C is a D."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    A: float = Field(75, description="lowest score graded A")
    B: float = Field(50, description="lowest score graded B")
    C: float = Field(25, description="lowest score graded C")

    @model_validator(mode="after")
    def _descending(self) -> RuleGrades:
        if not self.A >= self.B >= self.C:
            raise ValueError(
                f"grade cut-offs must satisfy A >= B >= C (got {self.A}, {self.B}, {self.C})"
            )
        return self


class RulesConfig(BaseModel):
    """A points scorecard (`conf/rules.yaml`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("rules", description="the scorecard's name (shown with its version)")
    base_points: float = Field(0.0, description="points every lead starts with")
    profile: dict[str, ProfileRule] = Field(
        default_factory=dict, description="profile column (or source) -> its points"
    )
    half_life_days: float = Field(
        30.0, gt=0, description="an activity this many days old counts half"
    )
    activities: dict[str, ActivityRule] = Field(
        default_factory=dict, description="activity type -> its points (`page_view: 2` is short)"
    )
    inactivity: InactivityRule | None = Field(None, description="the inactivity penalty")
    floor: float = Field(0.0, description="the score's lowest value")
    cap: float = Field(100.0, description="the score's highest value")
    mql_threshold: float = Field(
        75.0, description="a lead at or above this score is handed to sales (an MQL)"
    )
    grades: RuleGrades = Field(default_factory=RuleGrades, description="score cut-offs of grades")

    @field_validator("activities", mode="before")
    @classmethod
    def _bare_points(cls, activities: Any) -> Any:
        # `page_view: 2` is short for `page_view: {points: 2}`.
        if isinstance(activities, dict):
            return {
                str(k): {"points": v} if isinstance(v, int | float | str) else v
                for k, v in activities.items()
            }
        return activities

    @model_validator(mode="after")
    def _range(self) -> RulesConfig:
        if self.floor >= self.cap:
            raise ValueError(f"floor ({self.floor}) must be below cap ({self.cap})")
        return self

    @property
    def version(self) -> str:
        """Content hash: two files with the same rules have the same version."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return f"{self.name}@{hashlib.sha256(blob).hexdigest()[:8]}"

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        for rule in data["profile"].values():
            for key in ("other", "missing"):
                if rule.get(key) == 0:
                    del rule[key]
        for name, rule in data["activities"].items():
            if rule.get("decay", True) and "max" not in rule:
                data["activities"][name] = rule["points"]
            elif rule.get("decay", True):
                del rule["decay"]
        return yaml.safe_dump(_whole(data), sort_keys=False, allow_unicode=True)


def load_rules(path: str | Path) -> RulesConfig:
    """Rules from a YAML file; a malformed file is a ConfigError naming the key."""
    return load_yaml_model(path, RulesConfig, "rules file")


def check_rules(rules: RulesConfig, dataset: Dataset, *, file: str = "rules.yaml") -> list[str]:
    """Check rules against a dataset: unknown columns or activity types, or a rule of the
    wrong kind for its column, are a ConfigError. Returns warnings (listed values that never
    occur: probably a typo)."""
    warnings: list[str] = []
    columns = {"source", *dataset.profile_columns}
    for col, rule in rules.profile.items():
        if col not in columns:
            raise ConfigError(
                f"{file}: profile.{col}: no such column in the leads table "
                f"(columns: {', '.join(sorted(columns))})"
            )
        numeric = pd.api.types.is_numeric_dtype(dataset.leads[col])
        if numeric and rule.values is not None:
            raise ConfigError(f"{file}: profile.{col}: numeric column, use `at_least` thresholds")
        if not numeric and rule.at_least is not None:
            raise ConfigError(f"{file}: profile.{col}: text column, use `values`")
        if rule.values is not None:
            seen = {str(v) for v in dataset.leads[col].dropna().unique()}
            unseen = sorted(set(rule.values) - seen)
            if unseen:
                warnings.append(
                    f"{file}: profile.{col}: {', '.join(map(repr, unseen))} never occurs in the data"
                )
    if rules.activities:
        if dataset.is_flat:
            raise ConfigError(
                f"{file}: activities: this dataset has no activity history; score its profile columns"
            )
        known = set(dataset.activity_table.type_counts())
        for kind in rules.activities:
            if kind not in known:
                raise ConfigError(
                    f"{file}: activities.{kind}: unknown activity type "
                    f"(the data has: {', '.join(sorted(known))})"
                )
    return warnings


def _whole(value: Any) -> Any:
    """Whole floats as ints (points read `5`, not `5.0`), recursively."""
    if isinstance(value, dict):
        return {_whole(k): _whole(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
