"""The score history under faults: an empty first run, a table made before the schema was
fixed, runs at once (real processes, on DuckDB and on a real PostgreSQL cluster), a
history another run holds, a database that refuses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.operations.history import TABLE, ScoreHistory
from tests.operations.test_history import _run
from tests.postgres import postgres_cluster

ROOT = Path(__file__).resolve().parents[2]
LEADS = {f"L{i}": 0.01 * (i % 90 + 1) for i in range(600)}


def _writers(store: str, n: int = 2, runs: int = 4) -> list[subprocess.Popen]:
    """`n` processes, each writing the same `runs` as_of dates, released together."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from leadscore.operations.history import ScoreHistory
        from tests.operations.test_history_faults import LEADS
        from tests.operations.test_history import _run
        start = float(sys.argv[1])
        while time.time() < start:
            time.sleep(0.005)
        history = ScoreHistory({store!r})
        for day in range({runs}):
            history.write_run(_run(f"2025-02-0{{day + 1}}", LEADS))
        """
    )
    import time

    start = str(time.time() + 3.0)  # both interpreters up and waiting by then
    # run from the checkout: `python -c` finds the tests' helpers in its working folder
    return [
        subprocess.Popen([sys.executable, "-c", code, start], cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(n)
    ]


def _wait(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        _, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, stderr.decode()[-3000:]


def _no_duplicates(history: ScoreHistory, runs: int = 4) -> None:
    stored = history.read()
    assert len(stored) == runs * len(LEADS)
    assert not stored.duplicated(["as_of", "lead_id"]).any()


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_an_empty_first_run_does_not_fix_the_schema(tmp_path, kind):
    store = tmp_path / "h.duckdb" if kind == "duckdb" else f"sqlite:///{tmp_path / 'h.sqlite'}"
    history = ScoreHistory(store)
    history.write_run(_run("2025-01-01", {}))  # no open lead that day
    history.write_run(_run("2025-01-02", {"a": 0.3, "b": 0.6}))
    history.write_run(_run("2025-01-02", {"a": 0.4, "b": 0.6}))  # the same as_of again
    stored = history.read()
    assert len(stored) == 2 and stored["probability"].tolist() == [0.4, 0.6]


def test_a_history_made_before_the_key_is_rebuilt_once(tmp_path):
    """A table inferred from a first run's data, without a key, holding one run twice (as
    concurrent runs left it): the next write types it, keys it and keeps one row per key."""
    path = tmp_path / "old.duckdb"
    history = ScoreHistory(path)
    first = history._prepare(_run("2025-01-01", {"a": 0.1, "b": 0.2}))  # noqa: SLF001
    con = duckdb.connect(str(path))
    con.register("first", first)
    con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM first")
    con.execute(f"INSERT INTO {TABLE} SELECT * FROM first")  # the same run twice
    con.close()
    assert len(history.read()) == 4
    history.write_run(_run("2025-01-02", {"a": 0.3}))
    stored = history.read()
    assert len(stored) == 3 and not stored.duplicated(["as_of", "lead_id"]).any()
    con = duckdb.connect(str(path), read_only=True)
    keys = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
    ).fetchone()[0]
    con.close()
    assert keys == 1


def test_runs_at_once_on_duckdb_store_each_run_once(tmp_path):
    store = str(tmp_path / "h.duckdb")
    _wait(_writers(store))
    _no_duplicates(ScoreHistory(store))


def test_a_duckdb_history_another_run_holds_is_said_so(tmp_path, monkeypatch):
    from leadscore.crm import databases

    path = tmp_path / "held.duckdb"
    ScoreHistory(path).write_run(_run("2025-01-01", {"a": 0.1}))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(databases, "DUCKDB_WAIT_S", 0.5)
        with pytest.raises(LeadscoreError, match="another run holds the score history"):
            ScoreHistory(path).write_run(_run("2025-01-02", {"a": 0.2}))
    finally:
        holder.kill()
        holder.wait()
    # a truncated file is not a history, said in one line
    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(LeadscoreError, match="not a readable score history"):
        ScoreHistory(broken).read()


def test_postgres_runs_at_once_and_first_runs_at_once_store_each_run_once():
    with postgres_cluster("history") as url:
        # two first runs at once (no table yet), then every run of both, on one key
        _wait(_writers(url, n=2))
        _no_duplicates(ScoreHistory(url))
        # an empty first run on PostgreSQL too (another database of the same cluster)
        history = ScoreHistory(url)
        history.write_run(_run("2025-03-01", {}))
        assert len(history.read()) == 4 * len(LEADS)


def test_a_database_that_refuses_is_one_line_without_the_password():
    history = ScoreHistory("postgresql+psycopg://ls:hunter2@127.0.0.1:9/scores")
    with pytest.raises(LeadscoreError) as caught:
        history.read()
    text = str(caught.value)
    assert "hunter2" not in text and "refused" in text and "***@127.0.0.1:9" in text
    assert "\n" not in text
