"""The Spark engine computes the batch engine's training sets and open-pipeline rows: the
same rows, equal to rtol 1e-9, on the simulator and on a messy export built here."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.crm import DatasetError, load_dataset
from leadscore.features.batch import build_scoring_set, build_training_set
from tests.conftest import write_dataset

pytest.importorskip("pyspark", reason="the Spark engine's tests need pyspark (the spark extra)")

MESSY_LEADS = """\
lead_id,created_at,source,industry,employees
M1,2025-01-01T09:00:00+01:00,website,retail,12
M2,2025-01-01T08:00:00Z,,software,
M3, 2025-01-02T10:00:00-05:00 ,partner,,300
M4,2025-01-03,website,mining,7
M5,2025-01-03T12:00:00Z,trade_show,software,50
"""
# Mixed offsets, blanks, an event exactly at a snapshot's as_of (M1 created 08:00Z: its
# 7-day snapshot is 2025-01-08T08:00Z), ties (two events at one instant), a type the
# spec has not seen, and M4 with no activity at all.
MESSY_ACTIVITIES = """\
lead_id,occurred_at,activity_type,value,campaign
M1,2025-01-08T09:00:00+01:00,page_view,30,
M1,2025-01-08T08:00:00Z,page_view,,spring
M1,2025-01-09T10:00:00+02:00,call,,
M2,2025-01-02T00:00:00Z,webinar,12.5,
M2,2025-01-02T00:00:00Z,webinar,,
M2,2025-01-20T23:59:59-01:00,email_open,,
M3,2025-01-05T15:00:00Z,call,,
M3,2025-02-01T00:00:00Z,brand_new_type,,
M5,2025-01-03T12:00:00Z,page_view,,
M5,2025-03-01T00:00:00Z,page_view,,
"""
MESSY_DEALS = """\
deal_id,lead_id,created_at,closed_at,status,amount
D1,M1,2025-01-10,2025-02-01T00:00:00+01:00,won,1000
D2,M3,2025-01-20,,open,
D3,M5,2025-01-04,2025-01-30,lost,
"""
MESSY_YAML = "horizon_days: 30\n"


@pytest.fixture(scope="module")
def messy_path(tmp_path_factory):
    return write_dataset(
        tmp_path_factory.mktemp("messy") / "crm",
        leads=MESSY_LEADS,
        activities=MESSY_ACTIVITIES,
        deals=MESSY_DEALS,
    )


def _history(spark, path):
    from leadscore.features.spark_engine import SparkHistory

    return SparkHistory(spark, load_dataset(path, activities=False))


def test_the_simulators_training_set_and_open_pipeline(spark, small_sim_path, small_sim, small_set):
    from leadscore.features.spark_engine import spark_scoring_set, spark_training_set

    history = _history(spark, small_sim_path)
    assert history.data_end == small_sim.data_end
    df, spec, stats = spark_training_set(history, buckets=7)
    ref, ref_spec, ref_stats = small_set
    assert spec == ref_spec and stats == ref_stats
    pd.testing.assert_frame_equal(df, ref, rtol=1e-9, atol=0)
    as_of = small_sim.data_end - pd.Timedelta(days=40)
    got = spark_scoring_set(history, spec, as_of, buckets=3)
    pd.testing.assert_frame_equal(got, build_scoring_set(small_sim, spec, as_of), rtol=1e-9, atol=0)
    history.close()


def test_a_messy_export(spark, messy_path):
    from leadscore.features.config import FeatureConfig
    from leadscore.features.spark_engine import spark_scoring_set, spark_training_set

    ds = load_dataset(messy_path)
    config = FeatureConfig(snapshot_ages_days=[0, 3, 7, 14], horizon_days=30)
    ref, spec, stats = build_training_set(ds, config)
    history = _history(spark, messy_path)
    df, spark_spec, spark_stats = spark_training_set(history, config, buckets=2)
    assert spark_spec == spec and spark_stats == stats and len(df) == len(ref) > 5
    pd.testing.assert_frame_equal(df, ref, rtol=1e-9, atol=0)
    # The open pipeline with a spec that never saw `brand_new_type` nor `email_open`.
    narrow = FeatureConfig(activity_types=["page_view", "call", "webinar"])
    spec2 = build_training_set(ds, narrow)[1]
    for when in ("2025-01-08T08:00:00Z", "2025-01-20T12:00:00Z", None):
        want = build_scoring_set(ds, spec2, when)
        pd.testing.assert_frame_equal(spark_scoring_set(history, spec2, when), want, rtol=1e-9)
    history.close()


def test_a_bad_row_read_by_spark_is_a_dataset_error(spark, tmp_path):
    bad = MESSY_ACTIVITIES.replace("M3,2025-01-05T15:00:00Z", "M3,the fifth of January")
    path = write_dataset(tmp_path / "crm", leads=MESSY_LEADS, activities=bad, deals=MESSY_DEALS)
    with pytest.raises(DatasetError) as err:
        _history(spark, path)
    assert err.value.file == "activities.csv" and err.value.column == "occurred_at"
    assert "unparseable timestamp" in str(err.value) and "the fifth of January" in str(err.value)
    assert "leadscore validate" in str(err.value)
    # ... and an activity of a lead the export does not have.
    ghost = MESSY_ACTIVITIES + "M9,2025-01-05T15:00:00Z,call,,\n"
    path = write_dataset(tmp_path / "ghost", leads=MESSY_LEADS, activities=ghost, deals=MESSY_DEALS)
    with pytest.raises(DatasetError, match="lead_id not found in leads"):
        _history(spark, path)


def test_a_dataset_whose_activities_were_left_unread_has_no_silent_data_end(messy_path):
    from leadscore.crm.errors import LeadscoreError

    ds = load_dataset(messy_path, activities=False)
    assert ds.activity_table.unread and len(ds.activity_table) == 0
    with pytest.raises(LeadscoreError, match="another engine"):
        _ = ds.data_end


CONNECT_CLIENT = """
import sys
from leadscore.crm.loading import load_dataset
from leadscore.features.config import FeatureConfig
from leadscore.features.spark_engine import SparkHistory, spark_session, spark_training_set

session = spark_session()
print("SparkSession", type(session).__module__.split(".")[2])
config = FeatureConfig(snapshot_ages_days=[0, 3, 7, 14], horizon_days=30)
history = SparkHistory(session, load_dataset(sys.argv[1], activities=False))
df, _, _ = spark_training_set(history, config, buckets=2)
df.to_parquet(sys.argv[2])
session.stop()
"""


def test_through_spark_connect(tmp_path, messy_path):
    """`SPARK_REMOTE` reaches a Spark Connect server (a real one, started here on a free
    port, its own process group): the same training set as DuckDB's."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import pyspark

    from leadscore.features.config import FeatureConfig
    from tests.processes import stop_group

    pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect]")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = Path(pyspark.__file__).parent
    log = (tmp_path / "connect.log").open("w")
    server = subprocess.Popen(
        [str(home / "bin" / "spark-submit"), "--class",
         "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", "local[2]",
         "--conf", f"spark.connect.grpc.binding.port={port}",
         "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
         "--conf", "spark.sql.session.timeZone=UTC", "--conf", "spark.ui.enabled=false",
         "spark-internal"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_HOME": str(home)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Spark Connect server started" not in (tmp_path / "connect.log").read_text():
            assert server.poll() is None and time.monotonic() < deadline, "no Connect server"
            time.sleep(0.5)
        # A client process of its own, as a user's would be (a process holds one kind of
        # session: this one's is the local `spark` fixture's).
        out = tmp_path / "connect.parquet"
        client = subprocess.run(
            [sys.executable, "-c", CONNECT_CLIENT, str(messy_path), str(out)],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "SPARK_REMOTE": f"sc://127.0.0.1:{port}"},
        )  # fmt: skip
        assert client.returncode == 0, client.stderr[-3000:]
        assert "SparkSession connect" in client.stdout
        config = FeatureConfig(snapshot_ages_days=[0, 3, 7, 14], horizon_days=30)
        ref = build_training_set(load_dataset(messy_path), config)[0]
        got = pd.read_parquet(out)
        assert len(got) == len(ref) > 5
        pd.testing.assert_frame_equal(got, ref, rtol=1e-9, atol=0)
    finally:
        stop_group(server)
        log.close()


def test_a_flat_export_needs_no_spark_job(spark, tmp_path):
    from leadscore.features.spark_engine import SparkHistory, spark_training_set
    from tests.conftest import flat_export

    ds = flat_export(tmp_path / "flat", n=300)
    want, spec, stats = build_training_set(ds)
    history = SparkHistory(spark, load_dataset(ds.path, activities=False))
    got, spark_spec, spark_stats = spark_training_set(history)
    assert spark_spec == spec and spark_stats == stats
    pd.testing.assert_frame_equal(got, want)


def test_a_wrong_master_is_one_line_and_writes_nothing(tmp_path, messy_path):
    from tests.cli.test_cli import _leadscore

    out = tmp_path / "set.parquet"
    result = _leadscore("features", "--data", str(messy_path), "--out", str(out),
                        "--engine", "spark", "--spark-master", "bogus://nowhere")  # fmt: skip
    assert (
        result.returncode == 1 and "Spark did not start (master bogus://nowhere)" in result.stderr
    )
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_ragged_csv_read_by_spark_is_one_error_naming_the_file(spark, tmp_path):
    from leadscore.crm.errors import LeadscoreError

    ragged = MESSY_ACTIVITIES + 'M1,2025-01-08T09:00:00Z,page_view,1,a,"unclosed\n'
    path = write_dataset(tmp_path / "crm", leads=MESSY_LEADS, activities=ragged, deals=MESSY_DEALS)
    with pytest.raises(LeadscoreError, match="activities.csv"):
        _history(spark, path)
