"""`leadscore models migrate`: a model logged by the 0.1 layout (its entry file imports
`features.mlflow_model`, which no longer exists) is re-logged with the current entry point
and predicts exactly as it did when saved."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from leadscore.crm.errors import LeadscoreError
from leadscore.training.registry import CHAMPION, PREVIOUS_CHAMPION, STATE
from leadscore.training.tracking import migrate_model
from tests.cli.test_cli import runner
from tests.training.conftest import sqlite_store

LEGACY = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_model"
NAME = "legacy-scoring"


def _expected() -> pd.DataFrame:
    return pd.read_json(LEGACY / "expected.json", orient="records", dtype=False)


def _predict(uri: str) -> pd.DataFrame:
    example = Model.load(str(LEGACY / "model")).load_input_example(str(LEGACY / "model"))
    return mlflow.pyfunc.load_model(uri).predict(example)


def test_a_legacy_model_migrates_and_predicts_as_saved(tmp_path):
    entry = (LEGACY / "model" / "pyfunc_entry.py").read_text()
    assert "from features.mlflow_model import" in entry
    with pytest.raises(MlflowException, match="features.mlflow_model"):
        mlflow.pyfunc.load_model(str(LEGACY / "model"))  # why the migration exists

    with sqlite_store(tmp_path):
        MlflowClient().create_experiment(
            "leadscore-migrations", artifact_location=str(tmp_path / "artifacts")
        )
        first = migrate_model(str(LEGACY / "model"), NAME)
        assert first.version == "1" and first.aliases == ()
        got = _predict(f"models:/{NAME}/1")
        expected = _expected()
        assert list(got.columns) == list(expected.columns)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)

        # A registered version with aliases: they move to the new version, champion through
        # the alias history.
        client = MlflowClient()
        client.set_registered_model_alias(NAME, CHAMPION, "1")
        client.set_model_version_tag(NAME, "1", "test_roc_auc", "0.81")
        result = runner.invoke(
            __import__("leadscore.cli", fromlist=["app"]).app,
            ["models", "migrate", f"models:/{NAME}/1", "--model-name", NAME],
        )
        assert result.exit_code == 0, result.output
        assert f"{NAME} v2" in result.output and "champion moved" in result.output
        version = client.get_model_version(NAME, "2")
        assert version.tags["test_roc_auc"] == "0.81" and version.tags[STATE] == "ready"
        assert version.tags[PREVIOUS_CHAMPION] == "1"
        assert str(client.get_registered_model(NAME).aliases[CHAMPION]) == "2"
        pd.testing.assert_frame_equal(
            _predict(f"models:/{NAME}@champion"), expected, check_dtype=False, rtol=1e-12
        )


def test_something_that_is_not_a_model_is_refused(tmp_path):
    with sqlite_store(tmp_path):
        with pytest.raises(LeadscoreError, match="not a saved lead scorer"):
            migrate_model(str(tmp_path), NAME)
        with pytest.raises(LeadscoreError, match="no such registered version"):
            migrate_model(f"models:/{NAME}/9", NAME)
        assert MlflowClient().search_registered_models() == []


BARE = Path(__file__).resolve().parent.parent / "fixtures" / "bare_names_model"


def test_a_model_of_the_bare_names_layout_moves_into_the_namespace(tmp_path):
    """Logged before the one `leadscore` namespace: its code shipped as bare `stats/`,
    `features/`, ... (which a user's own `stats.py` shadows). Migrated, it carries one
    `leadscore/` folder and predicts exactly as it did when saved."""
    code = BARE / "model" / "code"
    assert sorted(p.name for p in code.iterdir()) == [
        "crm", "features", "rules", "scoring", "stats",
    ]  # fmt: skip
    assert "from scoring.mlflow_model import" in (BARE / "model" / "pyfunc_entry.py").read_text()
    expected = pd.read_json(BARE / "expected.json", orient="records", dtype=False)
    with sqlite_store(tmp_path):
        MlflowClient().create_experiment(
            "leadscore-migrations", artifact_location=str(tmp_path / "artifacts")
        )
        moved = migrate_model(str(BARE / "model"), "bare-names")
        local = Path(mlflow.artifacts.download_artifacts(f"models:/bare-names/{moved.version}"))
        assert sorted(p.name for p in (local / "code").iterdir()) == ["leadscore"]
        entry = (local / "pyfunc_entry.py").read_text()
        assert "from leadscore.scoring.mlflow_model import" in entry
        example = Model.load(str(BARE / "model")).load_input_example(str(BARE / "model"))
        got = mlflow.pyfunc.load_model(f"models:/bare-names/{moved.version}").predict(example)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)


def test_migrate_all_moves_every_old_version_and_leaves_current_ones(tmp_path):
    """A registry holding a version of the bare-names layout (the champion) and one of the
    current layout: `leadscore models migrate --all` re-logs the old one only, the champion
    moves to its migration, and a second pass has nothing left to do."""
    from leadscore.cli import app
    from leadscore.training.tracking import runs_current_code

    assert not runs_current_code(BARE / "model")
    with sqlite_store(tmp_path):
        client = MlflowClient()
        client.create_experiment(
            "leadscore-migrations", artifact_location=str(tmp_path / "artifacts")
        )
        client.create_registered_model("mixed")
        old = client.create_model_version("mixed", str(BARE / "model"))
        client.set_registered_model_alias("mixed", CHAMPION, old.version)
        current = migrate_model(str(LEGACY / "model"), "mixed")  # the current layout, v2
        local = Path(mlflow.artifacts.download_artifacts(f"models:/mixed/{current.version}"))
        assert runs_current_code(local)

        result = runner.invoke(app, ["models", "migrate", "--all", "--model-name", "mixed"])
        assert result.exit_code == 0, result.output
        assert result.stdout.count("->") == 1 and "models:/mixed/1 -> mixed v3" in result.stdout
        assert "champion moved" in result.stdout
        assert str(client.get_registered_model("mixed").aliases[CHAMPION]) == "3"
        again = runner.invoke(app, ["models", "migrate", "--all", "--model-name", "mixed"])
        assert again.exit_code == 0 and "nothing to migrate" in again.stdout
        neither = runner.invoke(app, ["models", "migrate", "--model-name", "mixed"])
        assert neither.exit_code == 1 and "--all" in neither.output
