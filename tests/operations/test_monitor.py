"""Monitoring: the PSI thresholds hold their false-alarm rate, planted drifts are caught with
the right reasons, undrifted data raises at most 5 % false alarms over seeds, and the
command writes its page and JSON and logs to MLflow."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.loading import load_dataset
from leadscore.features.batch import build_training_set
from leadscore.operations.drift import critical_psi, psi
from leadscore.operations.monitor import monitor, same_weekday_before
from leadscore.scoring.model_ref import ModelRef
from leadscore.simulation import SimulationConfig, simulate
from leadscore.training.fit import fit_models
from tests.cli.test_cli import _leadscore
from tests.training.conftest import FAST

MODEL = ModelRef("lead-scoring", "1")
DRIFT_AFTER = "2026-02-01"  # the simulated data ends 2026-06-25; its model knows up to ~11-20


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model trained on undrifted data (seed 100); the monitored exports are other seeds."""
    path = tmp_path_factory.mktemp("monitor") / "train"
    simulate(SimulationConfig(n_leads=16_000, seed=100), path)
    df, spec, _ = build_training_set(load_dataset(path))
    return fit_models(df, spec, FAST).scorer


def _export(tmp_path_factory, seed: int, n: int = 6_000, **drift):
    path = tmp_path_factory.mktemp("export") / "crm"
    simulate(SimulationConfig(n_leads=n, seed=seed, **drift), path)
    return load_dataset(path)


def test_the_psi_threshold_holds_its_false_alarm_rate_where_fixed_ones_do_not():
    """Two samples of one population: PSI beyond the sampling threshold in ~alpha of the
    draws at any size, while the fixed 0.1 fires on most small batches."""
    rng = np.random.default_rng(0)
    shares = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
    for n, m in ((60, 80), (400, 300), (5_000, 8_000)):
        draws = [psi(rng.multinomial(n, shares), rng.multinomial(m, shares)) for _ in range(2_000)]
        beyond = np.mean(np.array(draws) > critical_psi(len(shares), n, m, 0.05))
        assert 0.02 < beyond < 0.08, (n, m, beyond)
        if n == 60:
            assert np.mean(np.array(draws) > 0.1) > 0.3  # the folklore threshold false-alarms


def test_the_reference_is_on_the_same_weekday_before_the_limit():
    when = pd.Timestamp("2026-06-24 18:00", tz="UTC")  # a Wednesday
    ref = same_weekday_before(when, pd.Timestamp("2025-11-20", tz="UTC"))
    assert ref.day_name() == "Wednesday" and ref.hour == 18
    assert pd.Timestamp("2025-11-13", tz="UTC") < ref <= pd.Timestamp("2025-11-20", tz="UTC")


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (("source_mix",), "source ("),
        (("conversion",), "matured outcomes are off the predictions"),
        (("behaviour",), "n_page_view"),
    ],
)
def test_planted_drift_is_caught_with_its_reason(tmp_path_factory, model, kinds, expected):
    ds = _export(tmp_path_factory, 7, drift_after=DRIFT_AFTER, drift=kinds)
    report = monitor(ds, model, MODEL)
    assert report.verdict in ("watch", "retrain"), report.reasons
    assert any(expected in reason for reason in report.reasons), report.reasons
    if kinds == ("source_mix",):
        drifted = {d.name for d in report.drift if d.status != "ok"}
        assert "source" in drifted
    if kinds == ("conversion",):  # what the model cannot see: the inputs did not move
        assert report.verdict == "retrain"
        assert report.matured.wins < 0.75 * report.matured.expected


def test_undrifted_exports_raise_at_most_5_percent_false_alarms(tmp_path_factory, model):
    alarms = []
    for seed in range(20):
        report = monitor(_export(tmp_path_factory, 1_000 + seed, n=4_000), model, MODEL)
        if report.verdict != "ok":
            alarms.append((seed, report.verdict, report.reasons))
    assert len(alarms) <= 1, alarms


def test_the_command_writes_the_page_and_json_and_logs_to_mlflow(tmp_path, model, tmp_path_factory):
    folder = model.save(tmp_path / "scorer")
    ds = _export(tmp_path_factory, 8, drift_after=DRIFT_AFTER)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = _leadscore(
        "monitor", "--data", str(ds.path), "--model", str(folder),
        "--out", str(tmp_path / "reports" / "monitor.html"),
        cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "retrain" in result.stdout or "watch" in result.stdout
    page = (tmp_path / "reports" / "monitor.html").read_text()
    text = (tmp_path / "reports" / "monitor.json").read_text()

    def strict(constant):  # NaN, Infinity: not JSON
        raise AssertionError(f"{constant} in monitor.json")

    summary = json.loads(text, parse_constant=strict)
    assert f'data-verdict="{summary["verdict"]}"' in page and "<svg" in page
    # Self-contained: nothing fetched from elsewhere.
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']https?:""", page)
    assert summary["metrics"]["psi_source"] > summary["metrics"]["psi_threshold_source"]
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("leadscore-monitoring")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["verdict"] == summary["verdict"]
    assert run.data.metrics["psi_source"] == pytest.approx(summary["metrics"]["psi_source"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
        "monitor.html",
        "monitor.json",
    }

    bad = _leadscore(
        "monitor", "--data", str(ds.path), "--model", str(folder), "--out", "x.pdf",
        "--no-mlflow", cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 1 and "HTML file" in bad.stderr and "Traceback" not in bad.stderr


def test_a_flat_export_or_a_model_without_dates_is_refused(tmp_path, model):
    from tests.conftest import write_dataset

    flat = write_dataset(
        tmp_path / "flat",
        leads="lead_id,created_at,source,Converted\n1,2024-01-01,web,0\n2,2024-01-02,ads,1\n",
        dataset="label: {column: Converted}\n",
    )
    with pytest.raises(LeadscoreError, match="needs dated data"):
        monitor(load_dataset(flat), model, MODEL)


def test_bins_of_messy_columns_ties_blanks_and_unseen_values():
    """What the simulator never makes: a count that is mostly 0, blanks, a value only the
    current export has, a column empty in the reference."""
    from leadscore.operations.drift import categorical_bins as _categorical_bins
    from leadscore.operations.drift import drift_of as _drift
    from leadscore.operations.drift import numeric_bins as _numeric_bins

    ref = np.array([0.0] * 70 + [1.0] * 20 + [5.0] * 5 + [np.nan] * 5)
    rc, cc, labels = _numeric_bins(ref, ref.copy())
    assert labels[-1] == "missing" and rc.sum() == cc.sum() == len(ref) and rc[-1] == 5
    assert _drift("n", "numeric", rc, cc, labels, 0.01).psi == pytest.approx(0.0)
    rc, cc, labels = _numeric_bins(np.full(10, np.nan), np.array([1.0, 2.0, np.nan]))
    assert labels == ["all", "missing"] and list(rc) == [0, 10] and list(cc) == [2, 1]

    before = pd.Series(["web", None, "ads", "web", ""], dtype="str")
    now = pd.Series(["web", "tiktok", None, None, ""], dtype="str")
    rc, cc, labels = _categorical_bins(before, now)
    counts = dict(zip(labels, cc, strict=True))
    assert counts["(other)"] == 1 and counts["(missing)"] == 2 and counts[""] == 1
    assert rc.sum() == len(before) and cc.sum() == len(now)


def test_shuffled_rows_give_identical_monitor_numbers(tmp_path_factory, model):
    """Every ranking number of the monitor (deciles, ECE and its interval, category bins) is
    independent of the order of the export's rows."""

    ds = _export(tmp_path_factory, 9, n=3_000)
    rng = np.random.default_rng(3)

    def shuffled(df):
        return df.iloc[rng.permutation(len(df))].reset_index(drop=True)

    mixed = ds.with_tables(
        leads=shuffled(ds.leads), activities=shuffled(ds.activities), deals=shuffled(ds.deals)
    )
    a, b = monitor(ds, model, MODEL), monitor(mixed, model, MODEL)
    assert a.verdict == b.verdict and a.matured is not None
    ma, mb = a.metrics(), b.metrics()
    assert ma.keys() == mb.keys()
    for key in ma:
        assert ma[key] == pytest.approx(mb[key], rel=1e-9, abs=1e-12), key
    for name in ("by_decile", "by_grade"):
        pd.testing.assert_frame_equal(getattr(a.matured, name), getattr(b.matured, name), rtol=1e-9)
    assert a.matured.ece_interval[0] <= a.matured.ece <= a.matured.ece_interval[1]


def test_an_export_cut_short_is_named_instead_of_a_drift(tmp_path_factory, model):
    """No lead created in the last weeks while activities go on: every lead looks older,
    and the monitor says "an incomplete export?" rather than "retrain: features drifted"."""

    ds = _export(tmp_path_factory, 12, n=4_000)
    cut = ds.data_end - pd.Timedelta(days=30)
    kept = ds.leads["created_at"] <= cut
    ids = set(ds.leads.loc[kept, "lead_id"])
    cut_ds = ds.with_tables(
        leads=ds.leads[kept].reset_index(drop=True),
        activities=ds.activities[ds.activities["lead_id"].isin(ids)].reset_index(drop=True),
        deals=ds.deals[ds.deals["lead_id"].isin(ids)].reset_index(drop=True),
    )
    report = monitor(cut_ds, model, MODEL)
    assert report.verdict == "watch", report.reasons
    assert any("an incomplete export?" in r for r in report.reasons), report.reasons
    assert not any("drifted" in r for r in report.reasons)
    assert monitor(ds, model, MODEL).verdict == "ok"


def test_what_cannot_be_tested_is_said_never_ok():
    """A column blank everywhere (one bin on both sides) is "untested", not "ok" with a PSI
    of 0 against an infinite threshold; 2 matured leads check no calibration; the JSON
    summary never holds Infinity."""
    from leadscore.crm.csv_out import json_ready
    from leadscore.operations.drift import drift_of as _drift
    from leadscore.operations.drift import numeric_bins as _numeric_bins
    from leadscore.operations.matured import Matured
    from leadscore.operations.monitor import _verdict

    rc, cc, labels = _numeric_bins(np.full(50, np.nan), np.full(40, np.nan))
    blank = _drift("blank_everywhere", "numeric", rc, cc, labels, 0.01)
    assert blank.status == "untested" and not np.isfinite(blank.threshold)
    score = _drift("score", "score", np.array([5.0, 5.0]), np.array([5.0, 5.0]), ["a", "b"], 0.01)
    thin = Matured(
        as_of=pd.Timestamp("2026-01-01", tz="UTC"), leads=2, wins=0, expected=0.4, z=-0.6,
        ece=0.2, ece_interval=(0.1, 0.3), roc_auc=None, by_grade=pd.DataFrame(),
        by_decile=pd.DataFrame(), by_age=pd.DataFrame(), in_training=False,
    )  # fmt: skip
    verdict, reasons = _verdict([score, blank], thin, None, 0.01)
    assert verdict == "ok" and "as predicted" not in reasons[0]
    assert "too few matured outcomes" in reasons[0] and "2 leads" in reasons[0]
    strict = json.dumps(json_ready({"threshold": blank.threshold, "x": [np.float64("nan"), 1]}))
    assert strict == '{"threshold": null, "x": [null, 1]}'
