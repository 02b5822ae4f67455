"""Import a foreign CRM export into the data contract through a column mapping (YAML).

A mapping renames the export's columns to the contract's (`lead_id`, `created_at`, ...),
maps values (a stage "Closed Won" to the status `won`), parses its date format (day-first,
a fixed `strptime` format, a local time zone), declares a flat file's outcome column and
its leaky or ignored columns, and can stand in for a missing creation time with the order
of a sequence column (X Education's `Lead Number`).

The import writes a dataset folder (tables + `dataset.yaml` + a copy of the mapping) under
a temporary name, loads it back through `crm.loading.load_dataset`, and renames it
into place only when it validates: a bad export writes nothing. Every error names the
mapping entry or the export's own file, column and row (rows are kept in file order, so a
row number of the written table is the export's row number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm.contract import (
    ACTIVITY_COLUMNS,
    ACTIVITY_OPTIONAL,
    DEAL_COLUMNS,
    DEAL_OPTIONAL,
    LEAD_COLUMNS,
    LabelSpec,
    load_yaml_model,
)
from crm.errors import ConfigError, DatasetError, LeadscoreError
from crm.folders import staged_folder
from crm.loading import Dataset, load_dataset

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

    columns: dict[str, str | Const] = Field(
        default_factory=dict,
        description="contract column -> the export's column (one export column may feed "
        "two contract columns), or {const: value}",
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
    leads: LeadsMapping = Field(default_factory=LeadsMapping)
    activities: TableMapping | None = None
    deals: TableMapping | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        tables = {
            "leads": (self.leads, LEAD_COLUMNS),
            "activities": (self.activities, ACTIVITY_COLUMNS + ACTIVITY_OPTIONAL),
            "deals": (self.deals, DEAL_COLUMNS + DEAL_OPTIONAL),
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
        if self.leads.time_order is not None and "created_at" in self.leads.columns:
            raise ValueError(
                "leads: give either columns.created_at or time_order (for exports without dates), not both"
            )
        if self.leads.outcome is not None and (self.activities or self.deals):
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


@dataclass(frozen=True)
class ImportResult:
    dataset: Dataset
    columns: dict[str, dict[str, str]]  # table -> export column -> dataset column(s)
    rows: dict[str, int]
    notes: list[str] = field(default_factory=list)  # what was adjusted, counted


def import_tables(
    mapping: Mapping,
    *,
    leads: str | Path,
    activities: str | Path | None = None,
    deals: str | Path | None = None,
    out_dir: str | Path,
    file_format: Literal["parquet", "csv"] = "parquet",
    overwrite: bool = False,
    mapping_file: str = "mapping.yaml",
    extra_files: dict[str, str] | None = None,
) -> ImportResult:
    """Map the export's files into a validated dataset folder at `out_dir`.

    Args:
        mapping: the parsed mapping.
        leads, activities, deals: the export's CSV files (activities and deals optional).
        out_dir: the dataset folder to write (refused when it exists and is not empty,
            unless `overwrite`).
        mapping_file: how to name the mapping in errors.
        extra_files: more files for the folder, name -> text (a built-in mapping's
            `rules.yaml`, the default rules of `train` and `compare` on that folder).

    Returns:
        the loaded dataset and, per table, which export column became which column.
    """
    sources = {"leads": leads, "activities": activities, "deals": deals}
    for table in ("activities", "deals"):
        if sources[table] is not None and getattr(mapping, table) is None:
            # No entry: the file already uses the contract's column names.
            mapping = mapping.model_copy(update={table: TableMapping()})
        if sources[table] is None and getattr(mapping, table) is not None:
            raise LeadscoreError(
                f"{mapping_file} maps {table} but no {table} file was given (--{table})"
            )
    out = Path(out_dir)
    frames: dict[str, pd.DataFrame] = {}
    columns: dict[str, dict[str, str]] = {}
    back: dict[str, dict[str, str]] = {}  # table -> dataset column -> export column
    files: dict[str, str] = {}
    notes: list[str] = []
    for table, src in sources.items():
        if src is None:
            continue
        path = Path(src)
        files[table] = path.name
        m = getattr(mapping, table)
        raw = _read_export(path, mapping)
        for i, lookup in enumerate(m.lookups):
            raw = _join_lookup(raw, lookup, path, mapping, f"{table}.lookups[{i}]", mapping_file)
        frames[table], back[table], table_notes = _map_table(
            table, raw, m, mapping, path.name, mapping_file
        )
        notes += table_notes
        columns[table] = {}
        for name, col in back[table].items():
            columns[table][col] = (
                f"{columns[table][col]}, {name}" if col in columns[table] else name
            )

    spec = _dataset_yaml(mapping, columns["leads"])
    with staged_folder(out, overwrite=overwrite) as tmp:
        for table, df in frames.items():
            if file_format == "parquet":
                df.to_parquet(tmp / f"{table}.parquet", index=False)
            else:
                df.to_csv(tmp / f"{table}.csv", index=False)
        (tmp / "dataset.yaml").write_text(spec)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        (tmp / "mapping.yaml").write_text(
            yaml.safe_dump(mapping.model_dump(exclude_defaults=True), sort_keys=False)
        )
        try:
            staged = load_dataset(tmp)
        except DatasetError as exc:
            raise _in_export_terms(exc, files, back, mapping_file) from None
    # The validated dataset, now at its final place: the same files, not read a second time.
    dataset = replace(staged, path=out)
    return ImportResult(dataset, columns, {t: len(df) for t, df in frames.items()}, notes)


# --- reading and mapping -------------------------------------------------------------------


def _read_export(path: Path, mapping: Mapping) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(str(path), "file not found")
    if path.stat().st_size == 0:
        raise DatasetError(path.name, "file is empty", expected="a header row and data rows")
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            sep=mapping.csv.delimiter,
            encoding=mapping.csv.encoding,
        )
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        LookupError,
    ) as exc:
        raise DatasetError(
            path.name,
            f"cannot be read as CSV ({exc})",
            expected=f"delimiter {mapping.csv.delimiter!r}, encoding {mapping.csv.encoding} "
            "(csv.delimiter / csv.encoding in the mapping)",
        ) from exc
    df.columns = [str(c).strip() for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise DatasetError(path.name, "duplicate column names", values=dupes)
    missing = {m.strip() for m in mapping.missing_values}
    for col in df.columns:
        text = df[col].str.strip()
        df[col] = text.where(~text.isin(missing) & (text != ""))
    return df


def _need(df: pd.DataFrame, column: str, entry: str, file: str, mapping_file: str) -> None:
    if column not in df.columns:
        shown = ", ".join(repr(c) for c in list(df.columns)[:12])
        raise ConfigError(
            f"{mapping_file}: {entry} names column {column!r}, which {file} does not have "
            f"(its columns: {shown}{', ...' if df.shape[1] > 12 else ''})"
        )


def _join_lookup(
    raw: pd.DataFrame,
    lookup: Lookup,
    table_file: Path,
    mapping: Mapping,
    entry: str,
    mapping_file: str,
) -> pd.DataFrame:
    """The export with a lookup file's columns joined on its key (left join: rows without
    a match keep blanks). A key that repeats in the lookup file is an error naming its rows."""
    path = Path(lookup.file)
    path = path if path.is_absolute() else table_file.parent / path
    other = _read_export(path, mapping)
    _need(raw, lookup.key, f"{entry}.key", table_file.name, mapping_file)
    _need(other, lookup.lookup_key, f"{entry}.lookup_key", path.name, mapping_file)
    wanted = (
        lookup.columns
        if lookup.columns is not None
        else [c for c in other.columns if c != lookup.lookup_key]
    )
    for col in wanted:
        _need(other, col, f"{entry}.columns", path.name, mapping_file)
    clash = [c for c in wanted if c in raw.columns]
    if clash:
        raise ConfigError(
            f"{mapping_file}: {entry} brings column {clash[0]!r}, which {table_file.name} has "
            "already; list the ones to bring under columns"
        )
    keys = other[lookup.lookup_key]
    repeated = keys.notna() & keys.duplicated(keep=False)
    if repeated.any():
        idx = np.flatnonzero(repeated.to_numpy())
        raise DatasetError(
            path.name,
            "the lookup key repeats",
            column=lookup.lookup_key,
            rows=(idx[:5] + 1).tolist(),
            values=keys.iloc[idx[:5]].tolist(),
            expected=f"one row per {lookup.lookup_key} ({entry})",
            total=len(idx),
        )
    table = other[[lookup.lookup_key, *wanted]].set_index(lookup.lookup_key)
    joined = table.reindex(raw[lookup.key].to_numpy())
    joined.index = raw.index
    return pd.concat([raw, joined], axis=1)


def _map_table(
    table: str,
    raw: pd.DataFrame,
    m: TableMapping,
    mapping: Mapping,
    file: str,
    mapping_file: str,
) -> tuple[pd.DataFrame, dict[str, str], list[str]]:
    """The contract's frame of one export file, dataset column -> export column, and notes."""
    required = {"leads": LEAD_COLUMNS, "activities": ACTIVITY_COLUMNS, "deals": DEAL_COLUMNS}[table]
    for target, col in m.columns.items():
        if not isinstance(col, Const):
            _need(raw, col, f"{table}.columns.{target}", file, mapping_file)
    for key in ("rename", "drop") + (("ignore", "leaky", "keep") if table == "leads" else ()):
        entries = getattr(m, key)
        for col in entries:
            _need(raw, col, f"{table}.{key}", file, mapping_file)
    if table == "leads":
        for key in ("outcome", "time_order"):
            spec = getattr(m, key)
            if spec is not None:
                _need(raw, spec.column, f"leads.{key}.column", file, mapping_file)

    # contract column -> export column or constant; one export column may feed two
    targets: dict[str, str | Const] = dict(m.columns)
    used = {c for c in targets.values() if isinstance(c, str)}
    optional = {"leads": (), "activities": ACTIVITY_OPTIONAL, "deals": DEAL_OPTIONAL}[table]
    for col in required + optional:
        if col not in targets and col in raw.columns and col not in used:
            targets[col] = col  # already named as the contract wants
            used.add(col)
    synthetic_created = table == "leads" and m.time_order is not None
    missing = [
        c for c in required if c not in targets and not (synthetic_created and c == "created_at")
    ]
    if missing:
        hint = (
            " (or leads.time_order when the export has no dates)"
            if missing[0] == "created_at" and table == "leads"
            else ""
        )
        raise ConfigError(
            f"{mapping_file}: {table}.columns.{missing[0]} is not mapped and {file} has no "
            f"{missing[0]!r} column; name the export column that holds it{hint}"
        )
    back: dict[str, str] = {  # dataset column -> export column (or the constant)
        name: (f"(constant {src.const!r})" if isinstance(src, Const) else src)
        for name, src in targets.items()
    }
    dropped = set(m.drop)
    for col in raw.columns:
        if col in used or col in dropped:
            continue
        if col in m.rename:
            name = m.rename[col]
        elif mapping.profile_names == "snake_case":
            name = snake_case(col) or col
        else:
            name = col
        if name in back:
            raise ConfigError(
                f"{mapping_file}: {file} columns {back[name]!r} and {col!r} would both be "
                f"named {name!r} in the dataset; rename one under {table}.rename"
            )
        back[name] = col
    if synthetic_created and "created_at" in back:
        raise ConfigError(
            f"{mapping_file}: leads.time_order makes created_at, but {file} column "
            f"{back['created_at']!r} is already named created_at"
        )

    for key in m.values:
        if key not in back and key not in raw.columns:
            raise ConfigError(
                f"{mapping_file}: {table}.values.{key} names neither a column of the dataset "
                f"nor of {file}"
            )

    out = pd.DataFrame(index=raw.index)
    for name, col in back.items():
        src = targets.get(name, col)
        if isinstance(src, Const):
            values = pd.Series(str(src.const), index=raw.index, dtype=object)
        else:
            values = raw[src]
        vmap = m.values.get(name, m.values.get(src if isinstance(src, str) else None))
        if vmap is not None:
            values = _map_values(values, vmap)
        out[name] = values

    notes = []
    timestamp_columns = {
        "leads": ("created_at",),
        "activities": ("occurred_at",),
        "deals": ("created_at", "closed_at"),
    }[table]
    for name in timestamp_columns:
        if name in out.columns:
            out[name], shifted = _parse_dates(
                out[name], mapping.dates, file, back[name], mapping_file
            )
            if shifted:
                notes.append(
                    f"{file}, column {back[name]!r}: {shifted:,} local time"
                    f"{'s' if shifted > 1 else ''} in a daylight-saving gap of "
                    f"{mapping.dates.timezone} (a clock time that did not exist) shifted "
                    "forward to the first valid time"
                )
    if synthetic_created:
        out.insert(1, "created_at", _times_from_order(raw, m.time_order, file))
        back["created_at"] = "(order of " + m.time_order.column + ")"
    front = [c for c in required if c in out.columns]
    out = out[front + [c for c in out.columns if c not in front]]
    return out.reset_index(drop=True), back, list(dict.fromkeys(notes))


def _map_values(values: pd.Series, vmap: dict) -> pd.Series:
    """Replace listed values; '*' replaces every other non-missing value."""
    table = {str(k).strip(): v for k, v in vmap.items() if k != ANY_OTHER}
    mapped = values.map(lambda v: table.get(v, v) if isinstance(v, str) else v)
    if ANY_OTHER in vmap:
        other = vmap[ANY_OTHER]
        listed = values.isin(list(table))
        mapped = mapped.where(listed | values.isna(), other)
    return mapped.map(
        lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
    )


def _parse_dates(
    text: pd.Series, fmt: DateFormat, file: str, column: str, mapping_file: str
) -> tuple[pd.Series, int]:
    """Export timestamps as UTC, and how many local times fell in a daylight-saving gap
    (shifted forward to the first valid time, as a CRM that stored "00:30" on a night
    when clocks jumped from 00:00 to 01:00 meant); unparseable cells (and a repeated,
    ambiguous local hour) are an error naming the export's rows.

    Without a fixed format, the format is inferred from the column (fast: one vectorised
    parse), and only the cells it does not fit are parsed one by one (exports that mix
    "2025-01-02" and "2025-01-02T10:00:00Z", say).
    """
    present = text.notna()
    shifted = 0
    try:
        if fmt.format is not None:
            parsed = pd.to_datetime(text, format=fmt.format, errors="coerce")
        else:
            parsed = pd.to_datetime(text, dayfirst=fmt.dayfirst, errors="coerce")
        utc, shifted = _to_utc(parsed, fmt.timezone)
    except (ValueError, TypeError):  # mixed offsets and naive values: all one by one
        utc = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    left = present & utc.isna()
    if left.any() and fmt.format is None:
        cells = [_one_date(v, fmt) for v in text[left]]
        utc[left] = [ts for ts, _ in cells]
        shifted += sum(moved for _, moved in cells)
    bad = present & utc.isna()
    if bad.any():
        if fmt.format is not None:
            how = f"the format {fmt.format!r} (dates.format in {mapping_file})"
        elif fmt.dayfirst:
            how = f"day-first dates such as 31/12/2025 (dates.dayfirst in {mapping_file})"
        else:
            how = (
                "dates such as 2025-12-31 or 12/31/2025 (set dates.dayfirst or dates.format "
                f"in {mapping_file} for other orders)"
            )
        if fmt.timezone != "UTC":
            how += f", as a time that exists in {fmt.timezone}"
        idx = np.flatnonzero(bad.to_numpy())
        raise DatasetError(
            file,
            "unparseable date",
            column=column,
            rows=(idx[:5] + 1).tolist(),
            values=text.iloc[idx[:5]].tolist(),
            expected=how,
            total=int(bad.sum()),
        )
    return utc, int(shifted)


def _one_date(value: str, fmt: DateFormat) -> tuple[pd.Timestamp, bool]:
    """One cell the column's inferred format did not fit (NaT when it does not parse), and
    whether it was shifted out of a daylight-saving gap."""
    try:
        ts = pd.Timestamp(pd.to_datetime(value, dayfirst=fmt.dayfirst))
        if ts.tzinfo is not None:
            return ts.tz_convert("UTC"), False
        local = ts.tz_localize(fmt.timezone, ambiguous="NaT", nonexistent="shift_forward")
        gap = pd.isna(ts.tz_localize(fmt.timezone, ambiguous="NaT", nonexistent="NaT"))
        return local.tz_convert("UTC"), bool(gap and pd.notna(local))
    except (ValueError, TypeError, OverflowError):  # includes ambiguous local times
        return pd.NaT, False


def _to_utc(parsed: pd.Series, zone: str) -> tuple[pd.Series, int]:
    """Naive timestamps are in `zone`: a local time in a daylight-saving gap moves forward
    to the first valid time (counted); a repeated, ambiguous hour becomes NaT."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), 0
    strict = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    local = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    shifted = int((strict.isna() & local.notna() & parsed.notna()).sum())
    return local.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), shifted


def _times_from_order(raw: pd.DataFrame, order: TimeOrder, file: str) -> pd.Series:
    """Synthetic creation times: leads spread evenly over `days`, in the column's order."""
    text = raw[order.column]
    numbers = pd.to_numeric(text, errors="coerce")
    bad = text.isna() | (numbers.isna() if numbers.notna().any() else False)
    if np.asarray(bad).any():
        idx = np.flatnonzero(np.asarray(bad))
        raise DatasetError(
            file,
            "empty or non-numeric value in the time-order column",
            column=order.column,
            rows=(idx[:5] + 1).tolist(),
            values=text.iloc[idx[:5]].tolist(),
            expected="a number that grows with time in every row (leads.time_order)",
            total=len(idx),
        )
    key = numbers if numbers.notna().any() else text
    rank = key.rank(method="min").to_numpy() - 1  # ties share a time
    step = pd.Timedelta(seconds=int(order.days * 86_400 // max(len(raw), 1)))
    start = pd.Timestamp(order.start, tz="UTC")
    return pd.Series(start + step * rank.astype(np.int64), index=raw.index).astype(
        "datetime64[us, UTC]"
    )


def _dataset_yaml(mapping: Mapping, names: dict[str, str]) -> str:
    m = mapping.leads
    ignore = [names[c] for c in m.ignore]
    if m.time_order is not None and m.time_order.column in names:
        order_col = names[m.time_order.column]
        if order_col != "lead_id" and order_col not in ignore:
            ignore.append(order_col)  # it is the clock now, not a profile attribute
    body: dict = {"name": mapping.name or "import"}
    if m.outcome is not None:
        body["label"] = {"column": names[m.outcome.column], "positive": list(m.outcome.positive)}
    columns = {
        "ignore": ignore,
        "leaky": [names[c] for c in m.leaky],
        "keep": [names[c] for c in m.keep],
    }
    body["columns"] = {k: v for k, v in columns.items() if v}
    if m.time_order is not None:
        body["time_order"] = m.time_order.column
    if mapping.early_events is not None:
        body["early_events"] = mapping.early_events
    header = f"# written by `leadscore import` from the mapping {mapping.name or ''}\n"
    if m.time_order is not None:
        header += (
            f"# created_at is synthetic: the export has no dates, so leads are spread evenly over "
            f"{m.time_order.days:g} days in the order of {m.time_order.column!r}\n"
        )
    return header + yaml.safe_dump(body, sort_keys=False)


def _in_export_terms(
    exc: DatasetError, files: dict[str, str], back: dict[str, dict[str, str]], mapping_file: str
) -> DatasetError:
    """A loader error about the written table, restated with the export's file and column,
    and a hint that fits the error (values, dates or the column's mapping)."""
    table = next((t for t in files if exc.file.startswith(f"{t}.")), None)
    if table is None:
        return exc
    column = back[table].get(exc.column, exc.column) if exc.column else None
    expected = exc.expected
    if exc.column and exc.column != column:
        becomes = f"this column becomes {exc.column!r}"
        problem = exc.problem.lower()
        if "timestamp" in problem or "date" in problem or exc.column.endswith("_at"):
            hint = f"{becomes}: check dates.format / dates.dayfirst in {mapping_file}"
            if "before the lead's created_at" in problem:
                hint = (
                    f"{becomes}; early_events: drop in {mapping_file} drops and counts such "
                    "rows instead"
                )
        elif problem.startswith("empty") or "duplicate" in problem or "not found" in problem:
            hint = f"{becomes}: map another export column under {table}.columns.{exc.column}"
        else:
            hint = f"{becomes}: map its values under {table}.values.{exc.column} in {mapping_file}"
        expected = (expected + " " if expected else "") + f"({hint})"
    return DatasetError(
        files[table],
        exc.problem,
        column=column,
        rows=exc.rows,
        values=exc.values,
        expected=expected,
        total=exc.total,
    )
