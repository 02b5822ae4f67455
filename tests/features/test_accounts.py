"""Account entity rows, labels and features on a case built by hand, and the two engines'
agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm import load_dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.payloads import lead_payloads
from leadscore.features.accounts import (
    AccountSpec,
    account_features,
    account_frames,
    account_open_rows,
    account_snapshot_rows,
    role_levels,
)
from leadscore.features.batch import feature_spec_for
from leadscore.features.config import FeatureConfig
from leadscore.features.online import OnlineFeaturizer
from tests.conftest import write_dataset

LEADS = """\
lead_id,created_at,source,account_id,industry,job_role
L1,2025-01-01T00:00:00Z,website,A1,software,director
L2,2025-01-10T00:00:00Z,website,A1,software,manager
L5,2025-03-05T00:00:00Z,partner,A1,,manager
L3,2025-01-02T00:00:00Z,advertising,A2,retail,manager
L4,2025-01-03T00:00:00Z,advertising,A2,finance,
L6,2025-01-05T00:00:00Z,website,,software,director
"""
ACTIVITIES = """\
lead_id,occurred_at,activity_type
L1,2025-01-12T10:00:00Z,webinar_attendance
L1,2025-01-14T10:00:00Z,webinar_attendance
L2,2025-01-13T10:00:00Z,page_view
L3,2025-01-02T10:00:00Z,page_view
L6,2025-12-31T10:00:00Z,page_view
"""
DEALS = """\
deal_id,lead_id,created_at,closed_at,status
D5,L5,2025-03-10T00:00:00Z,2025-03-20T00:00:00Z,won
D4,L4,2025-01-05T00:00:00Z,2025-01-20T00:00:00Z,lost
"""
JAN_15 = pd.Timestamp("2025-01-15", tz="UTC")


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accounts") / "crm"
    return load_dataset(write_dataset(folder, leads=LEADS, activities=ACTIVITIES, deals=DEALS))


@pytest.fixture(scope="module")
def spec(crm):
    lead = feature_spec_for(crm, FeatureConfig())
    return AccountSpec(lead, "job_role", role_levels(crm, "job_role"))


def test_rows_labels_and_censoring(crm):
    rows, stats = account_snapshot_rows(crm, every_days=14, horizon_days=90)
    r = rows.rows.assign(as_of=pd.to_datetime(rows.rows["as_of_us"], unit="us", utc=True))
    first = r[r["as_of"] == JAN_15].set_index("account")
    # A1 (code 0): its contact L5 arrives after as_of and wins within the horizon: a win.
    # A2 (code 1): nobody wins.
    assert first.loc[0, "label"] == 1 and first.loc[1, "label"] == 0
    # After 2025-03-20 nobody of A1 wins any more.
    assert (
        r.loc[(r["account"] == 0) & (r["as_of"] > pd.Timestamp("2025-03-20", tz="UTC")), "label"]
        .eq(0)
        .all()
    )
    # Censored: no as_of whose horizon runs past the data's end (2025-12-31).
    assert (r["as_of"] + pd.Timedelta(days=90) <= pd.Timestamp("2025-12-31T10:00Z")).all()
    assert stats["censored_as_ofs"] > 0 and stats["positives"] == int(r["label"].sum())
    # Members are the open contacts: L4 (lost on 2025-01-20) leaves A2 after it.
    m = rows.members
    row_jan_29 = r.index[
        (r["account"] == 1) & (r["as_of"] == pd.Timestamp("2025-01-29", tz="UTC"))
    ][0]
    assert sorted(m.loc[m["row"] == row_jan_29, "lead"]) == [3]  # L3 only (position 3)
    # A lead without an account is in no account.
    assert 5 not in set(m["lead"])


def test_features_of_a_buying_group(crm, spec):
    rows, _ = account_snapshot_rows(crm, every_days=14, horizon_days=90)
    df, contacts = account_frames(crm, spec, rows)
    row = df[(df["account_id"] == "A1") & (df["as_of"] == JAN_15)].iloc[0]
    assert row["contacts"] == 2
    assert row["active_contacts_7d"] == 2  # L1's webinar on the 14th, L2's page view on the 13th
    assert row["contacts_webinar_attendance_30d"] == 1 and row["n_webinar_attendance_30d"] == 2
    assert row["industry"] == "software"
    assert row[spec.role_feature("director")] == 1 and row[spec.role_feature("manager")] == 1
    assert row["days_since_last_activity"] == pytest.approx(14 / 24, abs=0.01)  # 10:00 on the 14th
    # Only what was known at as_of: L1's later activities do not count.
    assert row["n_activities_90d"] == 3


def test_most_common_value_and_ties(spec):
    lead = spec.lead
    behaviour = np.zeros((3, len(lead.behaviour_names)))
    categorical = {c: [None, None, None] for c in lead.categorical}
    categorical["industry"] = ["retail", "finance", "finance"]
    numeric = {c: np.zeros(3) for c in lead.numeric_profile}
    _, company = account_features(spec, behaviour, categorical, numeric, np.array([0, 0, 1]), 2)
    assert list(company["industry"]) == ["finance", "finance"]  # a tie: the first in order


def test_batch_and_online_agree(crm, spec):
    rows = account_open_rows(crm, JAN_15)
    df, contacts = account_frames(crm, spec, rows)
    payloads = lead_payloads(crm, contacts["lead_id"].astype(str).tolist(), iso=True)
    batch = OnlineFeaturizer(spec.lead).batch(payloads, [JAN_15] * len(payloads))
    x, company = account_features(
        spec, batch.behaviour, batch.categorical, batch.numeric, contacts["row"].to_numpy(), len(df)
    )
    np.testing.assert_allclose(x, df[spec.numeric_names].to_numpy(dtype=float), equal_nan=True)
    for c in spec.company_columns:
        assert list(company[c]) == df[c].astype(object).where(df[c].notna(), None).tolist()


def test_refuses_data_without_accounts(small_sim, crm):
    with pytest.raises(LeadscoreError, match="account_id"):
        account_snapshot_rows(small_sim, every_days=14, horizon_days=90)
    with pytest.raises(LeadscoreError, match="role_column 'title'"):
        role_levels(crm, "title")
