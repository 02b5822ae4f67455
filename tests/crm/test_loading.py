from __future__ import annotations

import io

import pandas as pd
import pytest

from leadscore.crm import DatasetError, load_dataset
from leadscore.crm.errors import ConfigError
from tests.conftest import ACTIVITIES, DEALS, LEADS, write_dataset


def test_loads_and_normalises_types(good_dataset):
    ds = load_dataset(good_dataset)
    leads = ds.leads.set_index("lead_id")
    assert str(leads["created_at"].dtype) == "datetime64[us, UTC]"
    # Naive timestamps are UTC; offsets are converted to UTC.
    assert leads.loc["L1", "created_at"] == pd.Timestamp("2025-01-01T10:00:00Z")
    assert leads.loc["L2", "created_at"] == pd.Timestamp("2025-01-02T00:00:00Z")
    assert leads.loc["L3", "created_at"] == pd.Timestamp("2025-01-03T08:00:00Z")
    assert isinstance(leads["industry"].dtype, pd.CategoricalDtype)
    assert leads["employees"].dtype == "float64"
    assert leads.loc["L2", "source"] == "unknown"  # blank first-touch source stays countable
    assert ds.profile_columns == ("industry", "employees")
    assert list(ds.deals["status"]) == ["won", "open"]
    assert ds.data_end == pd.Timestamp("2025-02-01T00:00:00Z")
    assert ds.activities["value"].tolist()[0] == 30.0


def test_parquet_loads_the_same_as_csv(good_dataset, tmp_path):
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    csv_ds = load_dataset(good_dataset)
    for name in ("leads", "activities", "deals"):
        pd.read_csv(good_dataset / f"{name}.csv").to_parquet(pq_dir / f"{name}.parquet")
    pq_ds = load_dataset(pq_dir)
    pd.testing.assert_frame_equal(pq_ds.leads, csv_ds.leads, check_categorical=False)
    pd.testing.assert_frame_equal(pq_ds.deals, csv_ds.deals, check_categorical=False)


def test_activities_and_deals_are_optional(tmp_path):
    ds = load_dataset(write_dataset(tmp_path / "d", leads=LEADS))
    assert len(ds.activities) == 0 and len(ds.deals) == 0
    assert ds.data_end == pd.Timestamp("2025-01-03T08:00:00Z")


BAD_CASES = {
    "missing required column": (
        {"leads": LEADS.replace("source,", "origin,")},
        "leads.csv",
        "source",
        [],
        "missing required column",
    ),
    "duplicate lead_id": (
        {"leads": LEADS.replace("L3,", "L1,")},
        "leads.csv",
        "lead_id",
        [1, 3],
        "duplicate lead_id",
    ),
    "empty lead_id": (
        {"leads": LEADS.replace("L2,", ",")},
        "leads.csv",
        "lead_id",
        [2],
        "empty lead_id",
    ),
    "unparseable timestamp": (
        {"leads": LEADS.replace("2025-01-02,", "02/30/2025,")},
        "leads.csv",
        "created_at",
        [2],
        "unparseable timestamp",
    ),
    "empty created_at": (
        {"leads": LEADS.replace("2025-01-02,", ",")},
        "leads.csv",
        "created_at",
        [2],
        "empty created_at",
    ),
    "activity for unknown lead": (
        {"activities": ACTIVITIES.replace("L3,", "L9,")},
        "activities.csv",
        "lead_id",
        [3],
        "lead_id not found in leads",
    ),
    "deal for unknown lead": (
        {"deals": DEALS.replace("D2,L3", "D2,L7")},
        "deals.csv",
        "lead_id",
        [2],
        "lead_id not found in leads",
    ),
    "activity before the lead existed": (
        {"activities": ACTIVITIES.replace("2025-01-04T11", "2025-01-02T11")},
        "activities.csv",
        "occurred_at",
        [3],
        "before the lead's created_at",
    ),
    "unparseable activity time": (
        {"activities": ACTIVITIES.replace("2025-01-02T09:00:00Z", "yesterday")},
        "activities.csv",
        "occurred_at",
        [2],
        "unparseable timestamp",
    ),
    "empty activity type": (
        {"activities": ACTIVITIES.replace("email_open", "")},
        "activities.csv",
        "activity_type",
        [2],
        "empty activity_type",
    ),
    "non-numeric value": (
        {"activities": ACTIVITIES.replace(",30,", ",thirty,")},
        "activities.csv",
        "value",
        [1],
        "not a number",
    ),
    "unknown deal status": (
        {"deals": DEALS.replace(",open,", ",pending,")},
        "deals.csv",
        "status",
        [2],
        "unknown deal status",
    ),
    "won deal without closed_at": (
        {"deals": DEALS.replace("2025-02-01,won", ",won")},
        "deals.csv",
        "closed_at",
        [1],
        "won or lost deal without closed_at",
    ),
    "open deal with closed_at": (
        {"deals": DEALS.replace("2025-01-05,,open", "2025-01-05,2025-01-09,open")},
        "deals.csv",
        "closed_at",
        [2],
        "open deal with a closed_at",
    ),
    "closed before created": (
        {"deals": DEALS.replace("2025-02-01,won", "2025-01-04,won")},
        "deals.csv",
        "closed_at",
        [1],
        "closed_at before the deal's created_at",
    ),
    "deal before the lead existed": (
        {"deals": DEALS.replace("D2,L3,2025-01-05", "D2,L3,2025-01-02")},
        "deals.csv",
        "created_at",
        [2],
        "before the lead's created_at",
    ),
    "negative amount": (
        {"deals": DEALS.replace("1000", "-5")},
        "deals.csv",
        "amount",
        [1],
        "negative amount",
    ),
    "empty leads file": ({"leads": ""}, "leads.csv", None, [], "file is empty"),
    "empty activities file": ({"activities": ""}, "activities.csv", None, [], "file is empty"),
    "leads with a header and no rows": (
        {"leads": "lead_id,created_at,source\n"},
        "leads.csv",
        None,
        [],
        "no data rows",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_each_violation_names_file_column_and_row(tmp_path, case):
    overrides, file, column, rows, problem = BAD_CASES[case]
    tables = {"leads": LEADS, "activities": ACTIVITIES, "deals": DEALS, **overrides}
    folder = write_dataset(tmp_path / "crm", **tables)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    err = info.value
    assert err.file == file
    assert err.column == column
    assert err.rows == rows
    message = str(err)
    assert problem in message and file in message
    if column:
        assert f"column '{column}'" in message
    if rows:
        assert f"row{'s' if len(rows) > 1 else ''} {rows[0]}" in message
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written


def test_early_activities_can_be_dropped_and_counted(tmp_path):
    early = ACTIVITIES.replace("2025-01-04T11", "2025-01-02T11")
    folder = write_dataset(tmp_path / "crm", leads=LEADS, activities=early, deals=DEALS)
    ds = load_dataset(folder, early_events="drop")
    assert len(ds.activities) == 2
    assert ds.dropped == {"activities_before_lead_created": 1}
    # The same policy can come from dataset.yaml.
    (folder / "dataset.yaml").write_text("early_events: drop\n")
    assert load_dataset(folder).dropped == {"activities_before_lead_created": 1}


def test_error_lists_first_rows_and_total(tmp_path):
    rows = "".join(f"L{i},2025-01-01,website\n" for i in range(1, 9))
    folder = write_dataset(tmp_path / "d", leads="lead_id,created_at,source\n" + rows + rows)
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    assert info.value.rows == [1, 2, 3, 4, 5]
    assert info.value.total == 16
    assert "(16 in all)" in str(info.value)


def test_csv_and_parquet_side_by_side_is_ambiguous(good_dataset):
    pd.read_csv(good_dataset / "leads.csv").to_parquet(good_dataset / "leads.parquet")
    with pytest.raises(DatasetError, match="both leads.csv and leads.parquet"):
        load_dataset(good_dataset)


def test_missing_folder_and_missing_leads(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no leads table"):
        load_dataset(tmp_path / "empty")


# --- dataset.yaml ------------------------------------------------------------------------

FLAT = """\
lead_id,created_at,source,Converted,Tags,Total Visits
1,2024-01-01,website,1,Closed,5
2,2024-01-02,partner,0,,2
3,2024-01-03,website,yes,Will revert,
"""


def test_flat_dataset_loads_with_its_outcome(tmp_path):
    folder = write_dataset(
        tmp_path / "flat",
        leads=FLAT,
        dataset="label: {column: Converted}\ncolumns: {leaky: [Tags]}\n",
    )
    ds = load_dataset(folder)
    assert ds.is_flat and ds.label_column == "Converted"
    assert ds.leads["Converted"].tolist() == [1, 0, 1]
    assert ds.profile_columns == ("Tags", "Total Visits")
    assert ds.spec.columns.leaky == ["Tags"]


def test_flat_dataset_rejects_unknown_outcome_values(tmp_path):
    folder = write_dataset(
        tmp_path / "flat",
        leads=FLAT.replace(",yes,", ",maybe,"),
        dataset="label: {column: Converted}\n",
    )
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    assert (info.value.column, info.value.rows) == ("Converted", [3])


def test_flat_dataset_cannot_also_have_history(tmp_path):
    folder = write_dataset(
        tmp_path / "flat",
        leads=FLAT,
        activities="lead_id,occurred_at,activity_type\n1,2024-01-02,call\n",
        dataset="label: {column: Converted}\n",
    )
    with pytest.raises(DatasetError, match="flat dataset"):
        load_dataset(folder)


def test_column_roles_ignore_and_type_overrides(tmp_path):
    folder = write_dataset(
        tmp_path / "d",
        leads=LEADS,
        dataset="columns: {ignore: [industry], categorical: [employees]}\n",
    )
    ds = load_dataset(folder)
    assert "industry" not in ds.leads.columns and ds.profile_columns == ("employees",)
    assert isinstance(ds.leads["employees"].dtype, pd.CategoricalDtype)


def test_numeric_override_reports_bad_cells(tmp_path):
    folder = write_dataset(tmp_path / "d", leads=LEADS, dataset="columns: {numeric: [industry]}\n")
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    assert (info.value.column, info.value.rows[0]) == ("industry", 1)


def test_dataset_yaml_naming_a_missing_column(tmp_path):
    folder = write_dataset(tmp_path / "d", leads=LEADS, dataset="columns: {leaky: [Tags]}\n")
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    assert info.value.file == "dataset.yaml" and info.value.column == "Tags"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("labels: {column: x}\n", "labels"),
        ("early_events: sometimes\n", "early_events"),
        ("activity_groups: {sales_touch: []}\n", "lists no activity type"),
        ("- just\n- a list\n", "mapping"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_dataset_yaml(tmp_path, text, fragment):
    folder = write_dataset(tmp_path / "d", leads=LEADS, dataset=text)
    with pytest.raises(ConfigError, match="dataset.yaml") as info:
        load_dataset(folder)
    assert fragment in str(info.value)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_empty_created_at_fails_the_same_in_csv_and_typed_parquet(tmp_path, fmt):
    """A Parquet column of real timestamps with a NaT is as empty as a blank CSV cell."""
    leads = pd.read_csv(io.StringIO(LEADS))
    leads["created_at"] = pd.to_datetime(leads["created_at"], utc=True, format="ISO8601")
    leads.loc[1, "created_at"] = pd.NaT
    folder = tmp_path / fmt
    folder.mkdir()
    if fmt == "csv":
        leads.to_csv(folder / "leads.csv", index=False)
    else:
        leads.to_parquet(folder / "leads.parquet", index=False)
        assert pd.read_parquet(folder / "leads.parquet")["created_at"].dtype.kind == "M"
    with pytest.raises(DatasetError, match=rf"leads\.{fmt}, column 'created_at', row 2: empty"):
        load_dataset(folder)


def test_an_account_id_is_kept_apart_from_the_profile(tmp_path):
    leads = (
        "lead_id,created_at,source,account_id,industry\n"
        "L1,2025-01-01,website,A-1,software\n"
        "L2,2025-01-02,website,A-1,software\n"
        "L3,2025-01-03,partner,,retail\n"
    )
    ds = load_dataset(write_dataset(tmp_path / "crm", leads=leads))
    assert ds.profile_columns == ("industry",)
    assert ds.leads["account_id"].tolist()[:2] == ["A-1", "A-1"]
    assert pd.isna(ds.leads["account_id"].iloc[2])


def test_an_account_id_too_long_is_named_by_row(tmp_path):
    leads = (
        "lead_id,created_at,source,account_id\n"
        "L1,2025-01-01,website,A-1\n"
        f"L2,2025-01-02,website,{'x' * 300}\n"
    )
    with pytest.raises(
        DatasetError, match=r"leads\.csv, column 'account_id', row 2: account_id over 256"
    ):
        load_dataset(write_dataset(tmp_path / "crm", leads=leads))
