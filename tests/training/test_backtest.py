"""The walk-forward backtest: origins a test period apart, each trained on what was known
before its window, no window overlapping another, pooled figures and a paired interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.rules.config import load_rules
from leadscore.training.backtest import walk_forward
from tests.training.conftest import FAST


@pytest.fixture(scope="module")
def backtest(small_sim, small_set, trained):
    df, spec, _ = small_set
    config = FAST.model_copy(update={"backtest_origins": 3})
    return walk_forward(
        df, spec, config, small_sim, load_rules("conf/rules.yaml"), evaluated=trained, bootstrap=30
    )


def test_origins_are_a_test_period_apart_and_never_overlap(small_set, trained, backtest):
    df, spec, _ = small_set
    origins = backtest.origins
    assert [o["origin"] for o in origins] == [0, 1, 2] and not backtest.notes
    windows = [(pd.Timestamp(o["test_from"]), pd.Timestamp(o["test_to"])) for o in origins]
    for newer, older in zip(windows, windows[1:], strict=False):
        assert older[1] < newer[0]  # each window ends before the newer one starts
    # Origin 0 is the evaluation itself; every origin's model trained before its window.
    assert origins[0]["rows"] == int(trained.split.test.sum())
    for o in origins:
        assert pd.Timestamp(o["trained_before"]) < pd.Timestamp(o["test_from"])
    rows = backtest.rows
    assert len(rows) == sum(o["rows"] for o in origins)
    assert set(rows["origin"]) == {0, 1, 2} and not rows.duplicated(["lead_id", "as_of"]).any()


def test_pooled_figures_and_the_paired_interval(backtest):
    pooled = backtest.pooled
    assert set(pooled) == {"model", "rules", "learned"}
    point, low, high = backtest.difference
    assert low <= point <= high
    assert point == pytest.approx(pooled["model"]["roc_auc"] - pooled["rules"]["roc_auc"])
    for o in backtest.origins:
        c = o["capacity_wins"]
        assert c["mqls"] > 0 and 0 <= c["model"] <= o["positives"] and c["rules"] >= 0
        assert 0 <= c["learned"] <= o["positives"] and set(o["metrics"]) == set(pooled)
    # pooled capacity: each origin at its own MQLs, added up
    for key in ("mqls", "model", "rules", "learned"):
        total = sum(o["capacity_wins"][key] for o in backtest.origins)
        assert backtest.capacity_wins[key] == pytest.approx(total)
    steps = backtest.metrics_by_step()
    for scorer in ("model", "rules", "learned"):
        assert [s for s, _ in steps[f"backtest_roc_auc_{scorer}"]] == [0, 1, 2]
        assert f"backtest_pr_auc_{scorer}" in steps and f"backtest_ece_{scorer}" in steps
    assert [s for s, _ in steps["backtest_capacity_wins_learned"]] == [0, 1, 2]
    logged = backtest.pooled_metrics()
    assert logged["backtest_pooled_roc_auc_learned"] == pooled["learned"]["roc_auc"]
    assert logged["backtest_pooled_capacity_wins_model"] == backtest.capacity_wins["model"]
    # the table: per origin and pooled, a row per scorer
    from leadscore.training.backtest import table_rows

    table = table_rows(backtest.summary())
    assert len(table) == 4 * 3 and [r["origin"] for r in table[-3:]] == ["pooled"] * 3
    assert table[-1]["scorer"] == "learned" and table[-1]["PR AUC"] == pooled["learned"]["pr_auc"]


def test_short_data_runs_fewer_origins_and_says_so(small_set, small_sim, trained):
    df, spec, _ = small_set
    config = FAST.model_copy(update={"backtest_origins": 12})
    short = walk_forward(df, spec, config, small_sim, None, evaluated=trained, bootstrap=0)
    assert 1 <= len(short.origins) < 12 and short.difference is None
    assert short.notes and "of 12 origins" in short.notes[0] and "too short" in short.notes[0]
    tiny = df[df["as_of"] <= df["as_of"].min() + pd.Timedelta(days=20)]
    with pytest.raises(LeadscoreError, match="ran no origin"):
        walk_forward(tiny.reset_index(drop=True), spec, config, small_sim, None, bootstrap=0)
    assert np.isfinite(short.pooled["model"]["roc_auc"])


def test_the_report_shows_every_origin_and_its_csv_holds_every_row(
    small_sim, small_set, trained, backtest, tmp_path
):
    from leadscore.training.report import compare
    from leadscore.training.report_page import write_report

    df, _, _ = small_set
    comp = compare(
        small_sim, trained.scorer, load_rules("conf/rules.yaml"), FAST,
        training_set=df, split=trained.split, bootstrap=20, backtest=backtest,
    )  # fmt: skip
    html_path, csv_path = write_report(comp, tmp_path / "compare.html")
    page = html_path.read_text()
    assert "Walk-forward backtest" in page and "pooled" in page
    assert f"{backtest.difference[0]:+.3f}" in page
    rows = pd.read_csv(csv_path)
    assert sorted(rows["origin"].unique()) == [0, 1, 2]
    assert len(rows) == len(backtest.rows)
    assert rows["learned_probability"].notna().all() and rows["learned_score"].notna().all()
    # origin 0's learned points are the report's own: one way to learn them
    own = comp.rows[["lead_id", "as_of", "learned_score"]]
    first = backtest.rows[backtest.rows["origin"] == 0][["lead_id", "as_of", "learned_score"]]
    both = own.merge(first, on=["lead_id", "as_of"], suffixes=("", "_backtest"))
    assert len(both) == len(own)
    np.testing.assert_array_equal(both["learned_score"], both["learned_score_backtest"])
    assert page.count("Learned points") >= 4  # a row per origin and pooled
    # The verdict rests on the pooled difference, not on one window.
    point, low, high = backtest.difference
    pooled = [v for v in comp.verdict if "keep the rules" in v]
    assert (low <= 0) == bool(pooled)
    if pooled:
        assert "pooled over 3 backtest origins" in pooled[0]
