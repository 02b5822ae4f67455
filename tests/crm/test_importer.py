"""Mapping import: a hand-written export with odd names, day-first dates and CRM stages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadscore.crm.errors import ConfigError, DatasetError, LeadscoreError
from leadscore.crm.importer import import_tables
from leadscore.crm.loading import load_dataset
from leadscore.crm.mapping import Mapping, builtin_mapping_path, load_mapping, snake_case

XEDUCATION = Path(__file__).resolve().parents[2].parent / "shared/datasets/xeducation/Leads.csv"

CONTACTS = """\
Contact ID;Created On;Lead Source;Company Size;Job Title;Notes
C-1;03/04/2025 10:00;Web Form;51-200;Director;
C-2;13/04/2025 09:30;Trade Show;1-10;Student;n/a
C-3;01/05/2025 18:15;;201-1000;VP Sales;called twice
"""
TOUCHES = """\
Contact;When;What;Seconds
C-1;04/04/2025 08:00;Email Opened;
C-1;05/04/2025 08:00;Webinar;3600
C-3;02/05/2025 09:00;Phone Call;120
"""
OPPORTUNITIES = """\
Opportunity;Contact;Opened;Close Date;Stage;Amount (EUR)
O-1;C-1;06/04/2025 10:00;20/05/2025 10:00;Closed Won;12000
O-2;C-2;14/04/2025 10:00;30/04/2025 10:00;Closed Lost;
O-3;C-3;03/05/2025 10:00;;Negotiation;5000
"""
MAPPING = """\
name: acme-crm
csv: {delimiter: ";"}
missing_values: ["n/a"]
dates: {dayfirst: true, timezone: Europe/Paris}
leads:
  columns: {lead_id: Contact ID, created_at: Created On, source: Lead Source}
  values:
    source: {Web Form: website, Trade Show: trade_show}
  rename: {Job Title: job_role}
  ignore: [Notes]
activities:
  columns: {lead_id: Contact, occurred_at: When, activity_type: What, value: Seconds}
  values:
    activity_type: {Email Opened: email_open, Webinar: webinar_attendance, Phone Call: call}
deals:
  columns:
    deal_id: Opportunity
    lead_id: Contact
    created_at: Opened
    closed_at: Close Date
    status: Stage
    amount: Amount (EUR)
  values:
    status: {Closed Won: won, Closed Lost: lost, "*": open}
"""


def _export(tmp_path: Path, mapping: str = MAPPING, **override: str) -> dict:
    texts = {"leads": CONTACTS, "activities": TOUCHES, "deals": OPPORTUNITIES, **override}
    files = {}
    for table, text in texts.items():
        if text is not None:
            files[table] = tmp_path / f"export_{table}.csv"
            files[table].write_text(textwrap.dedent(text))
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping))
    return {"mapping": load_mapping(path), **files, "out_dir": tmp_path / "dataset"}


def test_export_with_odd_names_dayfirst_dates_and_stages_becomes_a_dataset(tmp_path):
    result = import_tables(**_export(tmp_path))
    ds = result.dataset
    leads = ds.leads.set_index("lead_id")
    # 03/04/2025 10:00 in Paris (CEST, UTC+2) is 3 April 08:00 UTC, not 4 March.
    assert leads.loc["C-1", "created_at"] == pd.Timestamp("2025-04-03T08:00Z")
    # 13/04 only parses day-first; winter time does not apply in April.
    assert leads.loc["C-2", "created_at"] == pd.Timestamp("2025-04-13T07:30Z")
    assert list(leads["source"].astype(str)) == ["website", "trade_show", "unknown"]
    assert "job_role" in ds.profile_columns and "company_size" in ds.profile_columns
    assert "notes" not in ds.profile_columns  # ignored: written, not a feature
    assert ds.spec.columns.ignore == ["notes"]
    assert pd.isna(pd.read_parquet(tmp_path / "dataset/leads.parquet")["notes"].iloc[1])  # n/a
    deals = ds.deals.set_index("deal_id")
    assert list(deals["status"].astype(str)) == ["won", "lost", "open"]
    assert deals.loc["O-1", "amount"] == 12000 and deals.loc["O-1", "closed_at"] == pd.Timestamp(
        "2025-05-20T08:00Z"
    )
    assert sorted(ds.activities["activity_type"].astype(str)) == [
        "call",
        "email_open",
        "webinar_attendance",
    ]
    assert ds.activities["value"].max() == 3600
    assert result.columns["deals"]["Stage"] == "status"
    assert (tmp_path / "dataset/mapping.yaml").is_file()


def test_csv_output_round_trips(tmp_path):
    args = _export(tmp_path)
    ds = import_tables(**args, file_format="csv").dataset
    assert (tmp_path / "dataset/leads.csv").is_file() and len(ds.deals) == 3


def test_flat_export_declares_outcome_leaky_and_ignored_columns(tmp_path):
    flat = """\
    Id,Signed Up,Channel,Score By Sales,Visits,Won?
    1,2025-01-01,web,hot,3,Yes
    2,2025-01-02,web,cold,0,No
    3,2025-01-03,ads,cold,1,No
    """
    mapping = """\
    leads:
      columns: {lead_id: Id, created_at: Signed Up, source: Channel}
      outcome: {column: "Won?", positive: ["yes"]}
      values:
        "Won?": {"Yes": "yes", "No": "no"}
      leaky: [Score By Sales]
    """
    ds = import_tables(
        **_export(tmp_path, mapping, leads=flat, activities=None, deals=None)
    ).dataset
    assert ds.is_flat and ds.label_column == "won"
    assert list(ds.leads["won"]) == [1, 0, 0]
    assert ds.spec.columns.leaky == ["score_by_sales"]


def test_time_order_makes_creation_times_in_that_order(tmp_path):
    rows = """\
    Number,Origin,Converted
    30,web,1
    10,web,0
    20,ads,0
    """
    mapping = """\
    leads:
      columns: {lead_id: Number, source: Origin}
      time_order: {column: Number, start: "2020-01-01", days: 30}
      outcome: {column: Converted}
    """
    ds = import_tables(
        **_export(tmp_path, mapping, leads=rows, activities=None, deals=None)
    ).dataset
    created = ds.leads.set_index("lead_id")["created_at"]
    assert created["10"] < created["20"] < created["30"]
    assert created["10"] == pd.Timestamp("2020-01-01T00:00Z")
    assert created["20"] - created["10"] == pd.Timedelta(days=10)
    assert ds.spec.time_order == "Number"


# --- every mapping error names the entry or the export's column, and writes nothing ---------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("Contact ID", "Contact Id"), r"leads\.columns\.lead_id names column 'Contact Id'"),
        (
            ("lead_id: Contact ID,", "lead_id: Contact ID, phone: Notes,"),
            r"'phone' is not a column of the leads table",
        ),
        (("created_at: Created On, ", ""), r"leads\.columns\.created_at is not mapped.*time_order"),
        (
            ("Job Title: job_role", "Job Title: company_size"),
            r"'Company Size' and 'Job Title' would both be named 'company_size'",
        ),
        (("    source: {Web", "    sourse: {Web"), r"leads\.values\.sourse names neither"),
        (("ignore: [Notes]", "ignore: [Remarks]"), r"leads\.ignore names column 'Remarks'"),
        (("dayfirst: true", "dayfirst: yes please"), r"dates\.dayfirst"),
        (("timezone: Europe/Paris", "timezone: Mars/Olympus"), r"unknown time zone"),
        (("missing_values:", "missing_value:"), r"missing_value: Extra inputs"),
        (
            ("lead_id: Contact, occurred_at", "lead_id: Opportunity, occurred_at"),
            r"activities\.columns\.lead_id names column 'Opportunity'",
        ),
    ],
)
def test_mapping_errors_name_the_entry(tmp_path, change, expected):
    old, new = change
    assert old in MAPPING
    with pytest.raises(ConfigError, match=expected):
        import_tables(**_export(tmp_path, MAPPING.replace(old, new, 1)))
    assert not (tmp_path / "dataset").exists()


def test_both_created_at_and_time_order_is_refused(tmp_path):
    mapping = MAPPING.replace(
        "  rename: {Job Title: job_role}\n",
        "  rename: {Job Title: job_role}\n  time_order: {column: Contact ID}\n",
    )
    with pytest.raises(ConfigError, match="either columns.created_at or time_order"):
        import_tables(**_export(tmp_path, mapping))


def test_month_first_dates_under_a_dayfirst_mapping_name_the_row(tmp_path):
    contacts = CONTACTS.replace("13/04/2025 09:30", "04/31/2025 09:30")
    with pytest.raises(DatasetError) as info:
        import_tables(**_export(tmp_path, leads=contacts))
    e = info.value
    assert (e.file, e.column, e.rows) == ("export_leads.csv", "Created On", [2])
    assert "dates.dayfirst" in str(e) and "04/31/2025 09:30" in str(e)
    assert not (tmp_path / "dataset").exists()


def test_unmapped_stage_names_the_export_column_and_the_mapping_entry(tmp_path):
    mapping = MAPPING.replace(', "*": open', "")
    with pytest.raises(DatasetError) as info:
        import_tables(**_export(tmp_path, mapping))
    e = info.value
    assert (e.file, e.column, e.rows) == ("export_deals.csv", "Stage", [3])
    assert "Negotiation" in str(e) and "deals.values.status" in str(e)
    assert not (tmp_path / "dataset").exists() and not list(tmp_path.glob(".dataset*"))


def test_loader_errors_come_back_in_the_exports_terms(tmp_path):
    touches = TOUCHES + "C-9;06/04/2025 08:00;Webinar;\n"
    with pytest.raises(DatasetError) as info:
        import_tables(**_export(tmp_path, activities=touches))
    e = info.value
    assert (e.file, e.column, e.rows) == ("export_activities.csv", "Contact", [4])
    assert "not found in leads" in str(e)

    contacts = CONTACTS + "C-1;03/05/2025 10:00;Web Form;1-10;CEO;\n"
    with pytest.raises(DatasetError, match=r"export_leads.csv, column 'Contact ID', rows 1, 4"):
        import_tables(**_export(tmp_path, leads=contacts))


def test_bad_time_order_and_outcome_values_name_the_column(tmp_path):
    rows = "Number,Origin,Converted\n1,web,1\nx,web,0\n"
    mapping = """\
    leads:
      columns: {lead_id: Number, source: Origin}
      time_order: {column: Number}
      outcome: {column: Converted}
    """
    with pytest.raises(DatasetError, match=r"column 'Number', row 2: empty or non-numeric"):
        import_tables(**_export(tmp_path, mapping, leads=rows, activities=None, deals=None))
    rows = "Number,Origin,Converted\n1,web,1\n2,web,maybe\n"
    with pytest.raises(
        DatasetError, match=r"column 'Converted', row 2: outcome value not understood"
    ):
        import_tables(**_export(tmp_path, mapping, leads=rows, activities=None, deals=None))


def test_mapping_file_problems(tmp_path):
    with pytest.raises(ConfigError, match="mapping file not found"):
        load_mapping(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("leads: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_mapping(bad)
    with pytest.raises(ConfigError, match="no built-in mapping 'hubspot'"):
        builtin_mapping_path("hubspot")
    with pytest.raises(ValueError, match="cannot also have activities"):
        Mapping.model_validate({"leads": {"outcome": {"column": "x"}}, "deals": {}})


def test_given_file_without_mapping_entry_and_the_reverse(tmp_path):
    args = _export(tmp_path, MAPPING, deals=None)
    with pytest.raises(LeadscoreError, match="maps deals but no deals file"):
        import_tables(**args)


def test_an_existing_folder_is_not_overwritten(tmp_path):
    args = _export(tmp_path)
    args["out_dir"].mkdir()
    (args["out_dir"] / "keep.txt").write_text("mine")
    with pytest.raises(LeadscoreError, match="not empty"):
        import_tables(**args)
    assert (args["out_dir"] / "keep.txt").read_text() == "mine"
    import_tables(**args, overwrite=True)
    assert not (args["out_dir"] / "keep.txt").exists()


def test_snake_case():
    assert snake_case("Total Time Spent on Website") == "total_time_spent_on_website"
    assert snake_case("Amount (EUR)") == "amount_eur"


# --- X Education ------------------------------------------------------------------------------

XE_COLUMNS = [
    "Prospect ID",
    "Lead Number",
    "Lead Origin",
    "Lead Source",
    "Do Not Email",
    "Do Not Call",
    "Converted",
    "TotalVisits",
    "Total Time Spent on Website",
    "Page Views Per Visit",
    "Last Activity",
    "Country",
    "Specialization",
    "How did you hear about X Education",
    "What is your current occupation",
    "What matters most to you in choosing a course",
    "Search",
    "Magazine",
    "Newspaper Article",
    "X Education Forums",
    "Newspaper",
    "Digital Advertisement",
    "Through Recommendations",
    "Receive More Updates About Our Courses",
    "Tags",
    "Lead Quality",
    "Update me on Supply Chain Content",
    "Get updates on DM Content",
    "Lead Profile",
    "City",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
    "I agree to pay the amount through cheque",
    "A free copy of Mastering The Interview",
    "Last Notable Activity",
]
XE_ROWS = [
    {
        "Prospect ID": "a1",
        "Lead Number": "660737",
        "Lead Origin": "API",
        "Lead Source": "Olark Chat",
        "Converted": "0",
        "What is your current occupation": "Unemployed",
        "Tags": "Ringing",
    },
    {
        "Prospect ID": "a2",
        "Lead Number": "579533",
        "Lead Origin": "Landing Page Submission",
        "Lead Source": "google",
        "Converted": "1",
        "What is your current occupation": "Select",
        "Tags": "Closed by Horizzon",
        "Lead Quality": "High in Relevance",
        "City": "Select",
    },
    {
        "Prospect ID": "a3",
        "Lead Number": "600000",
        "Lead Origin": "Lead Add Form",
        "Lead Source": "Reference",
        "Converted": "1",
        "Do Not Email": "Yes",
        "What is your current occupation": "Working Professional",
        "Lead Quality": "Might be",
    },
]


def _xe_csv(path: Path) -> Path:
    lines = [",".join(XE_COLUMNS)]
    for row in XE_ROWS:
        lines.append(
            ",".join(
                row.get(c, "No" if c.startswith(("Do Not", "Search")) else "") for c in XE_COLUMNS
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_xeducation_mapping_on_a_miniature_export(tmp_path):
    export = _xe_csv(tmp_path / "Leads.csv")
    mapping = load_mapping(builtin_mapping_path("xeducation"))
    ds = import_tables(mapping, leads=export, out_dir=tmp_path / "xe").dataset
    leads = ds.leads.set_index("lead_id")
    assert ds.is_flat and ds.label_column == "converted"
    assert pd.isna(leads.loc["579533", "occupation"])  # "Select": left blank
    assert leads.loc["579533", "source"] == "Google"  # the lower-case duplicate merged
    # Lead Number is the clock: the smallest number is the oldest lead.
    assert leads["created_at"].sort_values().index.tolist() == ["579533", "600000", "660737"]
    assert {"tags", "lead_quality", "last_activity"} <= set(ds.spec.columns.leaky)
    assert ds.spec.columns.ignore == ["prospect_id"]
    assert {"visits", "time_on_website", "occupation", "lead_origin"} <= set(ds.profile_columns)


@pytest.mark.skipif(not XEDUCATION.is_file(), reason=f"{XEDUCATION} not on this machine")
def test_xeducation_real_export(tmp_path):
    mapping = load_mapping(builtin_mapping_path("xeducation"))
    result = import_tables(mapping, leads=XEDUCATION, out_dir=tmp_path / "xe")
    ds = result.dataset
    assert len(ds.leads) == 9_237 and ds.leads["converted"].sum() == 3_559
    declared = yaml.safe_load((tmp_path / "xe/dataset.yaml").read_text())["columns"]["leaky"]
    assert declared == [
        "tags",
        "lead_quality",
        "lead_profile",
        "asymmetrique_activity_index",
        "asymmetrique_profile_index",
        "asymmetrique_activity_score",
        "asymmetrique_profile_score",
        "last_activity",
        "last_notable_activity",
    ]
    # No "Select" survives anywhere.
    text = ds.leads.select_dtypes("category")
    assert not any((text[c].astype(str) == "Select").any() for c in text.columns)
    assert ds.leads["created_at"].is_unique


def test_mixed_date_styles_and_local_times(tmp_path):
    contacts = (
        "Contact ID;Created On;Lead Source\n"
        "C-1;2025-04-03 10:00;Web Form\n"
        "C-2;2025-04-13T07:30:00Z;Web Form\n"  # an offset: kept, not read as Paris time
        "C-3;2025-01-05;Web Form\n"  # winter: UTC+1
    )
    mapping = """\
    csv: {delimiter: ";"}
    dates: {timezone: Europe/Paris}
    leads:
      columns: {lead_id: Contact ID, created_at: Created On, source: Lead Source}
    """
    args = _export(tmp_path, mapping, leads=contacts, activities=None, deals=None)
    leads = import_tables(**args).dataset.leads.set_index("lead_id")["created_at"]
    assert leads["C-1"] == pd.Timestamp("2025-04-03T08:00Z")
    assert leads["C-2"] == pd.Timestamp("2025-04-13T07:30Z")
    assert leads["C-3"] == pd.Timestamp("2025-01-04T23:00Z")

    # No 02:30 in Paris on 30 March 2025 (clocks jumped 02:00 -> 03:00): shifted, counted
    skipped = contacts.replace("2025-01-05", "2025-03-30 02:30")
    args = _export(tmp_path, mapping, leads=skipped, activities=None, deals=None)
    result = import_tables(**args, overwrite=True)
    leads = result.dataset.leads.set_index("lead_id")["created_at"]
    assert leads["C-3"] == pd.Timestamp("2025-03-30T01:00Z")  # 03:00 Paris summer time
    assert result.notes == [
        "export_leads.csv, column 'Created On': 1 local time in a daylight-saving gap of "
        "Europe/Paris (a clock time that did not exist) shifted forward to the first valid time"
    ]
    # 02:30 on 26 October 2025 happened twice in Paris: ambiguous, an error naming the row
    repeated = contacts.replace("2025-01-05", "2025-10-26 02:30")
    args = _export(tmp_path, mapping, leads=repeated, activities=None, deals=None)
    with pytest.raises(DatasetError, match=r"row 3: unparseable date.*exists in Europe/Paris"):
        import_tables(**args, overwrite=True)
    assert len(load_dataset(tmp_path / "dataset").leads) == 3  # the earlier import is intact


def test_a_midnight_that_did_not_exist_is_shifted_in_a_vectorised_column(tmp_path):
    """Day-first dates in a zone whose clocks jump at midnight (Santiago, 6 Sep 2025):
    the whole column parses at once and the missing midnight moves to 01:00."""
    contacts = "Contact ID;Created On;Lead Source\n" + "".join(
        f"C-{i};{d};Web Form\n"
        for i, d in enumerate(["05/09/2025 10:00", "06/09/2025 00:00", "07/09/2025 00:00"])
    )
    mapping = """\
    csv: {delimiter: ";"}
    dates: {dayfirst: true, timezone: America/Santiago}
    leads:
      columns: {lead_id: Contact ID, created_at: Created On, source: Lead Source}
    """
    result = import_tables(
        **_export(tmp_path, mapping, leads=contacts, activities=None, deals=None)
    )
    created = result.dataset.leads.set_index("lead_id")["created_at"]
    assert created["C-1"] == pd.Timestamp("2025-09-06T04:00Z")  # 01:00 at UTC-3
    assert len(result.notes) == 1 and "1 local time in a daylight-saving gap" in result.notes[0]


PIPELINE = """\
opportunity_id,account,engage_date,close_date,deal_stage,close_value,agent
O-1,Acme,2025-01-03,2025-02-10,Won,1200,ann
O-2,Globex,2025-01-05,2025-01-30,Lost,0,bob
O-3,Acme,2025-01-09,,Engaging,,ann
O-4,Initech,2025-01-12,2025-03-01,Won,800,cid
"""
ACCOUNTS = """\
account,sector,employees,office_location
Acme,software,120,Paris
Globex,retail,5400,Berlin
Initech,software,40,Austin
"""
PIPELINE_MAPPING = """\
name: opportunities-only
early_events: drop
leads:
  columns:
    lead_id: opportunity_id
    created_at: engage_date
    source: {const: other}
  lookups:
    - {file: accounts.csv, key: account, lookup_key: account}
  drop: [close_date, deal_stage, close_value]
  ignore: [agent]
deals:
  columns:
    deal_id: opportunity_id
    lead_id: opportunity_id
    created_at: engage_date
    closed_at: close_date
    status: deal_stage
    amount: close_value
  values:
    status: {Won: won, Lost: lost, "*": open}
"""


def test_an_opportunities_export_with_an_accounts_lookup(tmp_path):
    """One export column feeds two contract columns (the opportunity id is both lead and
    deal; engage_date both creation times), a constant source, accounts joined by key."""
    (tmp_path / "accounts.csv").write_text(ACCOUNTS)
    args = _export(tmp_path, PIPELINE_MAPPING, leads=PIPELINE, activities=None, deals=PIPELINE)
    result = import_tables(**args)
    ds = result.dataset
    leads = ds.leads.set_index("lead_id")
    assert list(leads.index) == ["O-1", "O-2", "O-3", "O-4"]
    assert set(leads["source"].astype(str)) == {"other"}
    assert leads.loc["O-2", "sector"] == "retail" and leads.loc["O-4", "employees"] == 40
    assert leads.loc["O-1", "office_location"] == "Paris"
    deals = ds.deals.set_index("deal_id")
    assert deals.loc["O-1", "lead_id"] == "O-1" and deals.loc["O-1", "status"] == "won"
    assert deals.loc["O-3", "status"] == "open" and pd.isna(deals.loc["O-3", "closed_at"])
    assert (deals["created_at"].to_numpy() == leads["created_at"].to_numpy()).all()
    assert result.columns["deals"]["opportunity_id"] == "deal_id, lead_id"
    assert ds.spec.early_events == "drop" and ds.spec.columns.ignore == ["agent"]


def test_a_won_deals_export_with_a_constant_status_and_one_date_for_both(tmp_path):
    wins = "id,won_date,who\nW-1,2025-02-01,ann\nW-2,2025-02-03,bob\n"
    leads = "id,created,source\nW-1,2025-01-01,web\nW-2,2025-01-02,web\n"
    mapping = """\
    leads:
      columns: {lead_id: id, created_at: created}
    deals:
      columns:
        deal_id: id
        lead_id: id
        created_at: won_date
        closed_at: won_date
        status: {const: won}
      drop: [who]
    """
    ds = import_tables(
        **_export(tmp_path, mapping, leads=leads, activities=None, deals=wins)
    ).dataset
    assert (ds.deals["status"] == "won").all()
    assert (ds.deals["created_at"] == ds.deals["closed_at"]).all()


def test_a_lookup_key_that_repeats_names_its_rows(tmp_path):
    (tmp_path / "accounts.csv").write_text(ACCOUNTS + "Acme,services,10,Lyon\n")
    args = _export(tmp_path, PIPELINE_MAPPING, leads=PIPELINE, activities=None, deals=PIPELINE)
    with pytest.raises(
        DatasetError, match=r"accounts\.csv, column 'account', rows 1, 4: the lookup key repeats"
    ):
        import_tables(**args)
    assert not (tmp_path / "dataset").exists()


def test_error_hints_fit_the_error(tmp_path):
    """A date error points at the date settings, a value error at the value map."""
    deals = OPPORTUNITIES.replace("06/04/2025 10:00;20/05/2025", "06/04/2025 10:00;10/03/2025")
    with pytest.raises(DatasetError) as info:  # closed before it was created
        import_tables(**_export(tmp_path, deals=deals))
    assert "closed_at before the deal's created_at" in str(info.value)
    assert "check dates.format / dates.dayfirst" in str(info.value)
    assert "map its values" not in str(info.value) and "early_events" not in str(info.value)
    mapping = MAPPING.replace(', "*": open', "")
    with pytest.raises(DatasetError, match=r"map its values under deals\.values\.status"):
        import_tables(**_export(tmp_path, mapping))
    early = TOUCHES.replace("04/04/2025 08:00", "01/04/2025 08:00")  # before C-1 was created
    with pytest.raises(DatasetError) as info:
        import_tables(**_export(tmp_path, activities=early))
    assert "early_events: drop" in str(info.value)
    assert "map its values" not in str(info.value)
    dropped = import_tables(
        **_export(tmp_path, "early_events: drop\n" + MAPPING, activities=early)
    ).dataset
    assert sum(dropped.dropped.values()) == 1 and len(dropped.activities) == 2


def test_offsets_that_change_at_daylight_saving_parse_as_one_column():
    """A local-time export across a DST change (+01:00, then +02:00), next to cells written
    without an offset (local times of the mapping's zone), and a strptime format with %f%z:
    every cell parsed, to the right UTC instant."""
    from leadscore.crm.dates import parse_dates
    from leadscore.crm.mapping import DateFormat

    text = pd.Series(
        ["2025-03-29T12:00:00+01:00", "2025-03-31T12:00:00+02:00", "2025-03-30 12:00:00",
         None, "2025-10-27T08:30:00.250000+01:00"]
    )  # fmt: skip
    utc, shifted = parse_dates(text, DateFormat(timezone="Europe/Berlin"), "f.csv", "when", "m")
    expected = pd.to_datetime(
        ["2025-03-29 11:00", "2025-03-31 10:00", "2025-03-30 10:00", None,
         "2025-10-27 07:30:00.25"], utc=True, format="ISO8601",
    )  # fmt: skip
    assert utc.isna().tolist() == [False, False, False, True, False] and shifted == 0
    assert (utc.dropna().to_numpy() == expected.dropna().to_numpy()).all()
    fmt = DateFormat(format="%Y-%m-%dT%H:%M:%S.%f%z")
    fitted = pd.Series(["2025-03-29T12:00:00.000000+0100", "2025-07-01T12:00:00.500000+0200"])
    utc, _ = parse_dates(fitted, fmt, "f.csv", "when", "m")
    assert utc.tolist() == list(
        pd.to_datetime(["2025-03-29 11:00", "2025-07-01 10:00:00.5"], utc=True, format="ISO8601")
    )
    with pytest.raises(DatasetError, match="unparseable date"):
        parse_dates(pd.Series(["2025-03-29T12:00:00+0100", "soon"]), fmt, "f.csv", "when", "m")


def test_a_summary_without_amounts_says_so_not_revenue_0(tmp_path):
    from leadscore.crm.summary import summarize_dataset
    from tests.conftest import ACTIVITIES, LEADS, write_dataset

    deals = "deal_id,lead_id,created_at,closed_at,status\nD1,L1,2025-01-05,2025-02-01,won\n"
    ds = load_dataset(
        write_dataset(tmp_path / "crm", leads=LEADS, activities=ACTIVITIES, deals=deals)
    )
    assert summarize_dataset(ds)["won_revenue"] is None


def test_deals_from_an_event_log_activity_groups_and_generated_ids(tmp_path):
    """An export that is an event log: the decision events of each contact (filtered by
    value, the last one in time) become its deal, with an id generated from the row (the
    same on a second import); every event is an activity; the sales touches are named."""
    contacts = (
        "Contact;Signed up\nC-1;2025-01-01 09:00\nC-2;2025-01-02 09:00\nC-3;2025-01-03 09:00\n"
    )
    log = (
        "Contact;Event;At\n"
        "C-1;submitted;2025-01-02 10:00\nC-1;rejected;2025-01-05 10:00\n"
        "C-1;approved;2025-01-09 10:00\nC-2;call back;2025-01-03 10:00\n"
        "C-2;rejected;2025-01-04 10:00\nC-3;submitted;2025-01-04 10:00\n"
    )
    mapping = """\
    name: applications
    csv: {delimiter: ";"}
    activity_groups: {sales_touch: [call]}
    leads:
      columns: {lead_id: Contact, created_at: Signed up, source: {const: web}}
    activities:
      columns: {lead_id: Contact, occurred_at: At, activity_type: Event}
      values: {activity_type: {call back: call}}
    deals:
      where: {Event: [approved, rejected]}
      one_per: {column: Contact, order: At, keep: last}
      columns:
        deal_id: {generate: hash}
        lead_id: Contact
        created_at: At
        closed_at: At
        status: Event
      values: {status: {approved: won, rejected: lost}}
    """
    (tmp_path / "contacts.csv").write_text(contacts)
    (tmp_path / "log.csv").write_text(log)
    (tmp_path / "mapping.yaml").write_text(textwrap.dedent(mapping))
    m = load_mapping(tmp_path / "mapping.yaml")
    files = {"leads": tmp_path / "contacts.csv", "activities": tmp_path / "log.csv",
             "deals": tmp_path / "log.csv"}  # fmt: skip
    ds = import_tables(m, **files, out_dir=tmp_path / "one").dataset
    deals = ds.deals.set_index("lead_id")
    assert sorted(deals.index) == ["C-1", "C-2"]  # C-3 has no decision yet
    assert deals.loc["C-1", "status"] == "won" and deals.loc["C-2", "status"] == "lost"
    assert deals.loc["C-1", "closed_at"] == pd.Timestamp("2025-01-09 10:00", tz="UTC")
    assert len(ds.activities) == 6 and ds.spec.sales_touch_types == ("call",)
    again = import_tables(m, **files, out_dir=tmp_path / "two").dataset
    assert sorted(again.deals["deal_id"]) == sorted(ds.deals["deal_id"])
    assert ds.deals["deal_id"].is_unique
    # a bad time in the column that orders the rows names the export's own row
    (tmp_path / "bad.csv").write_text(log.replace("2025-01-05 10:00", "soon"))
    with pytest.raises(DatasetError, match=r"row 2"):
        import_tables(m, **{**files, "deals": tmp_path / "bad.csv"}, out_dir=tmp_path / "three")
    with pytest.raises(ValueError, match="only an id"):
        Mapping.model_validate({"activities": {"columns": {"activity_type": {"generate": "hash"}}}})


BUYING_GROUP = """\
contact,created,company,job
C-1,2025-01-03,Acme,cto
C-2,2025-01-05,Acme,engineer
C-3,2025-01-09,Globex,cfo
C-4,2025-01-12,,student
"""
COMPANY_LIST = """\
name,account_number,sector
Acme,A-001,software
Globex,A-002,retail
"""


def test_the_account_of_each_contact_from_an_accounts_lookup(tmp_path):
    """account_id filled from a column the accounts lookup brings: contacts of one company
    share it, a contact without a company has none, and it is no profile feature."""
    (tmp_path / "companies.csv").write_text(COMPANY_LIST)
    mapping = """\
    leads:
      columns: {lead_id: contact, created_at: created, source: {const: website}, account_id: account_number}
      lookups:
        - {file: companies.csv, key: company, lookup_key: name}
      drop: [company]
    """
    ds = import_tables(
        **_export(tmp_path, mapping, leads=BUYING_GROUP, activities=None, deals=None)
    ).dataset
    accounts = ds.leads.set_index("lead_id")["account_id"]
    assert accounts["C-1"] == accounts["C-2"] == "A-001" and accounts["C-3"] == "A-002"
    assert pd.isna(accounts["C-4"])
    assert "account_id" not in ds.profile_columns and "sector" in ds.profile_columns
    from leadscore.crm.payloads import lead_payloads

    payload = lead_payloads(ds, ["C-2"], iso=True)[0]
    assert payload["account_id"] == "A-001" and "account_id" not in payload["profile"]


def test_a_mapping_may_name_account_id_but_no_other_unknown_lead_column(tmp_path):
    from leadscore.crm.mapping import Mapping

    Mapping.model_validate({"leads": {"columns": {"lead_id": "a", "account_id": "b"}}})
    with pytest.raises(ValueError, match="'company' is not a column of the leads table"):
        Mapping.model_validate({"leads": {"columns": {"lead_id": "a", "company": "b"}}})


def test_the_mapping_gives_the_column_roles_of_dataset_yaml(tmp_path):
    """A code written with digits (an officer id) read as a category, a text column as
    numbers where asked: the mapping says so, dataset.yaml keeps it, the loader applies it."""
    flat = """\
    Id,Signed Up,Channel,Officer,Visits,Won?
    1,2025-01-01,web,1001,3,Yes
    2,2025-01-02,web,1002,0,No
    3,2025-01-03,ads,1001,1,No
    """
    mapping = """\
    leads:
      columns: {lead_id: Id, created_at: Signed Up, source: Channel}
      outcome: {column: "Won?", positive: ["Yes"]}
      categorical: [Officer]
      numeric: [Visits]
    """
    ds = import_tables(
        **_export(tmp_path, mapping, leads=flat, activities=None, deals=None)
    ).dataset
    assert ds.spec.columns.categorical == ["officer"] and ds.spec.columns.numeric == ["visits"]
    assert isinstance(ds.leads["officer"].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_numeric_dtype(ds.leads["visits"])
    # a role naming a column the export does not have names the entry
    wrong = mapping.replace("[Officer]", "[Officer Id]")
    (tmp_path / "w").mkdir()
    with pytest.raises(LeadscoreError, match=r"leads\.categorical.*Officer Id"):
        import_tables(**_export(tmp_path / "w", wrong, leads=flat, activities=None, deals=None))
    with pytest.raises(ValueError, match="both categorical and numeric"):
        Mapping.model_validate({"leads": {"categorical": ["a"], "numeric": ["a"]}})


def test_an_unknown_key_names_the_keys_allowed_there(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text("leads:\n  columns: {lead_id: Id}\n  categorcal: [Officer]\n")
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    message = str(info.value)
    assert "leads.categorcal: Extra inputs are not permitted" in message
    assert "allowed here: " in message and "categorical" in message and "leaky" in message
    path.write_text("lead: {}\n")
    with pytest.raises(ConfigError, match=r"allowed here: name, csv, .*leads"):
        load_mapping(path)


def test_a_code_read_as_a_number_is_flagged_and_every_profile_type_is_said(tmp_path):
    import numpy as np

    from leadscore.console import out, print_summary
    from leadscore.crm.summary import summarize_dataset

    rng = np.random.default_rng(0)
    n = 400
    officer = rng.integers(1000, 1060, n)  # 60 codes; some officers win, in no order
    employees = rng.integers(1, 500, n)
    won = (np.isin(officer % 7, [0, 3]) | (employees > 400)) & (rng.random(n) < 0.9)
    rows = "\n".join(
        f"{i},2025-01-{1 + i % 28:02d},web,{o},{e},{'Yes' if w else 'No'}"
        for i, (o, e, w) in enumerate(zip(officer, employees, won, strict=True))
    )
    flat = "Id,Signed Up,Channel,Officer,Employees,Won?\n" + rows + "\n"
    mapping = """\
    leads:
      columns: {lead_id: Id, created_at: Signed Up, source: Channel}
      outcome: {column: "Won?", positive: ["Yes"]}
    """
    ds = import_tables(
        **_export(tmp_path, mapping, leads=flat, activities=None, deals=None)
    ).dataset
    summary = summarize_dataset(ds)
    assert summary["profile_types"] == {"officer": "number", "employees": "number"}
    assert list(summary["code_like_columns"]) == ["officer"]  # employees: the order counts
    with out.capture() as printed:
        print_summary(summary)
    text = printed.get()
    assert "officer (number), employees (number)" in text
    assert "'officer' is read as a number but looks like a code" in text
    # declared a category: read as one, and no longer flagged
    declared = mapping + "  categorical: [Officer]\n"
    (tmp_path / "c").mkdir()
    again = import_tables(
        **_export(tmp_path / "c", declared, leads=flat, activities=None, deals=None)
    )
    summary = summarize_dataset(again.dataset)
    assert summary["profile_types"]["officer"] == "category" and not summary["code_like_columns"]
