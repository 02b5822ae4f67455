from __future__ import annotations

import textwrap

import pytest
import yaml
from pydantic import ValidationError

from leadscore.crm.errors import DatasetError
from leadscore.crm.importer import import_tables
from leadscore.crm.mapping import Mapping

CONTACTS = """\
Record ID,Create Date,Original Source
1,2025-01-01 09:00,ORGANIC_SEARCH
2,2025-01-02 10:00,PAID_SEARCH
"""
HISTORY = """\
Record ID,Changed,Lead Status,Why
1,2025-01-01 09:30,IN_PROGRESS,
1,2025-01-03 09:30,OPEN_DEAL,
2,2025-01-02 11:00,Rückruf,
2,2025-01-04 11:00,UNQUALIFIED,student
"""
MAPPING = {
    "leads": {
        "columns": {
            "lead_id": "Record ID",
            "created_at": "Create Date",
            "source": "Original Source",
        }
    },
    "lead_status": {
        "columns": {
            "lead_id": "Record ID",
            "changed_at": "Changed",
            "status": "Lead Status",
            "reason": "Why",
        }
    },
    "status_stages": {"working": ["Rückruf"]},
}


def _files(tmp_path, history=HISTORY):
    (tmp_path / "contacts.csv").write_text(textwrap.dedent(CONTACTS))
    (tmp_path / "history.csv").write_text(textwrap.dedent(history))
    return tmp_path / "contacts.csv", tmp_path / "history.csv"


def test_a_status_history_is_imported_with_the_mappings_stages(tmp_path):
    leads, history = _files(tmp_path)
    result = import_tables(
        Mapping.model_validate(MAPPING), leads=leads, lead_status=history, out_dir=tmp_path / "ds"
    )
    st = result.dataset.lead_status
    assert list(st["stage"]) == ["working", "accepted", "working", "rejected"]
    assert st["reason"].iloc[-1] == "student"
    written = yaml.safe_load((tmp_path / "ds" / "dataset.yaml").read_text())
    assert written["status_stages"] == {"working": ["Rückruf"]}


def test_an_unknown_status_names_the_exports_file_column_and_row(tmp_path):
    leads, history = _files(tmp_path, HISTORY.replace("OPEN_DEAL", "Call me maybe"))
    with pytest.raises(DatasetError) as info:
        import_tables(
            Mapping.model_validate(MAPPING),
            leads=leads,
            lead_status=history,
            out_dir=tmp_path / "ds",
        )
    err = info.value
    assert (err.file, err.column, err.rows) == ("history.csv", "Lead Status", [2])
    assert "unknown lead status" in str(err) and "under status_stages in" in str(err)
    assert not (tmp_path / "ds").exists()  # nothing written


def test_a_mapping_listing_a_status_under_two_stages_is_refused():
    with pytest.raises(ValidationError, match="both working and rejected"):
        Mapping.model_validate({"status_stages": {"working": ["x"], "rejected": ["X"]}})
