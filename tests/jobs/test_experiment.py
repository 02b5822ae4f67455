"""The experiment's jobs in process: a simulated world read out against its truth, the
mistakes refused in one line, and batch scoring handing an experiment's leads off by their
arms, each event naming its experiment and arm."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.experiment.assignment import MODEL, RULES, in_model_arm
from leadscore.experiment.records import ExperimentStore
from leadscore.jobs import ScoreRequest, score
from leadscore.jobs.experiment import (
    ReportRequest,
    SimulateRequest,
    StartRequest,
    list_experiments,
    report,
    simulate,
    start,
    stop,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment-world") / "crm"
    return simulate(SimulateRequest(out=out, leads=3000, seed=4, name="w1"))


def test_a_simulated_experiment_is_read_out_against_its_truth(world, tmp_path):
    truth = json.loads((world.out / "truth" / "experiment.json").read_text())
    assert truth["name"] == "w1" and truth == world.truth
    assert truth["effect"] > 0  # in this world the model's hand-offs win more
    done = report(ReportRequest(name="w1", data=world.out, out=tmp_path / "w1.html"))
    r = done.readout
    assert r.low <= r.effect <= r.high and r.fixed_low <= r.effect <= r.fixed_high
    rules, model = r.arms
    assert rules.leads + model.leads == 3000
    # the lines are matched: both arms hand off about the same share of their leads
    assert abs(rules.handoff_rate - model.handoff_rate) < 0.05 and rules.handoffs > 0
    saved = json.loads(done.json_path.read_text())
    assert saved["effect"] == pytest.approx(r.effect) and {"low", "high"} <= saved.keys()
    assert [e.name for e in list_experiments(world.out)] == ["w1"]


def test_an_a_a_world_has_no_true_effect(tmp_path):
    done = simulate(SimulateRequest(out=tmp_path / "aa", leads=1000, seed=1, name="aa", aa=True))
    assert done.truth["effect"] == 0.0 and done.experiment.aa


def test_mistakes_are_one_clear_line(world, tmp_path):
    history = str(tmp_path / "h.duckdb")
    cases = [
        (lambda: report(ReportRequest(name="nope", data=world.out)), "no experiment 'nope'"),
        (lambda: start(StartRequest(name="w1", data=world.out, line=0.2)), "exists already"),
        (lambda: start(StartRequest(name="x", history=history)), "no scored leads"),
        (lambda: start(StartRequest(name="x", history=history, share=1.0, line=0.2)), "share"),
        (lambda: start(StartRequest(name="x")), "give --data"),
        (lambda: stop("nope", history=history), "no experiment 'nope'"),
        (lambda: report(ReportRequest(name="w1", data=world.out, as_of="2025-07-15")),
         "no matured lead in either arm yet"),
        (lambda: simulate(SimulateRequest(out=world.out, leads=200)), "not empty"),
    ]  # fmt: skip
    for action, message in cases:
        with pytest.raises(LeadscoreError, match=message) as caught:
            action()
        assert "\n" not in str(caught.value)


def test_start_and_stop_with_the_line_given(tmp_path):
    history = str(tmp_path / "h.duckdb")
    done = start(StartRequest(name="x", history=history, line=0.25, at="2026-01-01"))
    assert done.matched is None and done.experiment.line == 0.25
    stopped = stop("x", history=history, at="2026-02-01")
    assert stopped.stopped_at == pd.Timestamp("2026-02-01", tz="UTC")


def test_batch_hand_offs_follow_each_arm_and_name_it(tmp_path, small_sim_path, ruled, trained):
    """Two runs: the first without an experiment (the history the line is matched on), the
    second with every lead in the experiment: the crossings are exactly the leads above
    their arm's line now and not at the first run, and each event names its arm."""
    folder = ruled.save(tmp_path / "scorer")
    history = str(tmp_path / "history.duckdb")
    first_at = trained.test["as_of"].min()
    when = trained.test["as_of"].max()
    first = score(ScoreRequest(data=small_sim_path, out=tmp_path / "s1.parquet",
                               model=str(folder), as_of=first_at.isoformat(), history=history))  # fmt: skip
    assert all(e["experiment"] is None and e["arm"] is None for e in first.run.events)
    started = start(StartRequest(name="batch", history=history, at="2000-01-01"))
    m = started.matched
    assert m.leads > 0 and abs(m.model_rate - m.rules_rate) < 0.05
    second = score(ScoreRequest(data=small_sim_path, out=tmp_path / "s2.parquet",
                                model=str(folder), as_of=when.isoformat(), history=history))  # fmt: skip
    frame = second.run.scores.set_index("lead_id")
    model = pd.Series(in_model_arm("batch", frame.index, 0.5), index=frame.index)
    above = np.where(model, frame["probability"] >= m.line, frame["mql"].astype(bool))
    prev = first.run.scores.set_index("lead_id")
    prev_model = model.reindex(prev.index).fillna(False).astype(bool)
    was = pd.Series(
        np.where(prev_model, prev["probability"] >= m.line, prev["mql"].astype(bool)),
        index=prev.index,
    ).reindex(frame.index, fill_value=False)
    expected = set(frame.index[above & ~was.to_numpy()])
    crossings = [e for e in second.run.events if "crossed_handoff_line" in e["triggers"]]
    assert {e["lead_id"] for e in crossings} == expected and expected
    for e in second.run.events:
        assert e["experiment"] == "batch"
        assert e["arm"] == (MODEL if model[e["lead_id"]] else RULES)
    written = [json.loads(x) for x in second.events_path.read_text().splitlines()]
    assert {(e["lead_id"], e["arm"]) for e in written} == {
        (e["lead_id"], e["arm"]) for e in second.run.events
    }
    kept = ExperimentStore(history).handoffs("batch")
    assert set(kept["lead_id"]) == expected
    assert "experiment batch" in second.line.describe()


def test_the_disagreements_design_counts_only_the_leads_the_policies_disagree_on(tmp_path):
    done = simulate(SimulateRequest(out=tmp_path / "d", leads=3000, seed=2, name="d",
                                    design="disagreements"))  # fmt: skip
    assert done.experiment.design == "disagreements"
    share = done.truth["disagreement_share"]
    assert 0 < share < 0.5 and done.truth["effect_disagreements"] is not None
    r = report(ReportRequest(name="d", data=done.out)).readout
    counted = sum(a.leads for a in r.arms)
    assert r.enrolled == 3000 and counted == pytest.approx(share * 3000, abs=1)
    assert r.low <= r.effect <= r.high and r.design == "disagreements"
    with pytest.raises(LeadscoreError, match="--design 'some': one of all, disagreements"):
        start(StartRequest(name="x", data=done.out, design="some"))
    with pytest.raises(LeadscoreError, match="experiment design 'some'"):
        simulate(SimulateRequest(out=tmp_path / "e", leads=200, design="some"))
    assert not (tmp_path / "e").exists()


def test_the_commands_print_one_line_for_a_mistake(world, tmp_path):
    from typer.testing import CliRunner

    from leadscore.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["experiment", "list", "--data", str(world.out)])
    assert listed.exit_code == 0 and "w1: from" in listed.output
    shown = runner.invoke(app, ["experiment", "report", "w1", "--data", str(world.out), "--json"])
    assert shown.exit_code == 0 and {"effect", "low", "high"} <= json.loads(shown.stdout).keys()
    for args, message in (
        (["report", "nope", "--data", str(world.out)], "no experiment 'nope'"),
        (["start", "w1", "--data", str(world.out)], "exists already"),
        (["report", "w1", "--data", str(world.out), "--as-of", "2025-07-01"], "no matured lead"),
    ):
        done = runner.invoke(app, ["experiment", *args])
        lines = [x for x in done.output.splitlines() if x.strip()]
        assert done.exit_code == 1 and len(lines) == 1 and message in lines[0], done.output
