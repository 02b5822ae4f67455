"""Points rules: arithmetic on hand-built leads, batch = online, config errors, contract."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from leadscore.crm.errors import ConfigError, LeadscoreError, PayloadError
from leadscore.crm.loading import load_dataset
from leadscore.crm.payloads import lead_payloads
from leadscore.features.online import OnlineFeaturizer
from leadscore.rules.config import RulesConfig, check_rules, load_rules
from leadscore.rules.scorer import RuleScorer, batch_rule_inputs, payload_rule_inputs
from tests.conftest import write_dataset

RULES = RulesConfig.model_validate(
    {
        "base_points": 5,
        "profile": {
            "job_role": {"values": {"c_level": 20, "student": -10}, "other": 2, "missing": -1},
            "employees": {"at_least": {50: 5, 500: 15}, "missing": 0},
            "source": {"values": {"partner": 10}},
        },
        "half_life_days": 10,
        "activities": {
            "pricing_page_view": {"points": 10, "max": 25},
            "page_view": 1,
            "unsubscribe": {"points": -30, "decay": False},
        },
        "inactivity": {"days": 30, "points": -20},
        "cap": 100,
        "mql_threshold": 75,
    }
)
DAY = "2025-03-01T00:00:00Z"


def _lead(activities=(), **profile):
    return {
        "lead_id": "X",
        "created_at": "2025-01-01T00:00:00Z",
        "source": profile.pop("source", "website"),
        "profile": profile,
        "activities": [{"activity_type": t, "occurred_at": when} for t, when in activities],
    }


def _points(lead, as_of=DAY, rules=RULES):
    return float(RuleScorer(rules).points(payload_rule_inputs(rules, [lead], [as_of]))[0])


def _parts(lead, as_of=DAY, rules=RULES):
    x = payload_rule_inputs(rules, [lead], [as_of])
    return {k: float(v[0]) for k, v in RuleScorer(rules).contributions(x).items()}


def test_profile_points_by_value_threshold_other_and_missing():
    parts = _parts(_lead(job_role="c_level", employees=600, source="partner"))
    assert parts["job_role"] == 20 and parts["employees"] == 15 and parts["source"] == 10
    parts = _parts(_lead(job_role="engineer", employees=50))
    assert parts["job_role"] == 2 and parts["employees"] == 5 and parts["source"] == 0
    parts = _parts(_lead(employees=49))
    assert parts["job_role"] == -1 and parts["employees"] == 0


def test_decay_halves_points_every_half_life():
    now = _parts(_lead([("page_view", DAY)]))
    assert now["page_view"] == pytest.approx(1.0)
    ten_days = _parts(_lead([("page_view", "2025-02-19T00:00:00Z")]))
    assert ten_days["page_view"] == pytest.approx(0.5)
    twenty = _parts(_lead([("page_view", "2025-02-09T00:00:00Z")] * 3))
    assert twenty["page_view"] == pytest.approx(0.75)


def test_per_type_cap_and_undecayed_negative_points():
    parts = _parts(_lead([("pricing_page_view", DAY)] * 4))
    assert parts["pricing_page_view"] == 25  # 40 capped at 25
    old = _parts(_lead([("unsubscribe", "2025-01-02T00:00:00Z")]))
    assert old["unsubscribe"] == -30  # 58 days old, counted in full


def test_events_after_as_of_do_not_count():
    parts = _parts(_lead([("pricing_page_view", "2025-03-01T00:00:01Z")]))
    assert parts["pricing_page_view"] == 0


def test_inactivity_penalty_uses_engaging_activities_only():
    # created 59 days before as_of, nothing since: inactive for more than 30 days
    assert _parts(_lead())["days_inactive"] == -20
    # an unsubscribe (negative points) is not engagement
    assert _parts(_lead([("unsubscribe", "2025-02-28T00:00:00Z")]))["days_inactive"] == -20
    assert _parts(_lead([("page_view", "2025-02-28T00:00:00Z")]))["days_inactive"] == 0
    # exactly 30 days is not "more than 30"
    assert _parts(_lead(), as_of="2025-01-31T00:00:00Z")["days_inactive"] == 0


def test_total_is_base_plus_items_clipped_to_floor_and_cap():
    lead = _lead([("page_view", DAY)], job_role="c_level", employees=600, source="partner")
    # 5 + 20 + 15 + 10 + 1 (page view now) + 0 (active) = 51
    assert _points(lead) == pytest.approx(51)
    many = _lead(
        [("pricing_page_view", DAY)] * 3 + [("page_view", DAY)] * 40,
        job_role="c_level",
        employees=600,
        source="partner",
    )
    assert _points(many) == 100  # 5 + 45 + 25 + 40: capped
    low = _lead([("unsubscribe", DAY)], job_role="student")
    assert _points(low) == 0  # negative: floored


def test_mql_threshold_grades_and_rounding():
    scorer = RuleScorer(RULES)
    score = np.array([74, 75, 50, 49, 25, 24])
    assert scorer.mql(score).tolist() == [False, True, False, False, False, False]
    assert scorer.grade(score).tolist() == ["B", "A", "B", "C", "C", "D"]
    x = payload_rule_inputs(RULES, [_lead([("page_view", "2025-02-19T00:00:00Z")])], [DAY])
    # 5 - 1 (no role) + 0.5 (decayed page view) = 4.5 -> rounds half up to 5
    assert scorer.points(x)[0] == pytest.approx(4.5)
    assert scorer.rule_scores(x)[0] == 5


def test_estimator_contract_and_calibration():
    rng = np.random.default_rng(0)
    n = 400
    x = {
        "days_inactive": np.zeros(n),
        "job_role": np.array(["c_level"] * (n // 2) + ["student"] * (n // 2), dtype=object),
        "employees": np.full(n, np.nan),
        "source": np.array(["website"] * n, dtype=object),
        "activity:pricing_page_view": rng.poisson(1.0, n).astype(float),
        "activity:page_view": np.zeros(n),
        "activity:unsubscribe": np.zeros(n),
    }
    y = (rng.random(n) < np.where(x["job_role"] == "c_level", 0.4, 0.05)).astype(int)
    scorer = RuleScorer(RULES)
    with pytest.raises(LeadscoreError, match="not fitted"):
        scorer.predict_proba(x)
    assert scorer.fit(x, y) is scorer
    p = scorer.predict_proba(x)
    assert p.shape == (n, 2) and np.allclose(p.sum(axis=1), 1)
    assert p[: n // 2, 1].mean() > p[n // 2 :, 1].mean()
    assert abs(p[:, 1].mean() - y.mean()) < 0.02  # calibrated to the rows it was fitted on
    assert scorer.predict(x).tolist() == scorer.mql(scorer.rule_scores(x)).astype(int).tolist()
    # scikit-learn's own score: accuracy of the MQL decision
    assert scorer.score(x, y) == ((scorer.predict(x) == y).mean())
    twin = clone(scorer)
    assert twin.get_params()["rules"] == RULES and not hasattr(twin, "calibrator_")
    restored = RuleScorer.from_dict(scorer.to_dict())
    assert np.array_equal(restored.predict_proba(x), p)


def test_batch_and_online_rule_scores_are_identical(small_sim, small_set):
    rules = load_rules("conf/rules.yaml")
    df = small_set[0]
    rows = df.sample(300, random_state=1).reset_index(drop=True)
    batch = batch_rule_inputs(rules, small_sim, rows["lead_id"], rows["as_of"])
    payloads = lead_payloads(small_sim, rows["lead_id"], iso=True)
    online = payload_rule_inputs(rules, payloads, [t.isoformat() for t in rows["as_of"]])
    scorer = RuleScorer(rules)
    assert np.array_equal(scorer.points(batch), scorer.points(online))
    for key in batch:
        if key.startswith("activity:") or key == "days_inactive":
            assert np.array_equal(batch[key], online[key]), key
    assert (scorer.rule_scores(batch) > 0).mean() > 0.5  # not trivially all zero
    # and one lead at a time gives the same as the batch
    single = [
        scorer.points(payload_rule_inputs(rules, [p], [t.isoformat()]))[0]
        for p, t in zip(payloads[:40], rows["as_of"][:40], strict=True)
    ]
    assert np.array_equal(np.array(single), scorer.points(batch)[:40])
    # and reusing the featurizer's parse of the same payloads (as the endpoint does)
    as_ofs = [t.isoformat() for t in rows["as_of"]]
    parsed = OnlineFeaturizer(small_set[1]).batch(payloads, as_ofs)
    reused = payload_rule_inputs(rules, payloads, as_ofs, parsed=(parsed.as_of_us, parsed.events))
    assert all(np.array_equal(online[k], reused[k]) for k in online)


def test_default_rules_fit_the_simulated_data(small_sim):
    assert check_rules(load_rules("conf/rules.yaml"), small_sim) == []


def test_yaml_round_trip():
    text = RULES.to_yaml()
    assert "page_view: 1\n" in text  # short form for a plain per-activity rule
    assert RulesConfig.model_validate(__import__("yaml").safe_load(text)) == RULES


def _write(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("activities:\n  page_view: lots\n", r"rules.yaml: activities.page_view.points: .*number"),
        ("activities:\n  page_view: {points: 1, max: -3}\n", r"activities.page_view.max"),
        ("profile:\n  job_role: {values: {vp: high}}\n", r"profile.job_role.values.vp: .*number"),
        ("profile:\n  job_role: {}\n", r"profile.job_role: .*either `values`"),
        ("mql_treshold: 70\n", r"mql_treshold: Extra inputs"),
        ("grades: {A: 20, B: 50, C: 10}\n", r"grades: .*A >= B >= C"),
        ("floor: 100\ncap: 50\n", r"floor \(100.0\) must be below cap"),
        ("half_life_days: 0\n", r"half_life_days: .*greater than 0"),
        ("activities: [page_view]\n", r"activities: .*dictionary"),
        ("- just\n- a list\n", r"expected a mapping"),
        ("activities: {page_view: 1\n", r"not valid YAML"),
    ],
)
def test_malformed_rules_files_get_clear_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_rules(_write(tmp_path, text))


def test_missing_rules_file(tmp_path):
    with pytest.raises(ConfigError, match="rules file not found"):
        load_rules(tmp_path / "nope.yaml")


def test_rules_are_checked_against_the_dataset(good_dataset, tmp_path):
    ds = load_dataset(good_dataset)
    bad_type = RulesConfig.model_validate({"activities": {"webinar_attendence": 5}})
    with pytest.raises(
        ConfigError, match=r"activities.webinar_attendence: unknown activity type .*page_view"
    ):
        check_rules(bad_type, ds)
    bad_column = RulesConfig.model_validate({"profile": {"jobrole": {"values": {"vp": 1}}}})
    with pytest.raises(ConfigError, match=r"profile.jobrole: no such column"):
        check_rules(bad_column, ds)
    numeric = RulesConfig.model_validate({"profile": {"employees": {"values": {"10": 1}}}})
    with pytest.raises(ConfigError, match=r"profile.employees: numeric column, use `at_least`"):
        check_rules(numeric, ds)
    text = RulesConfig.model_validate({"profile": {"industry": {"at_least": {1: 1}}}})
    with pytest.raises(ConfigError, match=r"profile.industry: text column, use `values`"):
        check_rules(text, ds)
    typo = RulesConfig.model_validate({"profile": {"industry": {"values": {"sofware": 5}}}})
    assert check_rules(typo, ds) == [
        "rules.yaml: profile.industry: 'sofware' never occurs in the data"
    ]
    flat = write_dataset(
        tmp_path / "flat",
        leads="lead_id,created_at,source,Converted\nA,2025-01-01,web,1\nB,2025-01-02,web,0\n",
        dataset="label: {column: Converted}\n",
    )
    with pytest.raises(ConfigError, match="no activity history"):
        check_rules(
            RulesConfig.model_validate({"activities": {"page_view": 1}}), load_dataset(flat)
        )


def test_bad_payloads_name_the_field():
    with pytest.raises(PayloadError) as exc:
        payload_rule_inputs(RULES, [_lead([("page_view", "yesterday")])], [DAY])
    assert exc.value.path == "leads[0].activities[0].occurred_at"
    with pytest.raises(PayloadError) as exc:
        payload_rule_inputs(RULES, [_lead(employees="many")], [DAY])
    assert exc.value.path == "leads[0].profile.employees"
    with pytest.raises(PayloadError) as exc:
        payload_rule_inputs(
            RULES, [_lead([("page_view", DAY)])], ["2025-02-01T00:00:00Z"], strict=True
        )
    assert exc.value.path == "leads[0].activities[0].occurred_at"


def test_batch_inputs_reject_unknown_leads(good_dataset):
    ds = load_dataset(good_dataset)
    with pytest.raises(LeadscoreError, match="not in the dataset"):
        batch_rule_inputs(
            RULES.model_copy(update={"profile": {}}), ds, ["L1", "L9"], pd.Series([DAY, DAY])
        )
