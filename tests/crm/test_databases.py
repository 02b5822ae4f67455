"""Opening a run's store: one line naming the store, never its password."""

from __future__ import annotations

import pytest

from leadscore.crm.databases import connect_duckdb, database_engine, database_refusals
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.secrets import masked_url


def test_a_bad_url_and_a_refusal_are_one_line_without_the_password(tmp_path):
    url = "nosuchdialect://user:s3cret-pass@db.example/leads"
    with pytest.raises(LeadscoreError) as info:
        database_engine(url, masked_url(url))
    assert "not a usable database URL" in str(info.value) and "s3cret-pass" not in str(info.value)
    engine = database_engine(f"sqlite:///{tmp_path / 'x.sqlite'}", "x.sqlite")
    with (
        pytest.raises(LeadscoreError) as info,
        database_refusals("x.sqlite", "the records"),
        engine.connect() as con,
    ):
        con.exec_driver_sql("SELECT * FROM no_such_table")
    assert str(info.value).startswith("x.sqlite: the records refused: ")


def test_a_file_that_is_not_duckdb_names_itself(tmp_path):
    path = tmp_path / "history.duckdb"
    path.write_text("not a database")
    with pytest.raises(LeadscoreError, match="history.duckdb: not a readable score history"):
        connect_duckdb(path, create=False)
    made = connect_duckdb(tmp_path / "new" / "h.duckdb", create=True)  # its folder made
    made.close()
    assert (tmp_path / "new" / "h.duckdb").is_file()
