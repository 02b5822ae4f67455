"""The data contract: table names, required columns, and `dataset.yaml` (column roles)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from leadscore.crm.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

TABLES = ("leads", "activities", "deals", "lead_status")
FORMATS = (".csv", ".parquet")

LEAD_COLUMNS = ("lead_id", "created_at", "source")
# The account (company) a lead belongs to: several leads of one account are its buying
# group. Optional; blank for a lead without one. Never a profile feature (an identifier).
LEAD_OPTIONAL = ("account_id",)
ACTIVITY_COLUMNS = ("lead_id", "occurred_at", "activity_type")
ACTIVITY_OPTIONAL = ("value", "campaign")
DEAL_COLUMNS = ("deal_id", "lead_id", "created_at", "closed_at", "status")
DEAL_OPTIONAL = ("amount",)
DEAL_STATUSES = ("open", "won", "lost")
# What sales did with a lead (the CRM's lead-status history): never a model feature.
STATUS_COLUMNS = ("lead_id", "changed_at", "status")
STATUS_OPTIONAL = ("reason", "owner")
# The stages a status value maps to: `new` (in sales' queue, not yet worked), `working`
# (sales is on it), `accepted` (sales took it: qualified, converted), `rejected` (sales
# turned it down; the only stage a reason may come with).
STAGES = ("new", "working", "accepted", "rejected")
# The usual values of the big CRMs (Salesforce, HubSpot, Dynamics 365, Zoho, Pipedrive),
# compared case-, space- and punctuation-blind (`leadscore.crm.lead_status.status_key`).
DEFAULT_STATUS_STAGES: dict[str, tuple[str, ...]] = {
    "new": ("New", "Open", "Open - Not Contacted", "Not Contacted", "Unassigned"),
    "working": (
        "Working",
        "Working - Contacted",
        "Contacted",
        "Attempted to Contact",
        "Attempted",
        "In Progress",
        "Connected",
        "Contact in Future",
        "Nurturing",
        "Pre-Qualified",
    ),
    "accepted": (
        "Accepted",
        "Sales Accepted",
        "SAL",
        "Qualified",
        "SQL",
        "Open Deal",
        "Converted",
        "Closed - Converted",
    ),
    "rejected": (
        "Rejected",
        "Sales Rejected",
        "Unqualified",
        "Not Qualified",
        "Disqualified",
        "Closed - Not Converted",
        "Bad Timing",
        "Junk Lead",
        "Lost Lead",
        "Cannot Contact",
        "No Longer Interested",
        "Canceled",
        "Cancelled",
    ),
}

# Filled in for a lead whose first-touch source is blank, so it stays countable per source.
UNKNOWN_SOURCE = "unknown"

# Activity types that are sales touches unless dataset.yaml says otherwise.
DEFAULT_SALES_TOUCHES = ("call", "meeting", "sales_email")


def status_key(value: object) -> str:
    """A status value compared case-, space- and punctuation-blind: "Working - Contacted",
    "working_contacted" and "WORKING CONTACTED" are one value."""
    return " ".join(re.findall(r"[0-9a-z]+", str(value).lower()))


class LabelSpec(BaseModel):
    """The outcome column of a flat dataset (one row per lead, no history)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    positive: list[str | int | bool] = Field(default_factory=lambda: [1, "1", True, "true", "yes"])


class ColumnRoles(BaseModel):
    """Roles of profile columns: dropped, leaky (kept but flagged), kept although they look
    like identifiers, or type overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ignore: list[str] = Field(default_factory=list)
    leaky: list[str] = Field(default_factory=list)
    keep: list[str] = Field(default_factory=list)  # never treated as id-like
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)


class DatasetSpec(BaseModel):
    """Contents of an optional `dataset.yaml` next to the tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    label: LabelSpec | None = None
    columns: ColumnRoles = Field(default_factory=ColumnRoles)
    activity_groups: dict[str, list[str]] = Field(
        default_factory=lambda: {"sales_touch": list(DEFAULT_SALES_TOUCHES)}
    )
    # The export had no dates: created_at follows the order of this column (synthetic).
    time_order: str | None = None
    # What to do with activities or deals dated before their lead's created_at.
    early_events: Literal["error", "drop"] = "error"
    # lead_status: status value -> stage, on top of DEFAULT_STATUS_STAGES (a value listed
    # here wins over a default).
    status_stages: dict[Literal["new", "working", "accepted", "rejected"], list[str]] = Field(
        default_factory=dict
    )

    @field_validator("activity_groups")
    @classmethod
    def _groups_not_empty(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, members in groups.items():
            if not members:
                raise ValueError(f"activity group '{name}' lists no activity type")
        return groups

    @field_validator("status_stages")
    @classmethod
    def _status_once(cls, stages: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for stage, values in stages.items():
            for value in values:
                key = status_key(value)
                if not key:
                    raise ValueError(f"status_stages.{stage}: an empty status value")
                if seen.get(key, stage) != stage:
                    raise ValueError(
                        f"status {value!r} is listed under both {seen[key]} and {stage}"
                    )
                seen[key] = stage
        return stages

    @property
    def is_flat(self) -> bool:
        return self.label is not None

    @property
    def status_map(self) -> dict[str, str]:
        """Normalised status value -> stage: the defaults, then dataset.yaml's own."""
        out = {status_key(v): stage for stage, vs in DEFAULT_STATUS_STAGES.items() for v in vs}
        out.update({status_key(v): stage for stage, vs in self.status_stages.items() for v in vs})
        return out

    @property
    def sales_touch_types(self) -> tuple[str, ...]:
        return tuple(self.activity_groups.get("sales_touch", DEFAULT_SALES_TOUCHES))


def load_dataset_spec(path: Path) -> DatasetSpec:
    """Read `dataset.yaml`; a missing file means defaults, a malformed one a ConfigError."""
    return load_yaml_model(path, DatasetSpec) if path.exists() else DatasetSpec()


def load_yaml_model(path: str | Path, model: type[M], what: str = "config file") -> M:
    """A typed config from a YAML file: a ConfigError naming the file and key otherwise
    (`what` names the file in the error when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path.name}: {format_validation_error(exc, model)}") from exc


def format_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per pydantic error: `key.path: message`; an unknown key also names the keys
    allowed there (given the `model` validated)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden" and model is not None:
            allowed = _keys_at(model, err["loc"][:-1])
            if allowed:
                message += f" (allowed here: {', '.join(allowed)})"
        parts.append(f"{loc}: {message}")
    return "; ".join(parts)


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the model found at `loc` inside `model` (none when the path leads
    through something other than nested models)."""
    import typing

    current: object = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []
