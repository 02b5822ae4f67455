from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from tests.conftest import DEALS, LEADS, write_dataset
from tests.training.conftest import fast_yaml, sqlite_store

runner = CliRunner()


def _leadscore(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Run the real console entry point (with its error handling) in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "leadscore", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "validate", "simulate", "features", "train", "models", "promote", "demo", "compare", "rules",
        "import", "score", "history", "monitor", "retrain", "rollback",
    ):  # fmt: skip
        assert command in result.output


def _commands(command, path=("leadscore",)):
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, (*path, name))


def test_every_command_and_option_is_documented_in_whole_sentences():
    """Help texts are one paragraph per line: click keeps a docstring's hard wraps."""
    import typer

    seen = 0
    for path, command in _commands(typer.main.get_command(app)):
        seen += 1
        assert command.help and "\n" not in command.help.replace("\n\n", ""), path
        for param in command.params:
            assert getattr(param, "help", None), (path, param.name)
            assert "\n" not in param.help, (path, param.name)
    assert seen > 20


def test_version_and_workflow_order():
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("leadscore 0.")
    listed = runner.invoke(app, ["--help"], terminal_width=200).output
    order = ["simulate", "validate", "features", "train", "compare", "models", "serve", "score",
             "monitor", "retrain", "demo"]  # fmt: skip
    where = [listed.index(f"│ {name} ") for name in order]
    assert where == sorted(where)


def test_validate_prints_a_summary(good_dataset):
    result = runner.invoke(app, ["validate", str(good_dataset)])
    assert result.exit_code == 0, result.output
    assert "3 leads" in result.output and "win rate 33.3%" in result.output
    assert "page_view" in result.output and "won" in result.output


def test_validate_json(good_dataset):
    result = runner.invoke(app, ["validate", str(good_dataset), "--json"])
    summary = json.loads(result.output)
    assert summary["leads"] == 3
    assert summary["deals_by_status"] == {"won": 1, "open": 1}
    assert summary["leads_by_source"]["unknown"] == 1


def test_validate_error_is_one_clear_line_and_exit_1(tmp_path):
    folder = write_dataset(tmp_path / "bad", leads=LEADS.replace("L3,", "L1,"), deals=DEALS)
    result = _leadscore("validate", str(folder))
    assert result.returncode == 1
    assert "leads.csv, column 'lead_id', rows 1, 3: duplicate lead_id" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_validate_can_drop_early_events(tmp_path):
    acts = "lead_id,occurred_at,activity_type\nL3,2025-01-02T00:00:00Z,call\n"
    folder = write_dataset(tmp_path / "d", leads=LEADS, activities=acts)
    assert _leadscore("validate", str(folder)).returncode == 1
    result = runner.invoke(app, ["validate", str(folder), "--early-events", "drop"])
    assert result.exit_code == 0 and "dropped 1 activities before lead created" in result.output


def test_simulate_then_validate(tmp_path):
    out = tmp_path / "crm"
    result = runner.invoke(
        app, ["simulate", "--out", str(out), "--leads", "300", "--seed", "1", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 300 leads" in result.output
    assert {"leads.csv", "activities.csv", "deals.csv", "truth.csv", "dataset.yaml"} <= {
        p.name for p in out.iterdir()
    }
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0


def test_simulate_bad_options_are_user_errors(tmp_path):
    result = _leadscore("simulate", "--out", str(tmp_path / "x"), "--start", "someday")
    assert result.returncode == 1 and "start must be a date" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_demo_runs_end_to_end(tmp_path):
    """The demo in its own folder and MLflow store (MLflow's default: mlflow.db in the cwd),
    the console script itself; the tests' fast training config as the folder's conf/ (every
    command reads conf/train.yaml of its working folder first)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "train.yaml").write_text(fast_yaml())
    result = _leadscore(
        "demo", "--out", "demo", "--leads", "3000", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": ""}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3,000 leads" in result.stdout and "win rate" in result.stdout
    assert "snapshots" in result.stdout and (tmp_path / "demo" / "training_set.parquet").is_file()
    assert "oracle" in result.stdout and "registered lead-scoring v1 (champion" in result.stdout
    # B2B: the simulated CRM has buying groups, and the run scores accounts too
    assert "accounts: out-of-time test" in result.stdout and "account model" in result.stdout
    assert (tmp_path / "mlflow.db").is_file()
    # it ends with the marketing report: path and headline numbers
    tail = result.stdout[result.stdout.index("the marketing report") :]
    assert "report: demo/reports/compare.html" in tail and "Points rules" in tail
    assert (tmp_path / "demo" / "reports" / "compare.csv").is_file()
    assert "rules:" in result.stdout and "points, grade" in result.stdout  # served rule scores
    # and a week of daily scoring of the open pipeline, with trends once history builds up
    week = result.stdout[result.stdout.index("a simulated week") :]
    days = [line for line in week.splitlines() if "open leads; grade A" in line]
    assert len(days) == 7 and "improving" in days[-1] and "hand-offs" in days[-1]
    scores = pd.read_parquet(tmp_path / "demo" / "scores.parquet")
    assert len(scores) > 0 and (scores["trend"] != "not enough history").any()
    assert (tmp_path / "demo" / "crm" / "score_history.duckdb").is_file()
    assert (tmp_path / "demo" / "scores.events.jsonl").is_file()
    # and the monitoring of that pipeline: a verdict, its page and JSON
    monitoring = result.stdout[result.stdout.index("8. monitoring") :]
    assert any(v in monitoring for v in ("ok:", "watch:", "retrain:"))
    assert (tmp_path / "demo" / "reports" / "monitor.html").is_file()
    assert (tmp_path / "demo" / "reports" / "monitor.json").is_file()


def test_train_models_promote(tmp_path, small_sim_path, monkeypatch):
    """train, models, promote and compare through the app in process (the jobs), on a store
    of their own; the console script itself and its logging are checked in a subprocess."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "train.yaml"
    config.write_text(fast_yaml(experiment="cli-test", model_name="cli-model"))
    with sqlite_store(tmp_path):
        result = runner.invoke(
            app, ["train", "--data", str(small_sim_path), "--config", str(config)]
        )
        assert result.exit_code == 0, result.output[-3000:]
        assert (
            "out-of-time test" in result.stdout
            and "oracle" in result.stdout
            and "cli-model v1 (champion" in result.stdout
        )
        # our output only: MLflow's registration messages are kept quiet
        for noise in ("Successfully registered model", "Created version"):
            assert noise not in result.output, noise
        ages = result.stdout[result.stdout.index("by lead age") :].splitlines()[3:5]
        assert [line.split()[0] for line in ages] == ["0", "3"]  # integer ages, not 0.0
        listing = runner.invoke(app, ["models", "--model-name", "cli-model"])
        assert listing.exit_code == 0 and "champion" in listing.stdout
        assert runner.invoke(app, ["promote", "1", "--model-name", "cli-model"]).exit_code == 0
        missing = runner.invoke(app, ["promote", "9", "--model-name", "cli-model"])
        assert missing.exit_code == 1 and "no version 9" in missing.output

        # the run logged the marketing report, and the model carries the rules
        assert "model vs points rules" in result.stdout
        from mlflow import MlflowClient

        version = MlflowClient().get_model_version_by_alias("cli-model", "champion")
        files = {a.path for a in MlflowClient().list_artifacts(version.run_id, "report")}
        assert files == {"report/compare.html", "report/compare.csv"}
        from leadscore.scoring.mlflow_model import load_scorer

        assert load_scorer("models:/cli-model@champion").rules is not None

        # leadscore compare against the registered champion
        report = tmp_path / "out" / "compare.html"
        compared = runner.invoke(app, [
            "compare", "--data", str(small_sim_path), "--model", "models:/cli-model@champion",
            "--out", str(report), "--no-learned",
        ])  # fmt: skip
        assert compared.exit_code == 0, compared.output[-2000:]
        assert report.is_file() and report.with_suffix(".csv").is_file()
        assert "Points rules" in compared.stdout and "capacity-matched" in compared.stdout
        bad_rules = tmp_path / "bad.yaml"
        bad_rules.write_text("activities:\n  page_view: lots\n")
        refused = runner.invoke(app, [
            "compare", "--data", str(small_sim_path), "--model", "models:/cli-model@champion",
            "--rules", str(bad_rules), "--out", str(tmp_path / "x.html"),
        ])  # fmt: skip
        assert refused.exit_code == 1 and "activities.page_view.points" in refused.output
        assert not (tmp_path / "x.html").exists()
        no_model = runner.invoke(app, [
            "compare", "--data", str(small_sim_path), "--model", "models:/nope@champion",
        ])  # fmt: skip
        assert no_model.exit_code == 1 and "not found in the MLflow registry" in no_model.output

    # the console script: a user's mistake is one line, no traceback; MLflow's INFO lines
    # only with --verbose (here: MLflow creating a fresh store's tables)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    script = _leadscore("compare", "--data", str(small_sim_path), "--model",
                        "models:/cli-model@champion", "--rules", str(bad_rules), "--out",
                        str(tmp_path / "x.html"), cwd=tmp_path, env=env)  # fmt: skip
    assert script.returncode == 1 and "activities.page_view.points" in script.stderr
    assert "Traceback" not in script.stderr and " INFO " not in script.stderr
    fresh = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'fresh.db'}"}
    verbose = _leadscore("--verbose", "models", "--model-name", "x", cwd=tmp_path, env=fresh)
    assert " INFO mlflow.store.db.utils: Creating initial MLflow database tables" in verbose.stderr


def test_rules_suggest_writes_rules_that_load(tmp_path, small_sim_path):
    out = tmp_path / "conf" / "rules.suggested.yaml"
    result = _leadscore("rules", "suggest", "--data", str(small_sim_path), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Out-of-time test ROC AUC" in result.stdout and out.is_file()
    from leadscore.rules.config import load_rules

    rules = load_rules(out)
    assert rules.name == "suggested" and (rules.profile or rules.activities)


def test_train_with_bad_config_is_a_user_error(tmp_path, small_sim_path):
    config = tmp_path / "train.yaml"
    config.write_text("grade_cutoffs: {A: 0.1, B: 0.2, C: 0.3}\n")
    result = _leadscore(
        "train", "--data", str(small_sim_path), "--config", str(config), cwd=tmp_path
    )
    assert (
        result.returncode == 1
        and "grade_cutoffs" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_features_command_writes_a_readable_training_set(small_sim_path, tmp_path):
    from leadscore.features.training_set import read_training_set

    target = tmp_path / "ts.parquet"
    result = runner.invoke(
        app,
        [
            "features",
            "--data",
            str(small_sim_path),
            "--out",
            str(target),
            "--config",
            "conf/features.yaml",
        ],
    )
    assert result.exit_code == 0, result.output
    df, spec, stats = read_training_set(target)
    assert list(df.columns[:3]) == ["lead_id", "as_of", "label"] and len(df) == stats["snapshots"]
    assert spec.feature_names == list(df.columns[3:])


def test_features_errors_write_nothing(tmp_path, good_dataset):
    bad = tmp_path / "bad.yaml"
    bad.write_text("horizon_days: -1\n")
    result = _leadscore(
        "features",
        "--data",
        str(good_dataset),
        "--out",
        str(tmp_path / "x.parquet"),
        "--config",
        str(bad),
    )
    assert result.returncode == 1 and "horizon_days" in result.stderr
    # All snapshots censored: a clear error, not an empty file.
    result = _leadscore(
        "features", "--data", str(good_dataset), "--out", str(tmp_path / "x.parquet")
    )
    assert result.returncode == 1 and "no snapshot survives" in result.stderr
    result = _leadscore(
        "features",
        "--data",
        str(good_dataset),
        "--out",
        str(tmp_path / "x.parquet"),
        "--data-end",
        "someday",
    )
    assert result.returncode == 1 and "--data-end" in result.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_import_csv_writes_a_dataset_and_errors_are_one_line(tmp_path):
    from tests.crm.test_importer import _export

    args = _export(tmp_path)
    mapping = tmp_path / "mapping.yaml"
    common = [
        "import", "csv", "--leads", str(args["leads"]), "--activities", str(args["activities"]),
        "--deals", str(args["deals"]), "--mapping", str(mapping),
    ]  # fmt: skip
    result = _leadscore(*common, "--out", str(tmp_path / "ok"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'Stage' -> status" in result.stdout and "3 leads" in result.stdout
    assert _leadscore("validate", str(tmp_path / "ok")).returncode == 0

    mapping.write_text(mapping.read_text().replace("Close Date", "Closing Date"))
    failed = _leadscore(*common, "--out", str(tmp_path / "bad"))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "deals.columns.closed_at names column 'Closing Date'" in failed.stderr
    assert not (tmp_path / "bad").exists()


XEDUCATION = Path(__file__).resolve().parents[2].parent / "shared/datasets/xeducation/Leads.csv"


@pytest.mark.skipif(not XEDUCATION.is_file(), reason=f"{XEDUCATION} not on this machine")
def test_xeducation_import_train_compare(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'store.db'}"}
    data = tmp_path / "xe"
    imported = _leadscore("import", "xeducation", str(XEDUCATION), "--out", str(data))
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert (
        "9,237 leads" in imported.stdout and "declared leaky: tags, lead_quality" in imported.stdout
    )
    assert "created_at is synthetic" in imported.stdout and "'Lead Number'" in imported.stdout
    # the import writes the marketer's points next to the data: train's default rules
    assert (data / "rules.yaml").read_text() == (
        root / "crm/mappings/xeducation.rules.yaml"
    ).read_text()
    config = tmp_path / "fast.yaml"
    config.write_text(fast_yaml())
    trained = _leadscore(
        "train", "--data", str(data), "--config", str(config), cwd=tmp_path, env=env
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "declared leaky in dataset.yaml: excluded" in trained.stderr
    model_row = next(
        line for line in trained.stdout.splitlines() if line.strip().startswith("model")
    )
    assert float(model_row.split("│")[1].split()[0]) >= 0.87  # out-of-time test ROC AUC
    report = tmp_path / "compare.html"
    compared = _leadscore(
        "compare", "--data", str(data), "--out", str(report), "--no-learned",
        "--config", str(config), cwd=tmp_path, env=env,
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "Points rules" in compared.stdout and report.is_file()
    assert "the rules packed with the model" in report.read_text()  # compare's default


def test_train_on_forty_won_leads_warns_instead_of_failing(tmp_path, forty_won_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "train.yaml"
    config.write_text(fast_yaml(bootstrap=50))
    with sqlite_store(tmp_path):
        result = runner.invoke(
            app, ["train", "--data", str(forty_won_path), "--config", str(config)]
        )
    assert result.exit_code == 0, result.output[-2000:]
    assert "thin data: " in result.stderr and "regularised harder" in result.stderr
    assert "thin data: only" in result.stderr  # the comparison report's warning
    assert (
        "same-day ROC AUC [95% CI]" in result.stdout
        and "registered lead-scoring v1" in result.stdout
    )


def test_rules_come_from_the_flag_the_model_the_dataset_or_a_fitting_default(
    good_dataset, small_sim
):
    from leadscore.crm import load_dataset
    from leadscore.jobs.project import resolve_rules
    from leadscore.rules.config import RulesConfig

    ds = load_dataset(good_dataset)  # industry, employees: conf/rules.yaml does not fit
    found = resolve_rules(None, ds)
    assert found.rules is None and "does not fit this data" in found.absent
    assert "rules init" in found.absent
    packed = RulesConfig(name="packed")
    assert resolve_rules(None, ds, packed=packed).rules is packed
    (good_dataset / "rules.yaml").write_text(
        "name: own\nprofile: {industry: {values: {software: 5}}}\n"
    )
    own = resolve_rules(None, load_dataset(good_dataset))
    assert own.rules.name == "own" and own.source.endswith("rules.yaml")
    assert resolve_rules(None, small_sim).rules.name == "b2b-default"  # it fits the simulator


def test_rules_init_writes_a_template_that_loads(good_dataset, tmp_path):
    out = tmp_path / "rules.yaml"
    result = runner.invoke(app, ["rules", "init", "--data", str(good_dataset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert '"software": 0' in out.read_text() and '"page_view": 0' in out.read_text()
    again = _leadscore("rules", "init", "--data", str(good_dataset), "--out", str(out))
    assert again.returncode == 1 and "exists (pass --overwrite" in again.stderr


def test_compare_splits_the_data_as_the_model_was_trained(small_sim_path, small_set, tmp_path):
    """A model trained with other test and validation periods is compared on its own split
    when --config is not given (it used to fail on the defaults' split, or compare other
    rows)."""
    import pandas as pd

    from leadscore.training.fit import fit_models
    from tests.training.conftest import FAST

    df, spec, _ = small_set
    config = FAST.model_copy(update={"test_days": 30.0, "validation_days": 45.0})
    scorer = fit_models(df, spec, config).scorer
    folder = scorer.save(tmp_path / "scorer")
    result = runner.invoke(
        app,
        ["compare", "--data", str(small_sim_path), "--model", str(folder), "--no-learned",
         "--out", str(tmp_path / "c.html")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "c.csv", parse_dates=["as_of"])
    assert "a backtest run now on this data" in result.output  # a folder has no training run
    rows = rows[rows["origin"] == 0]  # the test period's rows (older origins' follow them)
    assert rows["as_of"].min() >= pd.Timestamp(scorer.info["test_start"])
    assert rows["as_of"].min() < pd.Timestamp(scorer.info["test_start"]) + pd.Timedelta(days=2)


def test_rules_suggest_for_a_model_learns_the_points_compare_shows(
    tmp_path, small_sim_path, small_sim, small_set
):
    """One way to learn points: `rules suggest --model` and `compare` give the same items and
    the same base points, with a model trained on other periods than the config's (its own
    periods are reused), whatever the order of the training set's rows."""
    from leadscore.jobs.project import resolve_rules
    from leadscore.rules.config import load_rules
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models
    from leadscore.training.report import compare
    from tests.training.conftest import FAST

    df, spec, _ = small_set
    config = FAST.model_copy(update={"test_days": 45.0, "validation_days": 50.0})
    fitted = fit_models(df, spec, config)
    folder = fitted.scorer.save(tmp_path / "scorer")
    found = resolve_rules(None, small_sim)
    shuffled = df.sample(frac=1.0, random_state=5).reset_index(drop=True)
    own = TrainConfig.model_validate(fitted.scorer.info["train_config"])
    comp = compare(small_sim, fitted.scorer, found.rules, own, training_set=shuffled)
    out = tmp_path / "suggested.yaml"
    result = runner.invoke(
        app,
        [
            "rules",
            "suggest",
            "--data",
            str(small_sim_path),
            "--model",
            str(folder),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    suggested = load_rules(out)
    assert suggested.base_points == comp.learned_rules.base_points
    assert suggested.model_dump() == comp.learned_rules.model_dump()
    text = out.read_text()
    assert "the periods and features of" in text and "MQL share of" in text
