"""The score history: every `leadscore score` run's scores, and each lead's trend.

Store: one DuckDB file by default (`score_history.duckdb` next to the data), or any
SQLAlchemy URL (`postgresql://...`, `sqlite:///...`) for a shared one. One table,
`lead_scores`, keyed by (as_of, lead_id): a run is identified by its as_of, so re-running
the same as_of replaces that run's rows (in one transaction) and never duplicates them.

Trend (per lead, at each run): the change of the lead's log-odds from the mean of its up to
`TREND_RUNS` previous scores, against a noise-aware threshold: the larger of
`MIN_LOG_ODDS_CHANGE` (0.2, odds x/÷ 1.22) and twice the spread (standard deviation) of those
previous log-odds, so that a lead whose score always wobbles needs a bigger move. Above it:
improving; below minus it: declining; otherwise steady. Fewer than `MIN_PREVIOUS` earlier
scores: "not enough history".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crm.errors import LeadscoreError
from crm.times import from_us
from operations.pipeline import COLUMNS

TABLE = "lead_scores"
TREND_RUNS = 3
MIN_PREVIOUS = 2
MIN_LOG_ODDS_CHANGE = 0.2
# The run's key, as_of_us (µs since the epoch, UTC: exact in every database), then the
# scores file's columns without the reasons (as_of: UTC without a zone, for people querying
# the table), then when the run was stored.
# The score file's columns but the reasons and the age flag (a store made before the flag
# existed keeps working).
STORED = [
    "as_of_us",
    *(c for c in COLUMNS if not c.startswith("reasons_") and c != "beyond_trained_age"),
    "scored_at",
]
TRENDS = ("improving", "steady", "declining", "not enough history")


def default_store(data: str | Path) -> str:
    return str(Path(data) / "score_history.duckdb")


class ScoreHistory:
    """Append, replace and read runs of scores in a DuckDB file or a SQLAlchemy database."""

    def __init__(self, store: str | Path) -> None:
        self.store = str(store)
        self.is_url = "://" in self.store

    # --- writing -----------------------------------------------------------------------

    def write_run(self, scores: pd.DataFrame) -> None:
        """Store one run (all rows share one as_of), replacing an earlier run at that as_of."""
        as_ofs = scores["as_of"].unique()
        if len(as_ofs) > 1:
            raise ValueError("one run has one as_of")
        frame = scores.reindex(columns=STORED).copy()
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
        when = int(frame["as_of_us"].iloc[0]) if len(frame) else None
        if self.is_url:
            self._write_sql(frame, when)
        else:
            self._write_duckdb(frame, when)

    def _write_duckdb(self, frame: pd.DataFrame, when: int | None) -> None:
        con = self._duckdb(create=True)
        try:
            con.execute("BEGIN")
            con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} AS SELECT * FROM frame LIMIT 0")
            if when is not None:
                con.execute(f"DELETE FROM {TABLE} WHERE as_of_us = ?", [when])
            con.execute(f"INSERT INTO {TABLE} SELECT * FROM frame")
            con.execute("COMMIT")
        finally:
            con.close()

    def _write_sql(self, frame: pd.DataFrame, when: int | None) -> None:
        import sqlalchemy as sa

        engine = self._engine()
        with engine.begin() as con:  # one transaction: the old run goes only if the new lands
            if when is not None and sa.inspect(con).has_table(TABLE):
                con.execute(sa.text(f"DELETE FROM {TABLE} WHERE as_of_us = :when"), {"when": when})
            frame.to_sql(TABLE, con, if_exists="append", index=False)
        engine.dispose()

    # --- reading -----------------------------------------------------------------------

    def read(
        self,
        lead_ids: list[str] | None = None,
        before: pd.Timestamp | None = None,
        last_runs: int | None = None,
    ) -> pd.DataFrame:
        """Stored rows (optionally of some leads, before an as_of, and of the `last_runs`
        runs before it only), oldest first. The time filters run in the database, so a
        run reads the few runs its trends need, not the whole history."""
        where, params = [], {}
        if before is not None:
            where.append("as_of_us < :before")
            params["before"] = int(_us(pd.Series([pd.Timestamp(before)]))[0])
        if last_runs is not None:
            inner = " AND ".join(where) or "TRUE"
            where.append(
                f"as_of_us IN (SELECT DISTINCT as_of_us FROM {TABLE} WHERE {inner} "
                f"ORDER BY as_of_us DESC LIMIT {int(last_runs)})"
            )
        query = f"SELECT * FROM {TABLE}" + (f" WHERE {' AND '.join(where)}" if where else "")
        if self.is_url:
            import sqlalchemy as sa

            engine = self._engine()
            try:
                with engine.connect() as con:
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
                exists = con.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [TABLE]
                ).fetchone()[0]
                if not exists:
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

    # --- connections -------------------------------------------------------------------

    def _duckdb(self, *, create: bool):
        import duckdb

        path = Path(self.store)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return duckdb.connect(str(path), read_only=not create)
        except duckdb.Error as exc:
            raise LeadscoreError(f"{path}: not a readable score history ({exc})") from exc

    def _engine(self):
        import sqlalchemy as sa

        try:
            return sa.create_engine(self.store)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise LeadscoreError(f"{self.store}: not a usable database URL ({exc})") from exc


def trends(current: pd.DataFrame, earlier: pd.DataFrame) -> pd.Series:
    """The trend of each lead of `current` (lead_id, probability) given its `earlier` stored
    scores (lead_id, as_of, probability; runs before the current one)."""
    out = pd.Series("not enough history", index=current.index, dtype=object)
    if earlier.empty or current.empty:
        return out
    recent = (
        earlier.sort_values("as_of", kind="stable").groupby("lead_id", sort=False).tail(TREND_RUNS)
    )
    logit = _logit(recent["probability"].to_numpy(dtype=float))
    stats = (
        pd.DataFrame({"lead_id": recent["lead_id"].to_numpy(), "logit": logit})
        .groupby("lead_id", sort=False)["logit"]
        .agg(["mean", "std", "count"])
    )
    joined = stats.reindex(current["lead_id"].to_numpy())
    enough = (joined["count"] >= MIN_PREVIOUS).to_numpy()
    change = _logit(current["probability"].to_numpy(dtype=float)) - joined["mean"].to_numpy()
    threshold = np.maximum(MIN_LOG_ODDS_CHANGE, 2 * np.nan_to_num(joined["std"].to_numpy()))
    labels = np.where(
        change > threshold, "improving", np.where(change < -threshold, "declining", "steady")
    )
    out[enough] = labels[enough]
    return out


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=[c for c in STORED if c != "as_of_us"])


def _us(times: pd.Series) -> np.ndarray:
    return (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
