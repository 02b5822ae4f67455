"""The experiments' records, kept in the score history's store (a DuckDB file, or any
SQLAlchemy URL such as `postgresql://...`), so that the daily batch and the event stream,
which both read that store, see the same experiments.

Two tables next to `lead_scores`:
- `experiments`: one row per experiment (its name is its key): when it started and stopped
  taking new leads, the model arm's share, the model arm's matched line, the rules'
  hand-off rate it was matched to, its planned size and horizon, and whether it is an A/A
  test (both arms the rules);
- `experiment_handoffs`: each hand-off of an experiment's lead (experiment, lead, arm, when,
  event id), written by whoever handed it off; keyed, so a re-run writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.databases import connect_duckdb, database_engine, database_refusals
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.secrets import masked_url
from leadscore.crm.times import from_us, to_us

EXPERIMENTS = "experiments"
HANDOFFS = "experiment_handoffs"
SCHEMA = {
    EXPERIMENTS: (
        "name VARCHAR NOT NULL PRIMARY KEY, started_us BIGINT NOT NULL, stopped_us BIGINT, "
        "share DOUBLE PRECISION NOT NULL, line DOUBLE PRECISION NOT NULL, "
        "rules_rate DOUBLE PRECISION, matched_leads BIGINT NOT NULL, "
        "planned_leads BIGINT NOT NULL, horizon_days DOUBLE PRECISION NOT NULL, "
        "aa BOOLEAN NOT NULL, design VARCHAR NOT NULL"
    ),
    HANDOFFS: (
        "experiment VARCHAR NOT NULL, lead_id VARCHAR NOT NULL, arm VARCHAR NOT NULL, "
        "handed_off_us BIGINT NOT NULL, event_id VARCHAR NOT NULL, "
        "PRIMARY KEY (experiment, lead_id, event_id)"
    ),
}
DESIGNS = ("all", "disagreements")
LOCK_KEY = 7_253_412  # PostgreSQL advisory lock of the experiments' writers


@dataclass(frozen=True)
class Experiment:
    """One experiment. Leads created in [started_at, stopped_at) are its leads, each in the
    arm its keyed hash gives (`leadscore.experiment.assignment`), for life: stopping ends
    the intake, not the policy its leads were promised.

    share: the model arm's share of the leads; line: the model arm's hand-off line (a
    probability), matched to `rules_rate`, the share of leads the rules handed off, on
    `matched_leads` leads of the score history; planned_leads: the size the confidence
    sequence is tightest at (set before any outcome is seen); horizon_days: a lead's
    outcome is its wins within this many days of its creation; aa: both arms hand off by
    the rules (an A/A test of the set-up itself); design: which leads the readout counts,
    `all` the experiment's leads (the default), or `disagreements` only those on which the
    two policies disagreed at some score (`leadscore.experiment.policy.disagreed`)."""

    name: str
    started_us: int
    share: float
    line: float
    rules_rate: float | None
    matched_leads: int
    planned_leads: int
    horizon_days: float
    aa: bool = False
    stopped_us: int | None = None
    design: str = "all"

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise LeadscoreError(f"experiment design {self.design!r}: one of {', '.join(DESIGNS)}")

    @property
    def started_at(self) -> pd.Timestamp:
        return from_us(np.array([self.started_us]))[0]

    @property
    def stopped_at(self) -> pd.Timestamp | None:
        return None if self.stopped_us is None else from_us(np.array([self.stopped_us]))[0]

    @property
    def running(self) -> bool:
        return self.stopped_us is None

    def enrols(self, created_us: int) -> bool:
        """Whether a lead created then is one of this experiment's."""
        return self.started_us <= created_us and (
            self.stopped_us is None or created_us < self.stopped_us
        )

    def as_json(self) -> dict:
        out = asdict(self)
        out["started_at"] = self.started_at.isoformat()
        out["stopped_at"] = None if self.stopped_at is None else self.stopped_at.isoformat()
        del out["started_us"], out["stopped_us"]
        return out


def check_name(name: str) -> str:
    """An experiment's name: 1-100 characters of letters, digits, '-', '_' and '.'."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name or ""):
        raise LeadscoreError(
            f"experiment name {name!r}: use 1-100 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return name


class ExperimentStore:
    """The experiments of a score history's store (`store`: a DuckDB file or a SQLAlchemy
    URL, as `leadscore score --history` takes)."""

    def __init__(self, store: str | Path) -> None:
        self.store = str(store)
        self.is_url = "://" in self.store

    @property
    def shown(self) -> str:
        return masked_url(self.store)

    # --- the experiments -------------------------------------------------------------

    def start(self, experiment: Experiment) -> Experiment:
        """Record a new experiment. Refused (one line): a name taken before, or another
        experiment still taking leads (two at once would claim the same leads)."""
        check_name(experiment.name)

        def work(run) -> None:
            rows = run(f"SELECT name, stopped_us FROM {EXPERIMENTS}", {})
            taken = {r[0] for r in rows}
            if experiment.name in taken:
                raise LeadscoreError(
                    f"experiment {experiment.name!r} exists already in {self.shown} "
                    "(a name is used once: its leads' arms come from it); pick another name"
                )
            overlapping = [r[0] for r in rows if r[1] is not None and r[1] > experiment.started_us]
            if overlapping:
                raise LeadscoreError(
                    f"experiment {overlapping[0]!r} took leads until after "
                    f"{experiment.started_at.isoformat()}: a new experiment starts after it "
                    "stopped (a lead is one experiment's)"
                )
            running = sorted(r[0] for r in rows if r[1] is None)
            if running:
                raise LeadscoreError(
                    f"experiment {running[0]!r} is still running in {self.shown}: stop it "
                    f"first (leadscore experiment stop {running[0]})"
                )
            row = _row(experiment)
            names = ", ".join(row)
            values = ", ".join(f":{k}" for k in row)
            run(f"INSERT INTO {EXPERIMENTS} ({names}) VALUES ({values})", row)

        self._transaction(work)
        return experiment

    def stop(self, name: str, at: pd.Timestamp) -> Experiment:
        """End an experiment's intake at `at` (its leads keep their arms)."""
        found = self.get(name)
        if not found.running:
            raise LeadscoreError(
                f"experiment {name!r} stopped already, at {found.stopped_at.isoformat()}"
            )
        at_us = to_us(at)
        if at_us < found.started_us:
            raise LeadscoreError(
                f"experiment {name!r} started at {found.started_at.isoformat()}: it cannot "
                f"stop before ({pd.Timestamp(at).isoformat()})"
            )
        self._transaction(
            lambda run: run(
                f"UPDATE {EXPERIMENTS} SET stopped_us = :at WHERE name = :name",
                {"at": at_us, "name": name},
            )
        )
        return replace(found, stopped_us=at_us)

    def list(self) -> list[Experiment]:
        """Every experiment, oldest first (none: an empty list, nothing created)."""
        if not self._exists():
            return []
        rows = self._read(f"SELECT {', '.join(_COLUMNS)} FROM {EXPERIMENTS}", {})
        found = [Experiment(**dict(zip(_COLUMNS, r, strict=True))) for r in rows]
        return sorted(found, key=lambda e: (e.started_us, e.name))

    def get(self, name: str) -> Experiment:
        for e in self.list():
            if e.name == name:
                return e
        known = ", ".join(e.name for e in self.list()) or "none"
        raise LeadscoreError(f"no experiment {name!r} in {self.shown} (experiments there: {known})")

    # --- the hand-offs ---------------------------------------------------------------

    def record_handoffs(self, events: Iterable[dict]) -> int:
        """Keep the hand-offs among `events` that belong to an experiment (their
        `experiment` and `arm` set); what was kept before is not kept twice. How many."""
        rows = [
            {
                "experiment": e["experiment"],
                "lead_id": str(e["lead_id"]),
                "arm": e["arm"],
                "handed_off_us": to_us(pd.Timestamp(e["as_of"])),
                "event_id": e["event_id"],
            }
            for e in events
            if e.get("experiment") and e.get("type") in ("lead.handoff", "lead.review")
        ]
        if not rows:
            return 0

        def work(run) -> int:
            names = sorted({r["experiment"] for r in rows})
            kept = set()
            for name in names:
                kept |= set(
                    run(
                        f"SELECT lead_id, event_id FROM {HANDOFFS} WHERE experiment = :name",
                        {"name": name},
                    )
                )
            new, seen = [], set()
            for r in rows:
                key = (r["lead_id"], r["event_id"])
                if key not in kept and key not in seen:
                    seen.add(key)
                    new.append(r)
            if new:
                run.insert(HANDOFFS, new)
            return len(new)

        return self._transaction(work)

    def handoffs(self, name: str) -> pd.DataFrame:
        """The experiment's hand-offs: lead_id, arm, handed_off_us, event_id."""
        columns = ["lead_id", "arm", "handed_off_us", "event_id"]
        if not self._exists(HANDOFFS):
            return pd.DataFrame(columns=columns)
        rows = self._read(
            f"SELECT {', '.join(columns)} FROM {HANDOFFS} WHERE experiment = :name",
            {"name": name},
        )
        return pd.DataFrame(rows, columns=columns)

    # --- the database ----------------------------------------------------------------

    def _transaction(self, work):
        """`work(run)` in one transaction, the tables made first; `run(sql, params)`
        returns the rows of a query (a list of tuples; [] for a statement)."""
        if self.is_url:
            import sqlalchemy as sa

            engine = self._engine()
            try:
                with self._refusals(), engine.begin() as con:
                    if con.dialect.name == "postgresql":  # writers take turns (start's checks)
                        con.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
                    for table, columns in SCHEMA.items():
                        if not sa.inspect(con).has_table(table):
                            con.execute(sa.text(f"CREATE TABLE {table} ({columns})"))

                    def run(sql, params):
                        result = con.execute(sa.text(sql), params)
                        return [tuple(r) for r in result] if result.returns_rows else []

                    def insert(table, records):
                        names = list(records[0])
                        con.execute(
                            sa.text(
                                f"INSERT INTO {table} ({', '.join(names)}) "
                                f"VALUES ({', '.join(':' + n for n in names)})"
                            ),
                            records,
                        )

                    run.insert = insert
                    return work(run)
            finally:
                engine.dispose()
        import duckdb

        con = self._duckdb(create=True)
        try:
            con.execute("BEGIN")
            for table, columns in SCHEMA.items():
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")

            def run(sql, params):
                cur = con.execute(_dollar(sql, params), params)
                return [tuple(r) for r in cur.fetchall()] if cur.description else []

            def insert(table, records):
                new_rows = pd.DataFrame(records)  # noqa: F841 (DuckDB reads it by name)
                names = ", ".join(records[0])
                con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM new_rows")

            run.insert = insert
            out = work(run)
            con.execute("COMMIT")
            return out
        except duckdb.Error as exc:
            raise LeadscoreError(
                f"{self.store}: the experiments could not be written ({str(exc).splitlines()[0]})"
            ) from exc
        finally:
            con.close()

    def _read(self, sql: str, params: dict) -> list[tuple]:
        if self.is_url:
            import sqlalchemy as sa

            engine = self._engine()
            try:
                with self._refusals(), engine.connect() as con:
                    return [tuple(r) for r in con.execute(sa.text(sql), params)]
            finally:
                engine.dispose()
        con = self._duckdb(create=False)
        try:
            return [tuple(r) for r in con.execute(_dollar(sql, params), params).fetchall()]
        finally:
            con.close()

    def _exists(self, table: str = EXPERIMENTS) -> bool:
        if self.is_url:
            import sqlalchemy as sa

            engine = self._engine()
            try:
                with self._refusals(), engine.connect() as con:
                    return sa.inspect(con).has_table(table)
            finally:
                engine.dispose()
        if not Path(self.store).is_file():
            return False
        con = self._duckdb(create=False)
        try:
            query = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
            return bool(con.execute(query, [table]).fetchone()[0])
        finally:
            con.close()

    def _duckdb(self, *, create: bool):
        return connect_duckdb(Path(self.store), create=create)

    def _engine(self):
        return database_engine(self.store, self.shown)

    def _refusals(self):
        return database_refusals(self.shown, "the experiments' database")


_COLUMNS = (
    "name",
    "started_us",
    "stopped_us",
    "share",
    "line",
    "rules_rate",
    "matched_leads",
    "planned_leads",
    "horizon_days",
    "aa",
    "design",
)


def _row(e: Experiment) -> dict:
    return {c: getattr(e, c) for c in _COLUMNS}


def _dollar(sql: str, params: dict) -> str:
    """`:name` parameters as DuckDB's `$name`."""
    for key in sorted(params, key=len, reverse=True):
        sql = sql.replace(f":{key}", f"${key}")
    return sql
