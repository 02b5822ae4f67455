"""Load a dataset folder, normalise its types and validate it against the data contract.

A dataset is a folder with `leads`, optional `activities` and `deals` (each `.csv` or
`.parquet`) and an optional `dataset.yaml`. Every violation raises a `DatasetError` naming
the file, the column and the first offending rows; nothing is returned half-checked.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from leadscore.crm.activity_table import ActivityTable
from leadscore.crm.contract import (
    ACTIVITY_COLUMNS,
    ACTIVITY_OPTIONAL,
    DEAL_COLUMNS,
    DEAL_OPTIONAL,
    DEAL_STATUSES,
    FORMATS,
    LEAD_COLUMNS,
    LEAD_OPTIONAL,
    TABLES,
    UNKNOWN_SOURCE,
    DatasetSpec,
    load_dataset_spec,
)
from leadscore.crm.errors import DatasetError, LeadscoreError
from leadscore.crm.lead_index import LeadIndex, lead_positions
from leadscore.crm.times import timestamps_us

TIMESTAMP_DTYPE = "datetime64[us, UTC]"
ISO_HINT = "an ISO-8601 timestamp such as 2025-03-01T09:30:00Z (UTC when no offset)"
NEGATIVE_LABELS = ("0", "false", "no")
# Rows of the activity export checked at a time: memory stays bounded by a batch.
BATCH_ROWS = 1_000_000
CSV_BLOCK_BYTES = 64 << 20


@dataclass(frozen=True)
class Dataset:
    """A validated dataset: typed frames of leads and deals, the activity events out of core
    (`activity_table`), and the spec they were read with."""

    path: Path
    spec: DatasetSpec
    files: dict[str, str]
    leads: pd.DataFrame
    activity_table: ActivityTable
    deals: pd.DataFrame
    profile_columns: tuple[str, ...]
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def activities(self) -> pd.DataFrame:
        """Every activity as one pandas frame (lead_id, occurred_at, activity_type, value,
        campaign, extra columns). For small datasets and tests: the batch engines query
        `activity_table` and never build this."""
        return self.activity_table.frame(self.leads["lead_id"])

    def __post_init__(self) -> None:
        # The activity table points at leads by row: it must be the table of these leads.
        built_for = self.activity_table.lead_ids
        if len(self.activity_table) and built_for is not None:
            ids = self.leads["lead_id"]
            if not (built_for is ids or built_for.equals(ids)):
                raise ValueError(
                    "the activity table was built for other leads: use Dataset.with_tables"
                )

    def with_tables(
        self,
        *,
        leads: pd.DataFrame | None = None,
        activities: pd.DataFrame | None = None,
        deals: pd.DataFrame | None = None,
    ) -> Dataset:
        """The same dataset with other (normalised) tables; the activity table is rebuilt for
        the new leads when they change."""
        from dataclasses import replace

        new_leads = self.leads if leads is None else leads
        if activities is None and leads is not None:
            activities = self.activities
        table = (
            self.activity_table
            if activities is None
            else ActivityTable.of_frame(activities, new_leads["lead_id"])
        )
        return replace(
            self,
            leads=new_leads,
            activity_table=table,
            deals=self.deals if deals is None else deals,
        )

    @property
    def is_flat(self) -> bool:
        return self.spec.is_flat

    @property
    def label_column(self) -> str | None:
        return self.spec.label.column if self.spec.label else None

    @property
    def data_start(self) -> pd.Timestamp:
        return self.leads["created_at"].min()

    @property
    def data_end(self) -> pd.Timestamp:
        """The latest timestamp anywhere in the dataset: where censoring starts."""
        if self.activity_table.unread:
            raise LeadscoreError(
                f"{self.path}: the activities were left to another engine; its data end is "
                "the latest of theirs and data_end_without_activities()"
            )
        end = self.data_end_without_activities()
        if self.activity_table.t_max_us is not None:
            end = max(end, pd.Timestamp(self.activity_table.t_max_us, unit="us", tz="UTC"))
        return end

    def data_end_without_activities(self) -> pd.Timestamp:
        """The latest timestamp of the leads and deals."""
        stamps = [self.leads["created_at"].max()]
        if len(self.deals):
            stamps.append(self.deals["created_at"].max())
            closed = self.deals["closed_at"].max()
            if pd.notna(closed):
                stamps.append(closed)
        return max(stamps)


def load_dataset(
    path: str | Path, *, early_events: str | None = None, activities: bool = True
) -> Dataset:
    """Read, normalise and validate the dataset folder at `path`.

    Args:
        path: the dataset folder.
        early_events: "error" or "drop" for activities/deals dated before their lead was
            created; overrides `early_events` of dataset.yaml when given.
        activities: False to leave the activity export unread, for an engine that reads
            and checks it itself (`leadscore.features.spark_engine`); `activity_table` is then empty
            and `unread`.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(
            str(root),
            "dataset folder not found",
            expected="a folder holding leads.csv or leads.parquet",
        )
    spec = load_dataset_spec(root / "dataset.yaml")
    if early_events is not None:
        spec = spec.model_copy(update={"early_events": early_events})

    files = {name: _find_table(root, name) for name in TABLES}
    if files["leads"] is None:
        raise DatasetError(str(root), "no leads table", expected="leads.csv or leads.parquet")
    if spec.is_flat:
        for name in ("activities", "deals"):
            if files[name] is not None:
                raise DatasetError(
                    files[name].name,
                    "a flat dataset (dataset.yaml declares a label column) cannot also have "
                    f"{name}",
                    expected="either a label column or activities/deals history, not both",
                )

    leads_file = files["leads"].name
    leads, profile_columns = _normalise_leads(_read_table(files["leads"]), leads_file, spec)
    dropped: dict[str, int] = {}

    if files["activities"] is not None and not activities:
        table = ActivityTable(unread=True)
    elif files["activities"] is not None:
        table, n = _load_activities(files["activities"], leads, spec.early_events)
        if n:
            dropped["activities_before_lead_created"] = n
    else:
        table = ActivityTable()

    if files["deals"] is not None:
        raw_deals = _read_table(files["deals"])
        deals, lead_rows = _normalise_deals(raw_deals, files["deals"].name, leads)
        deals, n, _ = _check_early(
            deals, lead_rows, "created_at", files["deals"].name, leads, spec.early_events
        )
        if n:
            dropped["deals_before_lead_created"] = n
    else:
        deals = _empty_deals()

    return Dataset(
        path=root,
        spec=spec,
        files={k: v.name for k, v in files.items() if v is not None},
        leads=leads,
        activity_table=table,
        deals=deals,
        profile_columns=profile_columns,
        dropped=dropped,
    )


# --- reading -----------------------------------------------------------------------------


def _find_table(root: Path, name: str) -> Path | None:
    found = [root / f"{name}{ext}" for ext in FORMATS if (root / f"{name}{ext}").is_file()]
    if len(found) > 1:
        raise DatasetError(
            str(root),
            f"both {found[0].name} and {found[1].name} exist",
            expected=f"one {name} table, CSV or Parquet",
        )
    return found[0] if found else None


def _read_table(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DatasetError(path.name, "file is empty", expected="a header row and data rows")
    try:
        if path.suffix == ".csv":
            # Everything as text first: types are decided (and errors reported) by us.
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(
            path.name, "file is empty", expected="a header row and data rows"
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DatasetError(path.name, f"cannot be read ({exc})") from exc
    df.columns = _column_names(path, df.columns)
    return df.reset_index(drop=True)


def _load_activities(
    path: Path, leads: pd.DataFrame, early_events: str
) -> tuple[ActivityTable, int]:
    """Check the activity export batch by batch into an `ActivityTable`: the same checks as
    one frame would get, with rows counted from the file's start. The first failing check
    raises; the other batches are still read so that its total counts every row."""
    file = path.name
    names, batches = _batches(path)
    header = pd.DataFrame(columns=names)
    _require_columns(header, file, ACTIVITY_COLUMNS)
    table = ActivityTable(
        [c for c in names if c not in ACTIVITY_COLUMNS + ACTIVITY_OPTIONAL], leads["lead_id"]
    )
    lookup = LeadIndex(leads["lead_id"])
    offset = dropped = 0
    # A checked batch goes into the table on a second thread (DuckDB's insert lets go of
    # the interpreter) while the next one is checked here.
    with ThreadPoolExecutor(1, thread_name_prefix="leadscore-append") as appender:
        pending = None
        for batch in batches:
            try:
                acts, lead_rows, n = _checked_batch(batch, file, leads, early_events, lookup)
            except DatasetError as exc:
                raise _counted(exc, offset, batches, leads, early_events, lookup) from None
            if pending is not None:
                pending.result()
            pending = appender.submit(table.append, acts, lead_rows)
            dropped += n
            offset += len(batch)
        if pending is not None:
            pending.result()
    return table, dropped


def check_activity_batch(
    frame: pd.DataFrame,
    file: str,
    leads: pd.DataFrame,
    early_events: str,
    lookup: LeadIndex | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contract's checks of one batch of activity rows (for engines that read the export
    themselves, such as Spark's executors): each kept row's lead position in `leads`
    (lead_id and created_at suffice), its time in µs and its activity type (text). Raises a
    DatasetError as `load_dataset` would, with rows counted from the batch's start."""
    acts, lead_rows, _ = _checked_batch(frame, file, leads, early_events, lookup)
    kinds = acts["activity_type"].astype("object").to_numpy()
    return lead_rows, timestamps_us(acts["occurred_at"]), kinds


def _checked_batch(
    frame: pd.DataFrame,
    file: str,
    leads: pd.DataFrame,
    early_events: str,
    lookup: LeadIndex | None,
) -> tuple[pd.DataFrame, np.ndarray, int]:
    """One batch of activity rows through the contract's checks: the kept rows
    (normalised), their leads' positions and how many were dropped as early events."""
    acts, lead_rows = _normalise_activities(frame, file, leads, lookup)
    acts, n, keep = _check_early(acts, lead_rows, "occurred_at", file, leads, early_events)
    return acts, (lead_rows[keep] if n else lead_rows), n


def table_columns(path: Path) -> list[str]:
    """The (stripped) column names of an activity export, checked: no duplicate, every
    required column there."""
    names, _ = _batches(path)
    _require_columns(pd.DataFrame(columns=names), path.name, ACTIVITY_COLUMNS)
    return names


def _counted(
    exc: DatasetError,
    offset: int,
    rest: Iterator[pd.DataFrame],
    leads: pd.DataFrame,
    early_events: str,
    lookup: LeadIndex,
) -> DatasetError:
    """`exc` (raised on a batch starting at row `offset`) with file rows, its total counted
    over the rest of the file too ("at least" when a later batch fails another check first)."""
    total, sure = exc.total, True
    while True:
        try:
            batch = next(rest)
        except StopIteration:
            break
        except DatasetError:  # the rest cannot be read: count what was
            sure = False
            break
        try:
            _checked_batch(batch, exc.file, leads, early_events, lookup)
        except DatasetError as later:
            if (later.column, later.problem) == (exc.column, exc.problem):
                total += later.total
            else:
                sure = False
    return DatasetError(
        exc.file,
        exc.problem,
        column=exc.column,
        rows=[r + offset for r in exc.rows],
        values=exc.values,
        expected=exc.expected,
        total=total,
        at_least=not sure,
    )


def _batches(path: Path) -> tuple[list[str], Iterator[pd.DataFrame]]:
    """The column names of a table file and its rows as pandas frames of about `BATCH_ROWS`
    (text cells for CSV, as `_read_table` reads them)."""
    if path.stat().st_size == 0:
        raise DatasetError(path.name, "file is empty", expected="a header row and data rows")
    try:
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                raw_names = next(csv.reader(f), None)
            if not raw_names:
                raise DatasetError(
                    path.name, "file is empty", expected="a header row and data rows"
                )
            reader = pa_csv.open_csv(
                path,
                read_options=pa_csv.ReadOptions(
                    block_size=CSV_BLOCK_BYTES, column_names=raw_names, skip_rows=1
                ),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types={c: pa.string() for c in raw_names},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                    null_values=[""],
                ),
            )
            batches = (pa.Table.from_batches([b]) for b in reader)
        else:
            # Row group by row group: pre-buffering would hold the whole file's bytes.
            parquet = pq.ParquetFile(path, pre_buffer=False)
            raw_names = parquet.schema_arrow.names
            batches = (
                pa.Table.from_batches([b]) for b in parquet.iter_batches(batch_size=BATCH_ROWS)
            )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DatasetError(path.name, f"cannot be read ({exc})") from exc
    names = _column_names(path, raw_names)

    def frames() -> Iterator[pd.DataFrame]:
        try:
            for table in batches:
                df = table.to_pandas()
                df.columns = names
                yield df
        except (pa.ArrowInvalid, OSError, ValueError) as exc:
            raise DatasetError(path.name, f"cannot be read ({exc})") from exc

    return names, frames()


def _column_names(path: Path, raw) -> list[str]:
    """A table's column names, stripped; the same name twice is an error naming them."""
    names = [str(c).strip() for c in raw]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise DatasetError(path.name, "duplicate column names", values=dupes)
    return names


def _require_columns(df: pd.DataFrame, file: str, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DatasetError(
            file,
            f"missing required column{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{c}'" for c in missing),
            column=missing[0],
            values=list(df.columns)[:8],
            expected="columns " + ", ".join(required),
        )


def _fail_rows(
    file: str,
    column: str,
    mask: pd.Series,
    problem: str,
    values: pd.Series | None = None,
    expected: str | None = None,
) -> None:
    """Raise a DatasetError for the rows where `mask` is true, if any."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    idx = np.flatnonzero(mask)
    shown = (
        [str(v) if isinstance(v, pd.Timestamp) else v for v in values.iloc[idx[:5]]]
        if values is not None
        else []
    )
    raise DatasetError(
        file,
        problem,
        column=column,
        rows=(idx[:5] + 1).tolist(),
        values=shown,
        expected=expected,
        total=int(mask.sum()),
    )


# --- column normalisers ------------------------------------------------------------------


def _as_text(s: pd.Series) -> pd.Series:
    """Strip text; blanks become missing. Non-text columns (Parquet ints) become text."""
    if (
        pd.api.types.is_string_dtype(s)
        or s.dtype == object
        or isinstance(s.dtype, pd.CategoricalDtype)
    ):
        out = s.astype("str").where(s.notna())
    else:
        out = s.map(lambda v: None if pd.isna(v) else str(v))
    out = out.str.strip()
    return out.where(out != "")


def _ids(df: pd.DataFrame, file: str, column: str, *, unique: bool) -> pd.Series:
    ids = _as_text(df[column])
    _fail_rows(file, column, ids.isna(), f"empty {column}", expected=f"a non-empty {column}")
    if unique:
        dup = ids.duplicated(keep=False)
        _fail_rows(file, column, dup, f"duplicate {column}", ids, expected=f"each {column} once")
    return ids.astype("str")


def _account_ids(df: pd.DataFrame, file: str) -> pd.Series:
    """Each lead's account: text, blank for a lead without one (an account id may repeat:
    the account's contacts). Over 256 characters is refused, as a lead_id would be."""
    ids = _as_text(df["account_id"])
    _fail_rows(
        file,
        "account_id",
        ids.str.len().fillna(0) > 256,
        "account_id over 256 characters",
        ids,
        expected="an account id (or blank)",
    )
    return ids.astype("str")


def _timestamps(df: pd.DataFrame, file: str, column: str, *, required: bool) -> pd.Series:
    """UTC timestamps from text (CSV) or typed (Parquet) cells: the same checks either way
    (an empty required cell is an error whether it reads as '' or as NaT)."""
    s = df[column]
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        parsed, text = s.dt.tz_convert("UTC"), None
    elif pd.api.types.is_datetime64_dtype(s):
        parsed, text = s.dt.tz_localize("UTC"), None
    else:
        text = _as_text(s)
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    empty = parsed.isna() if text is None else text.isna()
    if required:
        _fail_rows(file, column, empty, f"empty {column}", expected=ISO_HINT)
    if text is not None:
        _fail_rows(
            file, column, text.notna() & parsed.isna(), "unparseable timestamp", text,
            expected=ISO_HINT,
        )  # fmt: skip
    return parsed.astype(TIMESTAMP_DTYPE)


def _numbers(df: pd.DataFrame, file: str, column: str) -> pd.Series:
    s = df[column]
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    text = _as_text(s)
    parsed = pd.to_numeric(text, errors="coerce")
    _fail_rows(
        file,
        column,
        text.notna() & parsed.isna(),
        "not a number",
        text,
        expected="a number or an empty cell",
    )
    return parsed.astype("float64")


def _looks_numeric(s: pd.Series) -> bool:
    """True when every non-empty value parses as a number."""
    if pd.api.types.is_bool_dtype(s):
        return False
    if pd.api.types.is_numeric_dtype(s):
        return True
    text = _as_text(s).dropna()
    # A failure among the first values settles it without parsing the whole column.
    head = text.iloc[:200]
    if len(text) == 0 or pd.to_numeric(head, errors="coerce").isna().any():
        return False
    return bool(pd.to_numeric(text, errors="coerce").notna().all())


def _lead_index(
    leads: pd.DataFrame, file: str, df: pd.DataFrame, lookup: LeadIndex | None = None
) -> tuple[pd.Series, np.ndarray]:
    """Check every lead_id of a child table exists in leads; the text ids and their rows."""
    ids = _ids(df, file, "lead_id", unique=False)
    positions = (
        lookup.positions(ids) if lookup is not None else lead_positions(ids, leads["lead_id"])
    )
    unknown = positions < 0
    _fail_rows(
        file,
        "lead_id",
        unknown,
        "lead_id not found in leads",
        ids,
        expected="a lead_id of the leads table",
    )
    return ids, positions


# --- tables ------------------------------------------------------------------------------


def _normalise_leads(
    df: pd.DataFrame, file: str, spec: DatasetSpec
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    _require_columns(df, file, LEAD_COLUMNS + ((spec.label.column,) if spec.label else ()))
    if df.empty:
        raise DatasetError(file, "no data rows", expected="at least one lead")
    roles = spec.columns
    for role in ("ignore", "leaky", "keep", "categorical", "numeric"):
        for col in getattr(roles, role):
            if col not in df.columns:
                raise DatasetError(
                    "dataset.yaml",
                    f"columns.{role} names a column that {file} does not have",
                    column=col,
                    values=list(df.columns)[:8],
                )
    both = set(roles.categorical) & set(roles.numeric)
    if both:
        raise DatasetError(
            "dataset.yaml", "column declared both categorical and numeric", column=sorted(both)[0]
        )

    out = pd.DataFrame(index=df.index)
    out["lead_id"] = _ids(df, file, "lead_id", unique=True)
    out["created_at"] = _timestamps(df, file, "created_at", required=True)
    source = _as_text(df["source"])
    out["source"] = source.fillna(UNKNOWN_SOURCE).astype("category")
    if "account_id" in df.columns:
        out["account_id"] = _account_ids(df, file)

    reserved = (
        set(LEAD_COLUMNS)
        | set(LEAD_OPTIONAL)
        | set(roles.ignore)
        | ({spec.label.column} if spec.label else set())
    )
    profile = [c for c in df.columns if c not in reserved]
    for col in profile:
        if col in roles.numeric or (col not in roles.categorical and _looks_numeric(df[col])):
            out[col] = _numbers(df, file, col)
        else:
            out[col] = _as_text(df[col]).astype("category")

    if spec.label is not None:
        out[spec.label.column] = _labels(df, file, spec)
    return out, tuple(profile)


def _labels(df: pd.DataFrame, file: str, spec: DatasetSpec) -> pd.Series:
    col = spec.label.column
    text = _as_text(df[col]).str.lower()
    # Parquet numbers arrive as 1.0 / 0.0; compare them as integers.
    text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    positive = {str(v).strip().lower() for v in spec.label.positive}
    negative = set(NEGATIVE_LABELS) - positive
    _fail_rows(file, col, text.isna(), "empty outcome", expected="0 or 1 in every row")
    bad = ~text.isin(positive | negative)
    _fail_rows(
        file,
        col,
        bad,
        "outcome value not understood",
        text,
        expected=f"one of {sorted(positive)} (won) or {sorted(negative)} (not won)",
    )
    return text.isin(positive).astype("int8")


def _normalise_activities(
    df: pd.DataFrame, file: str, leads: pd.DataFrame, lookup: LeadIndex | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    _require_columns(df, file, ACTIVITY_COLUMNS)
    out = pd.DataFrame(index=df.index)
    out["lead_id"], lead_rows = _lead_index(leads, file, df, lookup)
    out["occurred_at"] = _timestamps(df, file, "occurred_at", required=True)
    kind = _as_text(df["activity_type"])
    _fail_rows(
        file,
        "activity_type",
        kind.isna(),
        "empty activity_type",
        expected="an activity type such as page_view",
    )
    out["activity_type"] = kind.astype("category")
    out["value"] = _numbers(df, file, "value") if "value" in df.columns else np.nan
    out["campaign"] = (
        _as_text(df["campaign"]).astype("category")
        if "campaign" in df.columns
        else pd.Categorical([None] * len(df))
    )
    extra = [c for c in df.columns if c not in ACTIVITY_COLUMNS + ACTIVITY_OPTIONAL]
    for col in extra:  # kept as text; features ignore columns they do not know
        out[col] = _as_text(df[col])
    return out, lead_rows


def _normalise_deals(
    df: pd.DataFrame, file: str, leads: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    _require_columns(df, file, DEAL_COLUMNS)
    out = pd.DataFrame(index=df.index)
    out["deal_id"] = _ids(df, file, "deal_id", unique=True)
    out["lead_id"], lead_rows = _lead_index(leads, file, df)
    out["created_at"] = _timestamps(df, file, "created_at", required=True)
    out["closed_at"] = _timestamps(df, file, "closed_at", required=False)
    status = _as_text(df["status"]).str.lower()
    _fail_rows(
        file,
        "status",
        ~status.isin(DEAL_STATUSES),
        "unknown deal status",
        _as_text(df["status"]),
        expected="one of " + ", ".join(DEAL_STATUSES),
    )
    out["status"] = pd.Categorical(status, categories=list(DEAL_STATUSES))
    closed = status.isin(("won", "lost"))
    _fail_rows(
        file,
        "closed_at",
        closed & out["closed_at"].isna(),
        "won or lost deal without closed_at",
        status,
        expected="the date the deal was closed",
    )
    _fail_rows(
        file,
        "closed_at",
        (status == "open") & out["closed_at"].notna(),
        "open deal with a closed_at",
        df["closed_at"],
        expected="an empty closed_at while the deal is open",
    )
    early = out["closed_at"].notna() & (out["closed_at"] < out["created_at"])
    _fail_rows(
        file,
        "closed_at",
        early,
        "closed_at before the deal's created_at",
        df["closed_at"],
        expected="closed_at >= created_at",
    )
    if "amount" in df.columns:
        out["amount"] = _numbers(df, file, "amount")
        _fail_rows(
            file,
            "amount",
            out["amount"] < 0,
            "negative amount",
            out["amount"],
            expected="an amount >= 0",
        )
    else:
        out["amount"] = np.nan
    extra = [c for c in df.columns if c not in DEAL_COLUMNS + DEAL_OPTIONAL]
    for col in extra:
        out[col] = _as_text(df[col])
    return out, lead_rows


def _check_early(
    df: pd.DataFrame,
    lead_rows: np.ndarray,
    column: str,
    file: str,
    leads: pd.DataFrame,
    policy: str,
) -> tuple[pd.DataFrame, int, np.ndarray]:
    """Events dated before their lead existed: an error, or dropped and counted; the rows
    kept, the number dropped and the mask of kept rows.

    `lead_rows`: each row's lead position in `leads` (from the lead_id check).
    """
    created = timestamps_us(leads["created_at"])[lead_rows]
    early = timestamps_us(df[column]) < created
    if policy == "error":
        _fail_rows(
            file,
            column,
            early,
            f"{column} before the lead's created_at",
            df[column],
            expected="events on or after the lead was created (or early_events: drop in dataset.yaml)",
        )
        return df, 0, ~early
    n = int(early.sum())
    return (df.loc[~early].reset_index(drop=True) if n else df), n, ~early


def _empty_deals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": pd.Series([], dtype="str"),
            "lead_id": pd.Series([], dtype="str"),
            "created_at": pd.Series([], dtype=TIMESTAMP_DTYPE),
            "closed_at": pd.Series([], dtype=TIMESTAMP_DTYPE),
            "status": pd.Categorical([], categories=list(DEAL_STATUSES)),
            "amount": pd.Series([], dtype="float64"),
        }
    )
