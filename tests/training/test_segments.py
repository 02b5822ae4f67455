"""Segments: a model calibrated per segment (shrunk toward the whole) scores every lead with
its segment's calibration, in every path, and corrects a segment that converts otherwise."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.payloads import lead_payloads
from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.calibration import logit
from leadscore.training.config import SegmentsConfig
from leadscore.training.fit import fit_models
from leadscore.training.refit import ship
from leadscore.training.splits import split_training_set
from tests.training.conftest import FAST

SEGMENTED = FAST.model_copy(update={"segments": SegmentsConfig(column="country")})


@pytest.fixture(scope="module")
def planted(small_set):
    """small_set where leads of one country win far more often after the train period than
    before (a market that took off): the booster cannot know, the calibration rows can."""
    df, spec, _ = small_set
    df = df.copy()
    later = ~split_training_set(df, spec, FAST).train
    country = df["country"].astype(object)
    target = country.value_counts().index[1]  # a large country, not the largest
    rng = np.random.default_rng(0)
    flip = later & (country == target).to_numpy() & (rng.random(len(df)) < 0.25)
    df.loc[flip, "label"] = 1
    return df, spec, target


@pytest.fixture(scope="module")
def segmented(planted):
    df, spec, _ = planted
    return fit_models(df, spec, SEGMENTED)


def test_a_segment_that_converts_more_is_corrected_on_the_test_rows(planted, segmented):
    df, _, target = planted
    scorer = segmented.scorer
    assert scorer.segments is not None and scorer.segments.column == "country"
    test = df[segmented.split.test]
    # Its odds raised on its own rows (intercept and slope together), more than any other's.
    z = logit(scorer.calibrator(scorer.raw_scores(scorer.encode_frame(test))))
    countries = test["country"].astype(object).to_numpy()

    def shift(name):
        a, b = scorer.segments.offsets[name]
        return float(np.mean(b * z[countries == name] + a))

    assert shift(target) > 0.5
    assert all(shift(k) < shift(target) for k in scorer.segments.offsets if k != target)
    in_segment = (test["country"].astype(object) == target).to_numpy()
    y = test["label"].to_numpy()[in_segment]
    p_segment = scorer.score(scorer.frame_batch(test), reasons=0).probability[in_segment]
    flat = copy.copy(scorer)
    flat.segments = None
    p_global = flat.calibrator(flat.raw_scores(flat.encode_frame(test)))[in_segment]

    def loss(p):
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    assert loss(p_segment) < loss(p_global) - 0.01
    assert abs(p_segment.mean() - y.mean()) < abs(p_global.mean() - y.mean())


def test_every_path_scores_with_the_segment_and_an_unknown_one_gets_the_global(
    small_sim, segmented, tmp_path
):
    scorer = segmented.scorer
    when = small_sim.data_end
    ids = small_sim.leads["lead_id"].head(40).tolist()
    leads = lead_payloads(small_sim, ids, iso=True)
    by_payload = scorer.score(scorer.payload_batch(leads, when.isoformat()), reasons=0)
    loaded = LeadScorer.load(scorer.save(tmp_path / "scorer"))
    again = loaded.score(loaded.payload_batch(leads, when.isoformat()), reasons=0)
    np.testing.assert_array_equal(by_payload.probability, again.probability)
    assert np.all(
        (by_payload.p_low <= by_payload.probability) & (by_payload.probability <= by_payload.p_high)
    )
    # A country the calibration rows never saw: the global calibration, exactly.
    lead = {**leads[0], "profile": {**leads[0].get("profile", {}), "country": "Atlantis"}}
    p_new = scorer.score(scorer.payload_batch([lead], when.isoformat()), reasons=0).probability
    batch = scorer.payload_batch([lead], when.isoformat())
    age = scorer.age_hazard.factor(batch.age_days)  # the calibration by age, on top
    assert p_new[0] == min(
        scorer.calibrator(scorer.raw_scores(batch.x))[0] * age[0], scorer.calibrator.high
    )


def test_the_shipped_model_is_calibrated_per_segment_too(planted, segmented):
    df, _, target = planted
    shipped = ship(segmented, df, SEGMENTED).scorer
    assert shipped.segments is not None and target in shipped.segments.offsets
    assert shipped.segments is not segmented.scorer.segments


def test_a_segment_column_that_is_not_a_text_column_is_refused(small_set):
    df, spec, _ = small_set
    config = FAST.model_copy(update={"segments": SegmentsConfig(column="no_such_column")})
    with pytest.raises(LeadscoreError, match="segments.column 'no_such_column'.*text columns"):
        fit_models(df, spec, config)
    assert isinstance(df, pd.DataFrame)


def test_the_report_judges_each_segment_and_shows_the_intervals(small_sim, planted, segmented):
    from leadscore.rules.config import load_rules
    from leadscore.training.report import compare
    from leadscore.training.report_page import render_html

    df, _, target = planted
    comp = compare(
        small_sim,
        segmented.scorer,
        load_rules("conf/rules.yaml"),
        SEGMENTED,
        training_set=df,
        split=segmented.split,
        learned=False,
        bootstrap=20,
    )
    table = comp.segments.set_index("segment")
    countries = df.loc[segmented.split.test, "country"].astype(object)
    assert set(table.index) == {"(none)" if pd.isna(c) else c for c in countries}
    assert table["wins"].sum() == comp.rows["label"].sum()
    judged = table[table["wins"] >= 5]
    assert judged["verdict"].str.contains("model|rules").all()
    # The planted segment's calibration error is smaller with its own calibration.
    assert table.loc[target, "ece_segment"] < table.loc[target, "ece_global"]
    assert len(comp.intervals) and comp.intervals.iloc[-1]["grade"] == "all"
    page = render_html(comp, "compare.csv")
    assert "By country" in page and "How sure each score is" in page
    # AUCs and calibration errors with three decimals (one would print 0.0 and 0.9)
    assert f"<td>{table.loc[target, 'ece_segment']:.3f}</td>" in page


def test_train_says_how_much_each_segment_kept_of_its_own(segmented, capsys):
    from types import SimpleNamespace

    from leadscore.commands.train import print_training

    outcome = SimpleNamespace(promoted=True, version="1", reason="first model", run_id="r")
    print_training(segmented, outcome, "lead-scoring")
    text = capsys.readouterr().out
    shares = [e["weight"] for e in segmented.scorer.segments.evidence.values()]
    assert f"calibrated per country: {len(shares)} segments, each keeping" in text
    assert f"{min(shares):.0%}-{max(shares):.0%} of its own correction" in text
