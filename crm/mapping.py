"""The column mapping (YAML) through which a foreign CRM export is imported
(`leadscore.crm.importer`): its schema, loading it, and the built-in mappings of public datasets.

A mapping renames the export's columns to the contract's (`lead_id`, `created_at`, ...),
maps values (a stage "Closed Won" to the status `won`), parses its date format (day-first,
a fixed `strptime` format, a local time zone), declares a flat file's outcome column and
its leaky or ignored columns, and can stand in for a missing creation time with the order
of a sequence column (X Education's `Lead Number`).

"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.crm.contract import (
    ACTIVITY_COLUMNS,
    ACTIVITY_OPTIONAL,
    DEAL_COLUMNS,
    DEAL_OPTIONAL,
    LEAD_COLUMNS,
    LEAD_OPTIONAL,
    STATUS_COLUMNS,
    STATUS_OPTIONAL,
    DatasetSpec,
    LabelSpec,
    load_yaml_model,
)
from leadscore.crm.errors import ConfigError

# Value-map key that stands for "any value not listed".
ANY_OTHER = "*"
BUILTIN_MAPPINGS = ("xeducation",)


class DateFormat(BaseModel):
    """How the export writes its timestamps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str | None = Field(
        None, description="strptime format such as '%d/%m/%Y %H:%M'; default: inferred"
    )
    dayfirst: bool = Field(False, description="03/04/2025 is 3 April (when format is not given)")
    timezone: str = Field("UTC", description="zone of timestamps written without an offset")

    @model_validator(mode="after")
    def _known_zone(self) -> DateFormat:
        try:
            pd.Timestamp("2025-01-01").tz_localize(self.timezone)
        except (KeyError, ValueError, TypeError, OSError) as exc:  # zoneinfo / pytz / pandas
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        return self


class CsvFormat(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8"


class TimeOrder(BaseModel):
    """No creation time in the export: spread leads evenly over `days` in this column's order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    start: str = "2020-01-01"
    days: float = Field(365.0, gt=0)


class Const(BaseModel):
    """A contract column with the same value in every row (`status: {const: won}` for an
    export of won deals only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    const: str | int | float | bool


class Generated(BaseModel):
    """An id the export does not have (`deal_id: {generate: hash}`): a hash of the row's
    own values, the same on every import of the same row; rows that are identical get
    `-2`, `-3` ... in their order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generate: Literal["hash"]


class OnePer(BaseModel):
    """One row per key: of the rows sharing `column`'s value, the first or the last by
    `order` (an export column of times, read with the mapping's `dates`). For exports that
    are event logs: the decision event of each application becomes its deal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(description="the export column whose value identifies the key")
    order: str = Field(description="the export column of times that orders the rows")
    keep: Literal["first", "last"] = "last"


class Lookup(BaseModel):
    """Columns joined from another file by a key (accounts onto opportunities, say): they
    then count as the export's own columns (map, rename, ignore them as any other)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str = Field(description="CSV next to the table's file (or an absolute path)")
    key: str = Field(description="the key column of the table's export file")
    lookup_key: str = Field(description="the matching column of the lookup file (unique there)")
    columns: list[str] | None = Field(None, description="columns to bring; default: all")


class TableMapping(BaseModel):
    """How one export file becomes one contract table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: dict[str, str | Const | Generated] = Field(
        default_factory=dict,
        description="contract column -> the export's column (one export column may feed "
        "two contract columns), {const: value}, or {generate: hash} for an id the export "
        "does not have",
    )
    where: dict[str, list[str | int | float | bool]] = Field(
        default_factory=dict,
        description="keep only the rows whose export column holds one of these values "
        "(every condition must hold): an event log's decision events, say",
    )
    one_per: OnePer | None = Field(
        None, description="one row per key, the first or last in time (after `where`)"
    )
    lookups: list[Lookup] = Field(default_factory=list, description="files joined by a key")
    rename: dict[str, str] = Field(
        default_factory=dict, description="other export column -> name in the dataset"
    )
    values: dict[str, dict[str, str | int | float | bool | None]] = Field(
        default_factory=dict,
        description="column (contract name or export name) -> {export value: value}; "
        f"'{ANY_OTHER}' maps every value not listed, null means missing",
    )
    drop: list[str] = Field(default_factory=list, description="export columns not written")


class LeadsMapping(TableMapping):
    outcome: LabelSpec | None = None  # the outcome column of a flat export
    time_order: TimeOrder | None = None
    ignore: list[str] = Field(
        default_factory=list, description="export columns written but not used as features"
    )
    leaky: list[str] = Field(
        default_factory=list, description="export columns recorded after the outcome (excluded)"
    )
    keep: list[str] = Field(
        default_factory=list, description="export columns used as features even if id-like"
    )
    categorical: list[str] = Field(
        default_factory=list,
        description="export columns read as categories even when their values are numbers "
        "(codes: a law article, an officer id)",
    )
    numeric: list[str] = Field(default_factory=list, description="export columns read as numbers")


class Mapping(BaseModel):
    """A mapping file: how an export's files become a dataset folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    csv: CsvFormat = Field(default_factory=CsvFormat)
    missing_values: list[str] = Field(
        default_factory=list, description="cell values that mean 'left blank' (besides empty)"
    )
    dates: DateFormat = Field(default_factory=DateFormat)
    profile_names: Literal["snake_case", "keep"] = "snake_case"
    # activities or deals dated before their lead was created: an error, or dropped and
    # counted (written to dataset.yaml: `validate`, `train` and the rest apply it too)
    early_events: Literal["error", "drop"] | None = None
    activity_groups: dict[str, list[str]] | None = Field(
        None,
        description="named groups of activity types (after `values`), written to "
        "dataset.yaml: `sales_touch` is the sales touches of speed to lead",
    )
    status_stages: dict[Literal["new", "working", "accepted", "rejected"], list[str]] | None = (
        Field(
            None,
            description="lead_status: the export's status values per stage (after `values`), "
            "written to dataset.yaml on top of the big CRMs' usual values",
        )
    )
    leads: LeadsMapping = Field(default_factory=LeadsMapping)
    activities: TableMapping | None = None
    deals: TableMapping | None = None
    lead_status: TableMapping | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        tables = {
            "leads": (self.leads, LEAD_COLUMNS + LEAD_OPTIONAL),
            "activities": (self.activities, ACTIVITY_COLUMNS + ACTIVITY_OPTIONAL),
            "deals": (self.deals, DEAL_COLUMNS + DEAL_OPTIONAL),
            "lead_status": (self.lead_status, STATUS_COLUMNS + STATUS_OPTIONAL),
        }
        for table, (m, allowed) in tables.items():
            if m is None:
                continue
            unknown = [c for c in m.columns if c not in allowed]
            if unknown:
                raise ValueError(
                    f"{table}.columns: {unknown[0]!r} is not a column of the {table} table "
                    f"(its columns: {', '.join(allowed)}); other columns go under {table}.rename"
                )
        for table, (m, _) in tables.items():
            for target, src in m.columns.items() if m is not None else ():
                if isinstance(src, Generated) and target not in ("lead_id", "deal_id"):
                    raise ValueError(
                        f"{table}.columns.{target}: only an id (lead_id, deal_id) can be generated"
                    )
        both = sorted(set(self.leads.categorical) & set(self.leads.numeric))
        if both:
            raise ValueError(f"leads: {both[0]!r} is listed under both categorical and numeric")
        if self.leads.time_order is not None and "created_at" in self.leads.columns:
            raise ValueError(
                "leads: give either columns.created_at or time_order (for exports without dates), not both"
            )
        if self.status_stages:  # the same checks as dataset.yaml's, here at the mapping
            DatasetSpec(status_stages=self.status_stages)
        if self.leads.outcome is not None and (self.activities or self.deals or self.lead_status):
            raise ValueError(
                "leads.outcome declares a flat export: it cannot also have activities or deals"
            )
        return self


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping YAML: a ConfigError naming the file and key when it is malformed."""
    return load_yaml_model(path, Mapping, "mapping file")


def builtin_mapping_path(name: str) -> Path:
    """The mapping shipped for a public dataset (`crm/mappings/<name>.yaml`)."""
    if name not in BUILTIN_MAPPINGS:
        raise ConfigError(f"no built-in mapping {name!r}; known: {', '.join(BUILTIN_MAPPINGS)}")
    return Path(str(resources.files("crm") / "mappings" / f"{name}.yaml"))


def builtin_rules_path(name: str) -> Path | None:
    """The points rules shipped with a public dataset's mapping, if any."""
    builtin_mapping_path(name)  # an unknown name is a ConfigError naming the known ones
    path = Path(str(resources.files("crm") / "mappings" / f"{name}.rules.yaml"))
    return path if path.is_file() else None


def snake_case(name: str) -> str:
    """'Total Time Spent on Website' -> 'total_time_spent_on_website'."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
