from __future__ import annotations

import copy
import json
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.payloads import lead_payloads
from leadscore.crm.times import utc
from leadscore.features.batch import build_training_set
from leadscore.features.definitions import FeatureSpec
from leadscore.training.config import LightGBMParams
from leadscore.training.fit import fit_models
from leadscore.training.registry import (
    CHAMPION_SINCE,
    CHAMPION_UNTIL,
    PREVIOUS_CHAMPION,
    STATE,
    beats,
    champion_gate,
    gate_decision,
    gate_reason,
    list_versions,
    promote,
    rollback,
)
from leadscore.training.tracking import Registration
from tests.training.conftest import FAST, register, registration_options, sqlite_store

NAME = "lead-scoring-test"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A throwaway MLflow sqlite store (tracking and registry) with its own artifact folder."""
    with sqlite_store(tmp_path_factory.mktemp("mlflow")) as root:
        MlflowClient().create_experiment(
            "leadscore-test", artifact_location=str(root / "artifacts")
        )
        yield root


def _register(result, small_sim, df, name=NAME, **kwargs):
    return register(result, small_sim, df, name=name, experiment="leadscore-test", **kwargs)


def _aliases(name=NAME):
    return {alias: str(v) for alias, v in MlflowClient().get_registered_model(name).aliases.items()}


def test_champion_challenger_lifecycle(store, small_sim, small_set, trained):
    df, spec, _ = small_set
    first = _register(trained, small_sim, df)
    assert first.promoted and _aliases() == {"champion": first.version, "challenger": first.version}
    run = MlflowClient().get_run(first.run_id)
    assert run.data.metrics["test_roc_auc_model"] == pytest.approx(
        trained.metrics["model"]["roc_auc"]
    )
    assert run.data.tags["feature_set_version"] == spec.version
    artifacts = {a.path for a in MlflowClient().list_artifacts(first.run_id)}
    assert {
        "calibration_curve.png",
        "gains_chart.png",
        "feature_importance.png",
        "dataset_fingerprint.json",
        "metrics.json",
    } <= artifacts

    # A worse challenger (a stump model) is registered and tagged, but the champion stays.
    weak_config = FAST.model_copy(
        update={"lightgbm": LightGBMParams(max_rounds=1, num_leaves=2, early_stopping_rounds=1)}
    )
    weak = fit_models(df, spec, weak_config)
    assert weak.metrics["model"]["roc_auc"] < trained.metrics["model"]["roc_auc"]
    second = _register(weak, small_sim, df)
    assert not second.promoted and "champion v" in second.reason
    assert _aliases() == {"champion": first.version, "challenger": second.version}

    # A run that fails after registering, before the aliases move, leaves them as they were:
    # the run is FAILED and the version "failed". The phases run one by one, and the failure
    # comes between the last two (no hook in the product).
    options = registration_options(small_sim, df, trained, name=NAME, experiment="leadscore-test")
    with pytest.raises(RuntimeError), Registration(trained, **options) as registration:
        registration.log_run()
        crashed = registration.register_version()
        registration.compare_with_champion()
        raise RuntimeError("disk full")
    assert _aliases() == {"champion": first.version, "challenger": second.version}
    assert MlflowClient().get_model_version(NAME, crashed).tags[STATE] == "failed"
    failed = mlflow.search_runs(
        experiment_names=["leadscore-test"], order_by=["start_time DESC"]
    ).iloc[0]
    assert failed["status"] == "FAILED"

    # Explicit promotion, and the listing shows it.
    promote(NAME, second.version)
    assert _aliases()["champion"] == second.version
    listed = {row["version"]: row for row in list_versions(NAME)}
    assert "champion" in listed[second.version]["aliases"] and listed[first.version]["test_auc"]
    assert listed[second.version]["champion"].endswith(f"(after v{first.version})")

    # The alias history is on the versions, and a rollback walks it back.
    tags = MlflowClient().get_model_version(NAME, second.version).tags
    assert tags[PREVIOUS_CHAMPION] == first.version and tags[CHAMPION_SINCE]
    assert rollback(NAME) == (second.version, first.version)
    assert _aliases()["champion"] == first.version
    assert MlflowClient().get_model_version(NAME, second.version).tags[CHAMPION_UNTIL]
    # The first champion replaced none: nothing further back, and nothing moves.
    with pytest.raises(LeadscoreError, match="nothing to roll back to"):
        rollback(NAME)
    assert _aliases()["champion"] == first.version


def test_pyfunc_model_equals_the_in_process_scorer(store, small_sim, small_set, trained):
    df, _, _ = small_set
    outcome = _register(trained, small_sim, df)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{outcome.version}")
    rows = trained.test.head(15)
    payloads = {
        p["lead_id"]: p for p in lead_payloads(small_sim, rows["lead_id"].unique(), iso=True)
    }
    frame = pd.DataFrame(
        {
            "lead": [json.dumps(payloads[r.lead_id]) for r in rows.itertuples()],
            "as_of": [r.as_of.isoformat() for r in rows.itertuples()],
        }
    )
    got = model.predict(frame)
    np.testing.assert_allclose(
        got["probability"].to_numpy(), rows["p_model"].to_numpy(), rtol=1e-12
    )
    expected = [
        trained.scorer.score_leads([payloads[r.lead_id]], r.as_of.isoformat())[0]
        for r in rows.itertuples()
    ]
    assert got["grade"].tolist() == [e["grade"] for e in expected]
    assert [json.loads(r) for r in got["reasons"]] == [e["reasons"] for e in expected]


def test_an_untrusted_model_is_never_promoted_unattended(store, small_sim, small_set):
    """`retrain`'s gate: a model with a "do not trust" banner (here a one-tree stump) stays
    a challenger even with no champion to beat; `train` leaves that call to its reader."""
    df, spec, _ = small_set
    stump = fit_models(
        df,
        spec,
        FAST.model_copy(
            update={"lightgbm": LightGBMParams(max_rounds=1, num_leaves=2, early_stopping_rounds=1)}
        ),
    )
    assert stump.untrusted
    outcome = _register(stump, small_sim, df, name="untrusted-test", require_trusted=True)
    assert not outcome.promoted and outcome.kept == "untrusted"
    assert "do not trust" in outcome.reason
    assert _aliases("untrusted-test") == {"challenger": outcome.version}


def test_rolling_back_without_a_champion_is_a_clear_error(store):
    with pytest.raises(LeadscoreError, match="no champion to roll back"):
        rollback("never-registered")


def test_promotion_rule():
    # on points alone (no intervals): no worse on both, strictly better on one
    assert beats(0.81, 0.30, 0.80, 0.30) and beats(0.80, 0.29, 0.80, 0.30)
    assert not beats(0.80, 0.30, 0.80, 0.30)  # a tie keeps the champion
    assert not beats(0.82, 0.31, 0.80, 0.30)  # better AUC, worse calibration
    assert not beats(0.79, 0.20, 0.80, 0.30)
    # with intervals: the fresher model ships unless it is surely worse
    nan = float("nan")
    assert gate_decision([-0.004, -0.012, 0.003], [0.001, -0.002, 0.004]) == (True, "not worse")
    assert gate_decision([-0.02, -0.03, -0.01], [0.0, -0.001, 0.001]) == (
        False,
        "worse on ROC AUC",
    )
    assert gate_decision([0.01, 0.0, 0.02], [0.01, 0.002, 0.02]) == (False, "worse on log loss")
    assert gate_decision([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])[0] is False  # the same model
    assert gate_decision([0.01, nan, nan], [-0.001, nan, nan]) == (True, "not worse")


def test_the_gate_pools_the_backtest_rows_the_champion_had_not_seen(small_sim, small_set, trained):
    """A champion whose test window started at origin 1's window: origins 0 and 1 are
    compared (paired, on the same rows), origin 2 (which it learned from) is not; a champion
    that had seen every row is compared on the test rows, and the gate says so."""
    from leadscore.training.backtest import walk_forward

    df, _, _ = small_set
    config = FAST.model_copy(update={"backtest_origins": 3})
    bt = walk_forward(df, trained.scorer.spec, config, small_sim, None, evaluated=trained)
    result = replace(trained, backtest=bt)
    origin_1_end = bt.rows.loc[bt.rows["origin"] == 1, "as_of"].max()
    older = fit_models(df[df["as_of"] <= origin_1_end].reset_index(drop=True), small_set[1], FAST)
    start = utc(older.scorer.info["test_start"])
    built = {}  # the champion's training set, built once for the three gates

    def build(spec):
        if spec.version not in built:
            built[spec.version] = build_training_set(small_sim, spec=spec)[0]
        return built[spec.version]

    gate = champion_gate("7", older.scorer, result, build, bootstrap=30)
    expected = bt.rows[bt.rows["as_of"] >= start]
    assert gate["rows"] == len(expected) and set(gate["origins"]) == {0, 1}
    assert not gate["champion_had_seen_them"]
    point, low, high = gate["roc_auc_difference"]
    assert low <= point <= high
    assert point == pytest.approx(gate["challenger"]["roc_auc"] - gate["champion"]["roc_auc"])
    assert "of 2 backtest origins it had not seen" in gate_reason(gate)
    # the order of the rows changes nothing
    shuffled = replace(result, backtest=replace(bt, rows=bt.rows.sample(frac=1, random_state=3)))
    again = champion_gate("7", older.scorer, shuffled, build, bootstrap=30)
    assert again["roc_auc_difference"] == pytest.approx(gate["roc_auc_difference"])
    assert again["log_loss_difference"] == pytest.approx(gate["log_loss_difference"])
    # a champion trained on all of it has seen every row: compared on the test rows, said so
    newest = copy.copy(trained.scorer)
    newest.info = {**trained.scorer.info, "test_start": "2100-01-01"}
    seen = champion_gate("8", newest, result, build, bootstrap=0)
    assert seen["champion_had_seen_them"] and seen["rows"] == len(trained.test)
    assert "which the champion had seen" in gate_reason(seen)


def test_promoting_a_missing_version_is_a_clear_error(store):
    with pytest.raises(LeadscoreError, match="no version 99"):
        promote(NAME, "99")


def test_a_champion_trained_on_other_columns_is_refused_before_anything_is_logged(
    store, small_sim, small_set, trained
):
    """Another dataset into the same registry: one line naming the columns and
    --model-name, no new version, no run, aliases untouched."""
    df, spec, _ = small_set
    _register(trained, small_sim, df)  # a champion that uses `industry`
    before = {v.version for v in MlflowClient().search_model_versions(f"name='{NAME}'")}
    runs_before = len(mlflow.search_runs(experiment_names=["leadscore-test"]))
    aliases = _aliases()
    other = df.rename(columns={"industry": "sector"})
    other_spec = FeatureSpec(
        **{
            **spec.model_dump(),
            "categorical": [c if c != "industry" else "sector" for c in spec.categorical],
        }
    )
    result = fit_models(other, other_spec, FAST)
    with pytest.raises(LeadscoreError, match=r"no industry; .*--model-name") as info:
        _register(result, small_sim, other)
    assert "\n" not in str(info.value)
    after = {v.version for v in MlflowClient().search_model_versions(f"name='{NAME}'")}
    assert after == before and _aliases() == aliases
    assert len(mlflow.search_runs(experiment_names=["leadscore-test"])) == runs_before
