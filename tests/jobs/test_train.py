"""The training job in process: one sequence for the CLI, the demo, the notebooks and the
tests; a scorer complete when built; progress reported, not printed."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.jobs import Recorded, TrainRequest, retrain, train
from leadscore.jobs.compare import CompareRequest, compare
from tests.training.conftest import FAST, sqlite_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with sqlite_store(tmp_path_factory.mktemp("jobs")) as root:
        yield root


def test_train_registers_a_complete_scorer_and_reports_its_steps(store, small_sim_path):
    progress = Recorded()
    config = FAST.model_copy(update={"experiment": "jobs-test", "model_name": "jobs-model"})
    training = train(TrainRequest(data=small_sim_path, config=config), progress)
    assert training.outcome.promoted and training.outcome.version == "1"
    scorer = training.result.scorer
    assert scorer.rules is not None  # the rules packed by the job, not assigned afterwards
    assert scorer.evaluated is not None and scorer.evaluated.rules is None  # refit ships
    assert training.comparison is not None and training.config.model_name == "jobs-model"
    assert progress.steps[0].startswith("loading and checking")
    assert "logging to MLflow and registering the model" in progress.steps
    # each backtest origin says when it starts and ends: rows, rounds, seconds, what is left
    said = [line for line in progress.said if line.startswith("backtest origin")]
    assert len(said) == 2 * FAST.backtest_origins
    assert "(the evaluation's fit, reused)" in said[0] and " rows" in said[0]
    assert " s left for 1 more" not in said[1]  # the reused fit is no estimate
    assert " done in " in said[-1] and " rounds, " in said[-1] and "left" not in said[-1]

    # the same model again: the champion stays (not better), and retrain says why
    again = retrain(TrainRequest(data=small_sim_path, config=config), Recorded())
    assert again.kept in ("not better", "untrusted") and not again.training.outcome.promoted

    done = compare(
        CompareRequest(data=small_sim_path, model="models:/jobs-model@champion",
                       out=store / "report" / "compare.html", learned=False),
    )  # fmt: skip
    assert done.html_path.is_file() and done.csv_path.is_file()
    assert "rules" in set(done.comparison.headline["scorer"])
    # the page marketing runs shows the backtest of the model's own training run, and says so
    stored = training.result.backtest
    assert done.backtest_source.startswith("the backtest of the model's own training run")
    for scorer, figures in stored.summary()["pooled"].items():
        assert done.backtest.summary()["pooled"][scorer] == pytest.approx(figures)
    assert len(done.backtest.rows) == len(stored.rows)
    page = done.html_path.read_text()
    assert "id='backtest'" in page and "Shown here: the backtest of the model" in page
    assert pd.read_csv(done.csv_path)["origin"].nunique() == FAST.backtest_origins

    # a saved model (no training run to read): the backtest is run on this data, and said so
    folder = training.result.scorer.save(store / "saved")
    local = compare(
        CompareRequest(data=small_sim_path, model=str(folder), out=store / "r2" / "c.html",
                       learned=False),
        progress := Recorded(),
    )  # fmt: skip
    assert local.backtest_source.startswith("a backtest run now on this data")
    assert len(local.backtest.origins) == FAST.backtest_origins
    assert (
        sum(line.startswith("backtest origin") for line in progress.said)
        == 2 * FAST.backtest_origins
    )


def test_a_bad_dataset_is_a_user_error_and_nothing_is_registered(store, tmp_path):
    from mlflow import MlflowClient

    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "leads.csv").write_text("lead_id,created_at,source\nL1,yesterday,web\n")
    config = replace(TrainRequest(data=tmp_path / "crm"), config=FAST)
    with pytest.raises(LeadscoreError, match="created_at"):
        train(config)
    names = {m.name for m in MlflowClient().search_registered_models()}
    assert "lead-scoring" not in names


def test_with_parts_leaves_the_scorer_as_it_was(trained, served_rules):
    scorer = trained.scorer
    packed = scorer.with_parts(rules=served_rules)
    assert packed.rules is served_rules and scorer.rules is None
    assert packed.booster is scorer.booster  # the fitted model is shared, not copied
    with pytest.raises(TypeError, match="booster"):
        scorer.with_parts(booster=None)
