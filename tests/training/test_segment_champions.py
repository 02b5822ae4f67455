"""Segment champions: a segment gets its own model only when that model is surely better on
the segment's test rows; the shipped scorer then routes its leads to it, in every path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.payloads import lead_payloads
from leadscore.scoring.reasons import ReasonColumns, merge_reasons
from leadscore.scoring.scorer import LeadScorer
from leadscore.training.config import SegmentsConfig
from leadscore.training.fit import fit_models
from leadscore.training.refit import ship
from leadscore.training.segment_champions import fit_segment_champions, with_segment_champions
from tests.training.conftest import FAST

# Stumps: the shared model cannot learn a segment x feature interaction, a segment's own
# model learns it from the segment's rows alone.
STUMPS = FAST.model_copy(
    update={
        "segments": SegmentsConfig(column="country", champions=True, champion_min_wins=25),
        "lightgbm": FAST.lightgbm.model_copy(update={"max_depth": 1, "num_leaves": 2}),
    }
)


@pytest.fixture(scope="module")
def planted(small_set):
    """small_set where, in the US only, students win (a fifth of them) and others rarely:
    the other way round from everywhere else."""
    df, spec, _ = small_set
    df = df.copy()
    us = (df["country"].astype(object) == "US").to_numpy()
    student = (df["job_role"].astype(object) == "student").to_numpy()
    rng = np.random.default_rng(0)
    p = np.where(student, 0.2, 0.01)
    df.loc[us, "label"] = (rng.random(int(us.sum())) < p[us]).astype(df["label"].dtype)
    return df, spec


@pytest.fixture(scope="module")
def routed(planted):
    df, spec = planted
    shared = ship(fit_models(df, spec, STUMPS), df, STUMPS)
    champions = fit_segment_champions(df, spec, STUMPS, shared)
    return shared, champions, with_segment_champions(shared, champions, df, STUMPS)


def test_the_gate_per_segment(routed):
    shared, champions, result = routed
    table = champions.table.set_index("segment")
    assert table.loc["US", "served_by"] == "its own model"
    assert set(champions.shipped) == {"US"}
    # eligible segments that are not surely better served by their own model keep the shared
    gated = table[table["own_auc"].notna()]
    assert len(gated) >= 2 and (gated.drop(index="US")["served_by"] == "shared model").all()
    thin = table[table["train_wins"] < 25]
    assert len(thin) and (thin["served_by"] == "shared model").all()
    # what ships is what is reported: the routed model's test figures
    assert result.metrics["model"]["roc_auc"] > shared.metrics["model"]["roc_auc"] + 0.02
    assert result.segment_champions is champions


def test_every_path_routes_to_the_champion(tmp_path, small_sim, planted, routed):
    _, champions, result = routed
    scorer = LeadScorer.load(result.scorer.save(tmp_path / "model"))
    assert scorer.champion_column == "country" and set(scorer.segment_champions) == {"US"}
    assert set(scorer.evaluated.segment_champions) == {"US"}
    when = small_sim.data_end
    leads = small_sim.leads
    us = leads.loc[leads["country"].astype(object) == "US", "lead_id"].head(6).tolist()
    other = leads.loc[leads["country"].astype(object) == "DE", "lead_id"].head(6).tolist()
    payloads = lead_payloads(small_sim, us + other, iso=True)
    got = scorer.score_leads(payloads, when)
    champion = scorer.segment_champions["US"]
    alone = champion.score_leads(payloads[:6], when)
    shared = scorer.score(scorer.payload_batch(payloads[6:], when))
    for a, b in zip(got[:6], alone, strict=True):
        assert a["probability"] == pytest.approx(b["probability"])
        assert a["reasons"] == b["reasons"] and a["p_low"] == pytest.approx(b["p_low"])
    assert [g["probability"] for g in got[6:]] == pytest.approx(shared.probability.tolist())


def test_merged_reasons_keep_each_models_words():
    def columns(names, groups, texts):
        g = np.array(groups)
        return ReasonColumns(
            names,
            {"positive": g, "negative": np.full_like(g, -1)},
            {"positive": np.array(texts, dtype=object), "negative": np.full(g.shape, None, object)},
            {"positive": np.where(g >= 0, 1.0, np.nan), "negative": np.full(g.shape, np.nan)},
        )

    base = columns(["a", "b"], [[0, 1], [1, -1], [0, -1]], [["A", "B"], ["B", None], ["A", None]])
    part = columns(["c", "a"], [[0, 1, -1]], [["C", "A", None]])
    merged = merge_reasons(base, part, np.array([1]))
    assert merged.names == ["a", "b", "c"]
    assert merged.text_lists("positive") == [["A", "B"], ["C", "A"], ["A"]]
    assert merged.per_lead()[1]["positive"][0]["feature"] == "c"


def test_no_champion_without_the_setting(planted):
    df, spec = planted
    config = STUMPS.model_copy(update={"segments": SegmentsConfig(column="country")})
    result = fit_models(df, spec, config)
    assert result.segment_champions is None and not result.scorer.segment_champions
    assert isinstance(result.test, pd.DataFrame)
