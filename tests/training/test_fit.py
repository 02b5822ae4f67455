from __future__ import annotations

import numpy as np
import pytest

from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.calibration import choose_calibrator, fit_calibrator
from leadscore.stats.metrics import deciles, evaluate, expected_calibration_error
from leadscore.training.fit import fit_models
from tests.training.conftest import FAST


def test_model_beats_chance_and_is_calibrated(trained):
    m = trained.metrics["model"]
    assert m["roc_auc"] > 0.75 and m["roc_auc_ci"][0] < m["roc_auc"] < m["roc_auc_ci"][1]
    assert m["ece"] < 0.05
    assert set(trained.metrics) == {"model", "logistic", "lead_age"}
    # lead age alone ranks snapshots of every age above chance, the model above it
    assert 0.5 < trained.metrics["lead_age"]["roc_auc"] < m["roc_auc"]
    assert m["lift_top_decile"] > 1 and m["deciles"][-1]["capture"] == pytest.approx(1.0)


def test_test_labels_never_reach_training_or_calibration(small_set, trained):
    """Flip every test label: the booster and the calibrator must not change."""
    df, spec, _ = small_set
    flipped = df.copy()
    test = trained.split.test
    flipped.loc[test, "label"] = 1 - flipped.loc[test, "label"]
    again = fit_models(flipped, spec, FAST)
    assert again.scorer.booster.model_to_string() == trained.scorer.booster.model_to_string()
    assert again.scorer.calibrator == trained.scorer.calibrator
    assert again.scorer.info["age_hazard"] == trained.scorer.info["age_hazard"]


def test_calibrator_is_fitted_on_validation(small_set, trained):
    df, spec, _ = small_set
    val = df[trained.split.validation]
    raw = trained.scorer.raw_scores(trained.scorer.encode_frame(val))
    expected, _ = choose_calibrator(raw, val["label"].to_numpy().astype(int), "auto", FAST.seed)
    assert trained.scorer.calibrator == expected
    # ... and validation labels do matter to it.
    flipped = df.copy()
    flipped.loc[trained.split.validation, "label"] = (
        1 - flipped.loc[trained.split.validation, "label"]
    )
    assert fit_models(flipped, spec, FAST).scorer.calibrator != trained.scorer.calibrator


def test_reasons_add_up_to_the_raw_score(small_sim, trained):
    from leadscore.crm.payloads import lead_payloads

    scorer = trained.scorer
    test = trained.test.head(20)
    payloads = {
        p["lead_id"]: p for p in lead_payloads(small_sim, test["lead_id"].unique(), iso=True)
    }
    batch = scorer._featurizer.batch(
        [payloads[r.lead_id] for r in test.itertuples()],
        [r.as_of.isoformat() for r in test.itertuples()],
    )
    x = scorer.encode_batch(batch)
    contrib = scorer.contributions(x)
    np.testing.assert_allclose(contrib.sum(axis=1), scorer.raw_scores(x), rtol=1e-9, atol=1e-9)
    # Each payload carries its own as_of (the batch form of a request).
    scored = scorer.score_leads(
        [{**payloads[r.lead_id], "as_of": r.as_of.isoformat()} for r in test.itertuples()],
        None,
        reasons=100,
    )
    # With every group listed, the worded reasons plus the base value give the raw score.
    for i, item in enumerate(scored):
        total = sum(
            r["contribution"] for r in item["reasons"]["positive"] + item["reasons"]["negative"]
        )
        assert total + contrib[i, -1] == pytest.approx(scorer.raw_scores(x[i : i + 1])[0], abs=1e-3)
        assert all(r["text"] for r in item["reasons"]["positive"] + item["reasons"]["negative"])


def test_online_scores_equal_batch_scores(small_sim, trained):
    from leadscore.crm.payloads import lead_payloads

    test = trained.test.sample(200, random_state=0)
    payloads = {
        p["lead_id"]: p for p in lead_payloads(small_sim, test["lead_id"].unique(), iso=True)
    }
    online = [
        trained.scorer.score_leads([payloads[r.lead_id]], r.as_of.isoformat(), reasons=0)[0][
            "probability"
        ]
        for r in test.itertuples()
    ]
    np.testing.assert_allclose(online, test["p_model"].to_numpy(), rtol=1e-12)


def test_an_irrelevant_field_does_not_change_the_score(small_sim, trained):
    from leadscore.crm.payloads import lead_payloads

    lead = lead_payloads(small_sim, [trained.test["lead_id"].iloc[0]], iso=True)[0]
    as_of = trained.test["as_of"].iloc[0].isoformat()
    base = trained.scorer.score_leads([lead], as_of)[0]
    noisy = {**lead, "favourite_colour": "teal", "profile": {**lead["profile"], "shoe_size": 44}}
    assert trained.scorer.score_leads([noisy], as_of)[0] == base


def test_scorer_round_trips_through_disk(tmp_path, trained):
    folder = trained.scorer.save(tmp_path / "scorer")
    loaded = LeadScorer.load(folder)
    assert (
        loaded.features == trained.scorer.features
        and loaded.calibrator == trained.scorer.calibrator
    )
    assert loaded.booster.model_to_string() == trained.scorer.booster.model_to_string()
    assert loaded.spec == trained.scorer.spec and loaded.grades == trained.scorer.grades


def test_loading_a_non_scorer_is_a_clear_error(tmp_path):
    from leadscore.crm.errors import LeadscoreError

    with pytest.raises(LeadscoreError, match="not a saved lead scorer"):
        LeadScorer.load(tmp_path)


def test_metrics_on_known_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = evaluate(y, p, bootstrap=0)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert expected_calibration_error(np.array([0, 1] * 50), np.full(100, 0.5)) == pytest.approx(
        0.0
    )
    table = deciles(np.r_[np.ones(10), np.zeros(90)], np.r_[np.ones(10), np.zeros(90)])
    assert table[0]["capture"] == 1.0 and table[0]["lift"] == pytest.approx(10.0)


def test_platt_and_isotonic_calibrators_map_scores_monotonically():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=2_000)
    y = (rng.random(2_000) < 1 / (1 + np.exp(-2 * raw))).astype(int)
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(raw, y, method)
        p = cal(np.sort(raw))
        assert np.all(np.diff(p) >= -1e-12) and p.min() >= 0 and p.max() <= 1
    platt = fit_calibrator(raw, y, "platt")
    assert platt.a == pytest.approx(2.0, rel=0.15)


def test_bootstrap_interval_matches_sorting_each_resample():
    """The fast weighted AUC over lead resamples equals sorting each resample."""
    from sklearn.metrics import roc_auc_score

    from leadscore.stats.bootstrap import lead_resample_weights
    from leadscore.stats.metrics import bootstrap_auc

    rng = np.random.default_rng(3)
    leads = np.repeat(np.arange(1_000), 3)
    y = np.repeat((rng.random(1_000) < 0.2).astype(int), 3)
    p = np.round(rng.random(3_000) * 0.5 + 0.3 * y, 2)  # rounded: many ties
    low, high = bootstrap_auc(y, p, 300, seed=1, groups=leads)
    slow = []
    for w in lead_resample_weights(leads, y, 300, seed=1):
        idx = np.repeat(np.arange(len(y)), w)
        slow.append(roc_auc_score(y[idx], p[idx]))
    estimate = roc_auc_score(y, p)
    assert (low, high) == pytest.approx(
        (min(np.percentile(slow, 2.5), estimate), max(np.percentile(slow, 97.5), estimate)),
        abs=1e-12,
    )


def test_no_activity_table_no_activity_features_and_no_such_reasons(small_sim_path, tmp_path):
    """Leads and deals only: nothing learns from, or words a reason from, activities or
    speed to lead (uncontacted time would only be the lead's age)."""
    import shutil

    from leadscore.crm import load_dataset
    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.batch import build_training_set
    from tests.training.conftest import FAST

    folder = tmp_path / "crm"
    folder.mkdir()
    for name in ("leads.parquet", "deals.parquet", "dataset.yaml"):
        shutil.copy(small_sim_path / name, folder / name)
    ds = load_dataset(folder)
    df, spec, _ = build_training_set(ds)
    assert spec.activity_types == [] and "uncontacted_seconds" in spec.unsupported_features
    result = fit_models(df, spec, FAST)
    assert not set(spec.unsupported_features) & set(result.scorer.features)
    assert any("the data has no activities" in w for w in result.warnings)
    ids = result.test["lead_id"].drop_duplicates().head(40).tolist()
    as_of = result.test["as_of"].max().isoformat()
    scored = result.scorer.score_leads(lead_payloads(ds, ids, iso=True), as_of)
    texts = [r["text"] for s in scored for side in s["reasons"].values() for r in side]
    assert texts and not [t for t in texts if "contacted" in t or "activit" in t]
