from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm import DatasetError, load_dataset
from leadscore.crm.contract import DatasetSpec, status_key
from leadscore.crm.errors import ConfigError
from leadscore.crm.lead_status import status_like_columns
from tests.conftest import DEALS, LEADS, write_dataset

STATUS = """\
lead_id,changed_at,status,reason,owner
L1,2025-01-01T12:00:00Z,Working - Contacted,,ann
L1,2025-01-02T09:00:00Z,Qualified,,ann
L3,2025-01-04T11:00:00Z,IN_PROGRESS,,bob
L3,2025-01-05T11:00:00Z,Closed - Not Converted,wrong contact,bob
L2,2025-01-03T00:00:00Z,BAD_TIMING,,
"""


def test_status_history_is_read_and_mapped_to_stages(tmp_path):
    ds = load_dataset(write_dataset(tmp_path / "d", leads=LEADS, deals=DEALS, lead_status=STATUS))
    st = ds.lead_status
    assert list(st["lead_id"]) == ["L1", "L1", "L2", "L3", "L3"]  # in time order per lead
    assert list(st["stage"]) == ["working", "accepted", "rejected", "working", "rejected"]
    assert st.loc[4, "reason"] == "wrong contact" and pd.isna(st.loc[0, "reason"])
    assert str(st["changed_at"].dtype) == "datetime64[us, UTC]"


def test_a_dataset_without_the_table_has_none(good_dataset):
    assert load_dataset(good_dataset).lead_status is None


def test_the_big_crms_values_are_recognised():
    mapping = DatasetSpec().status_map
    expected = {
        "Working - Contacted": "working",  # Salesforce
        "Open - Not Contacted": "new",
        "Qualified": "accepted",
        "Unqualified": "rejected",
        "Closed - Not Converted": "rejected",
        "IN_PROGRESS": "working",  # HubSpot
        "OPEN_DEAL": "accepted",
        "UNQUALIFIED": "rejected",
        "BAD_TIMING": "rejected",
        "Cannot Contact": "rejected",  # Dynamics 365
        "Junk Lead": "rejected",  # Zoho
    }
    assert {v: mapping[status_key(v)] for v in expected} == expected


def test_dataset_yaml_maps_its_own_values_over_the_defaults(tmp_path):
    status = "lead_id,changed_at,status\nL1,2025-01-02,Rückruf\nL1,2025-01-03,Open\n"
    yaml = "status_stages:\n  working: [Rückruf]\n  rejected: [open]\n"
    ds = load_dataset(write_dataset(tmp_path / "d", leads=LEADS, lead_status=status, dataset=yaml))
    assert list(ds.lead_status["stage"]) == ["working", "rejected"]


def test_one_value_under_two_stages_is_a_config_error(tmp_path):
    yaml = "status_stages:\n  working: [Call back]\n  rejected: [call-back]\n"
    folder = write_dataset(tmp_path / "d", leads=LEADS, lead_status=STATUS, dataset=yaml)
    with pytest.raises(ConfigError, match="listed under both working and rejected"):
        load_dataset(folder)


BAD = {
    "unknown status": (
        STATUS.replace("IN_PROGRESS", "Maybe later"),
        "status",
        [3],
        "unknown lead status",
    ),
    "status before the lead existed": (
        STATUS.replace("2025-01-04T11:00:00Z", "2024-12-30T11:00:00Z"),
        "changed_at",
        [3],
        "changed_at before the lead's created_at",
    ),
    "reason on a non-rejection": (
        STATUS.replace("Qualified,,ann", "Qualified,great fit,ann"),
        "reason",
        [2],
        "a reason on a status that is not a rejection",
    ),
    "unknown lead": (STATUS.replace("L2,", "L9,"), "lead_id", [5], "lead_id not found"),
    "bad timestamp": (
        STATUS.replace("2025-01-03T00:00:00Z", "yesterday"),
        "changed_at",
        [5],
        "",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_rows_name_file_column_and_row(tmp_path, case):
    text, column, rows, problem = BAD[case]
    folder = write_dataset(tmp_path / "d", leads=LEADS, lead_status=text)
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    err = info.value
    assert (err.file, err.column, err.rows) == ("lead_status.csv", column, rows)
    assert problem in str(err) and str(err).startswith("lead_status.csv, column ")


def test_early_statuses_can_be_dropped_and_counted(tmp_path):
    folder = write_dataset(
        tmp_path / "d",
        leads=LEADS,
        lead_status=BAD["status before the lead existed"][0],
        dataset="early_events: drop\n",
    )
    ds = load_dataset(folder)
    assert ds.dropped == {"statuses_before_lead_created": 1} and len(ds.lead_status) == 4


def test_status_columns_of_the_leads_table_are_found():
    leads = pd.DataFrame(
        {
            "lead_status": ["x", "y", "z"],  # by its name
            "stage_now": ["Working - Contacted", "Unqualified", "Qualified"],  # by its values
            "industry": ["software", "retail", "open"],  # one status-like word: a profile
        }
    )
    found = status_like_columns(leads, ["lead_status", "stage_now", "industry"])
    assert set(found) == {"lead_status", "stage_now"}


def test_validate_counts_the_statuses_by_stage(tmp_path, good_dataset):
    from leadscore.crm.summary import summarize_dataset

    assert "lead_status" not in summarize_dataset(load_dataset(good_dataset))
    ds = load_dataset(write_dataset(tmp_path / "d", leads=LEADS, deals=DEALS, lead_status=STATUS))
    summary = summarize_dataset(ds)
    assert summary["lead_status"] == 5 and summary["leads_with_status"] == 3
    assert summary["lead_status_by_stage"] == {"rejected": 2, "working": 2, "accepted": 1}
