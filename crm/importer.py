"""Import a foreign CRM export into the data contract through a column mapping
(`leadscore.crm.mapping`).

The import reads the export's files (joining lookup files such as an accounts table), maps
their columns and values, parses their dates (`leadscore.crm.dates`), and writes a dataset folder
(tables + `dataset.yaml` + a copy of the mapping) under a temporary name, loads it back
through `leadscore.crm.loading.load_dataset`, and renames it into place only when it validates: a bad
export writes nothing. Every error names the mapping entry or the export's own file, column
and row (rows are kept in file order, so a row number of the written table is the export's
row number).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml

from leadscore.crm.contract import (
    ACTIVITY_COLUMNS,
    ACTIVITY_OPTIONAL,
    DEAL_COLUMNS,
    DEAL_OPTIONAL,
    LEAD_COLUMNS,
    LEAD_OPTIONAL,
    STATUS_COLUMNS,
    STATUS_OPTIONAL,
)
from leadscore.crm.dataset import Dataset
from leadscore.crm.dates import parse_dates, times_from_order
from leadscore.crm.errors import ConfigError, DatasetError, LeadscoreError
from leadscore.crm.folders import staged_folder
from leadscore.crm.loading import load_dataset
from leadscore.crm.mapping import (
    ANY_OTHER,
    Const,
    Generated,
    Lookup,
    Mapping,
    TableMapping,
    snake_case,
)


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
    lead_status: str | Path | None = None,
    out_dir: str | Path,
    file_format: Literal["parquet", "csv"] = "parquet",
    overwrite: bool = False,
    mapping_file: str = "mapping.yaml",
    extra_files: dict[str, str] | None = None,
) -> ImportResult:
    """Map the export's files into a validated dataset folder at `out_dir`.

    Args:
        mapping: the parsed mapping.
        leads, activities, deals, lead_status: the export's CSV files (all but leads
            optional; lead_status is the lead-status history).
        out_dir: the dataset folder to write (refused when it exists and is not empty,
            unless `overwrite`).
        mapping_file: how to name the mapping in errors.
        extra_files: more files for the folder, name -> text (a built-in mapping's
            `rules.yaml`, the default rules of `train` and `compare` on that folder).

    Returns:
        the loaded dataset and, per table, which export column became which column.
    """
    sources = {
        "leads": leads,
        "activities": activities,
        "deals": deals,
        "lead_status": lead_status,
    }
    for table in ("activities", "deals", "lead_status"):
        if sources[table] is not None and getattr(mapping, table) is None:
            # No entry: the file already uses the contract's column names.
            mapping = mapping.model_copy(update={table: TableMapping()})
        if sources[table] is None and getattr(mapping, table) is not None:
            raise LeadscoreError(
                f"{mapping_file} maps {table} but no {table} file was given "
                f"(--{table.replace('_', '-')})"
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
        raw = _select_rows(raw, table, m, mapping, path.name, mapping_file)
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
    required = {
        "leads": LEAD_COLUMNS,
        "activities": ACTIVITY_COLUMNS,
        "deals": DEAL_COLUMNS,
        "lead_status": STATUS_COLUMNS,
    }[table]
    for target, col in m.columns.items():
        if isinstance(col, str):
            _need(raw, col, f"{table}.columns.{target}", file, mapping_file)
    roles = ("ignore", "leaky", "keep", "categorical", "numeric")
    for key in ("rename", "drop") + (roles if table == "leads" else ()):
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
    optional = {
        "leads": LEAD_OPTIONAL,
        "activities": ACTIVITY_OPTIONAL,
        "deals": DEAL_OPTIONAL,
        "lead_status": STATUS_OPTIONAL,
    }[table]
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
        name: (
            f"(constant {src.const!r})"
            if isinstance(src, Const)
            else "(generated from the row)"
            if isinstance(src, Generated)
            else src
        )
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
        elif isinstance(src, Generated):
            values = _generated_ids(raw, table)
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
        "lead_status": ("changed_at",),
    }[table]
    for name in timestamp_columns:
        if name in out.columns:
            out[name], shifted = parse_dates(
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
        out.insert(1, "created_at", times_from_order(raw, m.time_order, file))
        back["created_at"] = "(order of " + m.time_order.column + ")"
    front = [c for c in required if c in out.columns]
    out = out[front + [c for c in out.columns if c not in front]]
    return out.reset_index(drop=True), back, list(dict.fromkeys(notes))


def _select_rows(
    raw: pd.DataFrame, table: str, m: TableMapping, mapping: Mapping, file: str, mapping_file: str
) -> pd.DataFrame:
    """The rows the mapping keeps: those that meet every `where` condition, then one per
    `one_per` key (the first or last in time). The index stays the export's row order, so
    errors still name the export's rows."""
    for col, allowed in m.where.items():
        _need(raw, col, f"{table}.where", file, mapping_file)
        wanted = {str(v) for v in allowed}
        raw = raw[raw[col].astype("string").isin(wanted).fillna(False).to_numpy(dtype=bool)]
    if m.one_per is not None:
        for col in (m.one_per.column, m.one_per.order):
            _need(raw, col, f"{table}.one_per", file, mapping_file)
        when, _ = parse_dates(
            raw[m.one_per.order], mapping.dates, file, m.one_per.order, mapping_file
        )
        order = pd.DataFrame({"key": raw[m.one_per.column].astype("string"), "when": when,
                              "row": np.arange(len(raw))})  # fmt: skip
        order = order.sort_values(["key", "when", "row"], kind="stable", na_position="first")
        chosen = order.drop_duplicates("key", keep=m.one_per.keep)["row"].to_numpy()
        raw = raw.iloc[np.sort(chosen)]
    return raw


def _generated_ids(raw: pd.DataFrame, table: str) -> pd.Series:
    """Ids from the rows' own values (`Generated`): the same row gets the same id on every
    import; identical rows are told apart by `-2`, `-3` ... in their order."""
    hashed = pd.util.hash_pandas_object(raw.astype("string"), index=False).to_numpy()
    base = pd.Series([f"{table[:1]}{h:016x}" for h in hashed], index=raw.index, dtype=object)
    copy = base.groupby(base, sort=False).cumcount().to_numpy()
    return base.where(copy == 0, base + "-" + pd.Series(copy + 1, index=raw.index).astype(str))


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
        "categorical": [names[c] for c in m.categorical],
        "numeric": [names[c] for c in m.numeric],
    }
    body["columns"] = {k: v for k, v in columns.items() if v}
    if m.time_order is not None:
        body["time_order"] = m.time_order.column
    if mapping.early_events is not None:
        body["early_events"] = mapping.early_events
    if mapping.activity_groups is not None:
        body["activity_groups"] = {k: list(v) for k, v in mapping.activity_groups.items()}
    if mapping.status_stages:
        body["status_stages"] = {k: list(v) for k, v in mapping.status_stages.items()}
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
        elif table == "lead_status" and exc.column == "status":
            hint = (
                f"{becomes}: list the value under status_stages in {mapping_file}, or map it "
                f"under lead_status.values.status"
            )
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
