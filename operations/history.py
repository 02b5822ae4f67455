"""The score history: every `leadscore score` run's scores, and each lead's trend.

Store: one DuckDB file by default (`score_history.duckdb` next to the data), or any
SQLAlchemy URL (`postgresql://...`, `sqlite:///...`) for a shared one. One table,
`lead_scores`, keyed by (as_of, lead_id): a run is identified by its as_of, so re-running
the same as_of replaces that run's rows (in one transaction) and never duplicates them.

Trend (per lead, at each run): `leadscore.stats.trend`, the rule the event stream follows too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.databases import connect_duckdb, database_engine, database_refusals
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.secrets import masked_url
from leadscore.crm.times import from_us
from leadscore.scoring.score_row import HISTORY_SCHEMA, STORED
from leadscore.stats.trend import NOT_ENOUGH, TREND_RUNS, logit, trend_labels

TABLE = "lead_scores"  # its columns and types: HISTORY_SCHEMA (`leadscore.scoring.score_row`)


def default_store(data: str | Path) -> str:
    return str(Path(data) / "score_history.duckdb")


class ScoreHistory:
    """Append, replace and read runs of scores in a DuckDB file or a SQLAlchemy database."""

    def __init__(self, store: str | Path) -> None:
        self.store = str(store)
        self.is_url = "://" in self.store

    @property
    def shown(self) -> str:
        """The store fit to print: a URL's credentials masked (`leadscore.crm.secrets`)."""
        return masked_url(self.store)

    # --- writing -----------------------------------------------------------------------

    def write_run(self, scores: pd.DataFrame) -> None:
        """Store one run (all rows share one as_of), replacing an earlier run at that as_of."""
        frame = self._prepare(scores)
        when = int(frame["as_of_us"].iloc[0]) if len(frame) else None
        if self.is_url:
            self._write_sql(frame, when)
        else:
            self._write_duckdb(frame, when)

    @staticmethod
    def _prepare(scores: pd.DataFrame, one_as_of: bool = True) -> pd.DataFrame:
        """A run's rows in the table's columns (STORED)."""
        if one_as_of and scores["as_of"].nunique() > 1:
            raise ValueError("one run has one as_of")
        frame = scores.reindex(columns=STORED).copy()
        if "scored_at" in scores and scores["scored_at"].notna().all() and len(scores):
            # rows scored earlier (the stream's, flushed later): when they were scored
            frame["scored_at"] = pd.to_datetime(scores["scored_at"], utc=True).dt.tz_localize(None)
        else:
            frame["scored_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
        as_of = pd.to_datetime(frame["as_of"], utc=True)
        frame["as_of_us"] = _us(as_of)
        frame["as_of"] = as_of.dt.tz_localize(None)
        for col in (
            "lead_id",
            "grade",
            "rule_grade",
            "trend",
            "model_name",
            "model_version",
            "feature_set_version",
        ):
            frame[col] = frame[col].astype(object)
        return frame

    def _write_duckdb(self, frame: pd.DataFrame, when: int | None) -> None:
        import duckdb

        con = self._duckdb(create=True)  # DuckDB: one writing process at a time (a file lock)
        try:
            con.execute("BEGIN")
            _ensure_schema(con.execute, _duckdb_has_key(con), _duckdb_exists(con))
            if when is not None:
                con.execute(f"DELETE FROM {TABLE} WHERE as_of_us = ?", [when])
            columns = ", ".join(STORED)
            con.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM frame")
            con.execute("COMMIT")
        except duckdb.Error as exc:  # a full disk, a damaged file: the run is not recorded
            raise LeadscoreError(
                f"{self.store}: the run could not be recorded in the score history "
                f"({str(exc).splitlines()[0]})"
            ) from exc
        finally:
            con.close()

    def _write_sql(self, frame: pd.DataFrame, when: int | None) -> None:
        import sqlalchemy as sa

        engine = self._engine()
        try:
            with self._database_errors():
                for attempt in range(SQL_ATTEMPTS):
                    try:
                        with engine.begin() as con:
                            self._replace_run(con, frame, when)
                        return
                    except sa.exc.IntegrityError:
                        # Another writer without a lock won a race (a first run's table, a
                        # key): the transaction is rolled back; do it again.
                        if attempt + 1 == SQL_ATTEMPTS:
                            raise
        finally:
            engine.dispose()

    @staticmethod
    def _replace_run(con, frame: pd.DataFrame, when: int | None) -> None:
        """In one transaction: the old run goes only if the new lands. Writers take turns
        (PostgreSQL: a transaction lock), so two runs of one as_of leave one run's rows,
        and two first runs one table."""
        import sqlalchemy as sa

        if con.dialect.name == "postgresql":
            con.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        inspector = sa.inspect(con)
        exists = inspector.has_table(TABLE)
        keyed = exists and bool(inspector.get_pk_constraint(TABLE).get("constrained_columns"))
        _ensure_schema(lambda q: con.execute(sa.text(q)), keyed, exists)
        if when is not None:
            con.execute(sa.text(f"DELETE FROM {TABLE} WHERE as_of_us = :when"), {"when": when})
        frame.to_sql(TABLE, con, if_exists="append", index=False)

    def append(self, scores: pd.DataFrame) -> None:
        """Store rows of leads scored at their own times (the event stream's rescores): each
        (as_of, lead) row replaces the row stored under the same key, if any, and no other;
        so appending the same rows again (a retried flush) changes nothing."""
        frame = self._prepare(scores, one_as_of=False)
        if frame.empty:
            return
        if self.is_url:
            import sqlalchemy as sa

            engine = self._engine()
            try:
                with self._database_errors():
                    for attempt in range(SQL_ATTEMPTS):
                        try:
                            with engine.begin() as con:
                                self._upsert_sql(con, frame)
                            return
                        except sa.exc.IntegrityError:
                            if attempt + 1 == SQL_ATTEMPTS:
                                raise
            finally:
                engine.dispose()
            return
        import duckdb

        con = self._duckdb(create=True)
        try:
            con.execute("BEGIN")
            _ensure_schema(con.execute, _duckdb_has_key(con), _duckdb_exists(con))
            columns = ", ".join(STORED)
            con.execute(f"INSERT OR REPLACE INTO {TABLE} ({columns}) SELECT {columns} FROM frame")
            con.execute("COMMIT")
        except duckdb.Error as exc:
            raise LeadscoreError(
                f"{self.store}: scores could not be added to the score history "
                f"({str(exc).splitlines()[0]})"
            ) from exc
        finally:
            con.close()

    @staticmethod
    def _upsert_sql(con, frame: pd.DataFrame) -> None:
        import sqlalchemy as sa

        if con.dialect.name == "postgresql":
            con.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        inspector = sa.inspect(con)
        exists = inspector.has_table(TABLE)
        keyed = exists and bool(inspector.get_pk_constraint(TABLE).get("constrained_columns"))
        _ensure_schema(lambda q: con.execute(sa.text(q)), keyed, exists)
        keys = [
            {"w": int(w), "l": str(lead)}
            for w, lead in zip(frame["as_of_us"], frame["lead_id"], strict=True)
        ]
        con.execute(sa.text(f"DELETE FROM {TABLE} WHERE as_of_us = :w AND lead_id = :l"), keys)
        frame.to_sql(TABLE, con, if_exists="append", index=False)

    # --- reading -----------------------------------------------------------------------

    def read(
        self,
        lead_ids: list[str] | None = None,
        before: pd.Timestamp | None = None,
        last_runs: int | None = None,
    ) -> pd.DataFrame:
        """Stored rows (optionally of some leads, before an as_of, and each lead's
        `last_runs` latest scores before it only), oldest first. The filters run in the
        database, so a run reads the few scores its trends need, not the whole history.
        Each lead's own latest scores: the event stream stores a lead's rescores at its
        own times, between the batch runs that score every lead at one as_of."""
        where, params = [], {}
        if before is not None:
            where.append("as_of_us < :before")
            params["before"] = int(_us(pd.Series([pd.Timestamp(before)]))[0])
        if last_runs is not None:
            inner = " AND ".join(where) or "TRUE"
            where = [
                f"(as_of_us, lead_id) IN (SELECT as_of_us, lead_id FROM (SELECT as_of_us, "
                f"lead_id, ROW_NUMBER() OVER (PARTITION BY lead_id ORDER BY as_of_us DESC) "
                f"AS latest_n FROM {TABLE} WHERE {inner}) AS ranked "
                f"WHERE latest_n <= {int(last_runs)})"
            ]
        query = f"SELECT * FROM {TABLE}" + (f" WHERE {' AND '.join(where)}" if where else "")
        if self.is_url:
            import sqlalchemy as sa

            engine = self._engine()
            try:
                with self._database_errors(), engine.connect() as con:
                    if not sa.inspect(con).has_table(TABLE):
                        return _empty()
                    df = pd.read_sql_query(sa.text(query), con, params=params)
            finally:
                engine.dispose()
        else:
            if not Path(self.store).is_file():
                return _empty()
            con = self._duckdb(create=False)
            try:
                if not _duckdb_exists(con):
                    return _empty()
                df = con.execute(query.replace(":before", "$before"), params).df()
            finally:
                con.close()
        df["as_of"] = from_us(df["as_of_us"].to_numpy(dtype="int64"))
        df = df.drop(columns="as_of_us")
        if lead_ids is not None:
            df = df[df["lead_id"].isin(lead_ids)]
        return df.sort_values(["as_of", "lead_id"], kind="stable").reset_index(drop=True)

    def lead(self, lead_id: str) -> pd.DataFrame:
        return self.read([lead_id])

    def latest_as_of(self, before: pd.Timestamp) -> pd.Timestamp | None:
        """The newest as_of stored before `before` (a batch run's, or the event stream's
        latest rescore), None when nothing is: one aggregate in the database."""
        query = f"SELECT MAX(as_of_us) FROM {TABLE} WHERE as_of_us < :before"
        params = {"before": int(_us(pd.Series([pd.Timestamp(before)]))[0])}
        if self.is_url:
            import sqlalchemy as sa

            engine = self._engine()
            try:
                with self._database_errors(), engine.connect() as con:
                    if not sa.inspect(con).has_table(TABLE):
                        return None
                    value = con.execute(sa.text(query), params).scalar()
            finally:
                engine.dispose()
        else:
            if not Path(self.store).is_file():
                return None
            con = self._duckdb(create=False)
            try:
                if not _duckdb_exists(con):
                    return None
                value = con.execute(query.replace(":before", "$before"), params).fetchone()[0]
            finally:
                con.close()
        return None if value is None else from_us(np.array([int(value)]))[0]

    # --- connections -------------------------------------------------------------------

    def _duckdb(self, *, create: bool):
        """A connection (read-only unless `create`). DuckDB lets one process hold a file
        for writing: while another run holds it, wait (`leadscore.crm.databases`)."""
        import duckdb

        path = Path(self.store)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                try:
                    _publish_empty_duckdb(path)
                except (duckdb.Error, OSError) as exc:
                    raise LeadscoreError(
                        f"{path}: the score history cannot be created ({str(exc).splitlines()[0]})"
                    ) from exc
        return connect_duckdb(path, create=create)

    def _database_errors(self):
        """A database's refusal (a wrong password, no server, no permission) as one line
        naming the store, its credentials masked; never a traceback."""
        return database_refusals(self.shown, "the score history's database")

    def _engine(self):
        return database_engine(self.store, self.shown)


def trends(current: pd.DataFrame, earlier: pd.DataFrame) -> pd.Series:
    """The trend of each lead of `current` (lead_id, probability) given its `earlier` stored
    scores (lead_id, as_of, probability; runs before the current one): `leadscore.stats.trend`."""
    out = pd.Series(NOT_ENOUGH, index=current.index, dtype=object)
    if earlier.empty or current.empty:
        return out
    recent = (
        earlier.sort_values("as_of", kind="stable").groupby("lead_id", sort=False).tail(TREND_RUNS)
    )
    stats = (
        pd.DataFrame(
            {
                "lead_id": recent["lead_id"].to_numpy(),
                "logit": logit(recent["probability"].to_numpy(dtype=float)),
            }
        )
        .groupby("lead_id", sort=False)["logit"]
        .agg(["mean", "std", "count"])
    )
    joined = stats.reindex(current["lead_id"].to_numpy())
    out[:] = trend_labels(
        current["probability"].to_numpy(dtype=float),
        joined["mean"].to_numpy(),
        joined["std"].to_numpy(),
        joined["count"].fillna(0).to_numpy(),
    )
    return out


SQL_ATTEMPTS = 3
LOCK_KEY = 7_253_411  # PostgreSQL advisory lock of the history's writers


def _create(table: str) -> str:
    columns = ", ".join(f"{name} {kind}" for name, kind in HISTORY_SCHEMA.items())
    return f"CREATE TABLE {table} ({columns}, PRIMARY KEY (as_of_us, lead_id))"


def _ensure_schema(execute, keyed: bool, exists: bool) -> None:
    """The table with its fixed schema and key. A table made before it had them (inferred
    types, no key, maybe a duplicated run) is rebuilt once: typed, one row per key (the
    latest stored)."""
    if not exists:
        execute(_create(TABLE))
        return
    if keyed:
        return
    new = f"{TABLE}_keyed"
    execute(_create(new))
    kinds = {name: kind.replace(" NOT NULL", "") for name, kind in HISTORY_SCHEMA.items()}
    casts = ", ".join(f"CAST({name} AS {kinds[name]})" for name in HISTORY_SCHEMA)
    execute(
        f"INSERT INTO {new} ({', '.join(HISTORY_SCHEMA)}) SELECT {casts} FROM (SELECT *, "
        f"ROW_NUMBER() OVER (PARTITION BY as_of_us, lead_id ORDER BY scored_at DESC) AS copy_n FROM {TABLE}) "
        "AS old WHERE copy_n = 1"
    )
    execute(f"DROP TABLE {TABLE}")
    execute(f"ALTER TABLE {new} RENAME TO {TABLE}")


def _duckdb_exists(con) -> bool:
    query = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return bool(con.execute(query, [TABLE]).fetchone()[0])


def _duckdb_has_key(con) -> bool:
    query = (
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? "
        "AND constraint_type = 'PRIMARY KEY'"
    )
    return bool(con.execute(query, [TABLE]).fetchone()[0])


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=[c for c in STORED if c != "as_of_us"])


def _us(times: pd.Series) -> np.ndarray:
    return (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)


def _publish_empty_duckdb(path: Path) -> None:
    """Create the DuckDB file at `path` whole: an empty database is made aside and linked
    into place, so that a run starting at the same moment never opens a half-written file
    (the first link wins; the other run opens the winner's)."""
    import os

    import duckdb

    aside = path.with_name(f".{path.name}.new-{os.getpid()}")
    try:
        duckdb.connect(str(aside)).close()
        os.link(aside, path)
    except FileExistsError:
        pass
    finally:
        aside.unlink(missing_ok=True)
        aside.with_name(aside.name + ".wal").unlink(missing_ok=True)
