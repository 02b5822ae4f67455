"""Load the scorer the service runs: the registry's alias, or a saved scorer folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leadscore.crm.errors import LeadscoreError
from leadscore.scoring.model_ref import DEFAULT_MODEL_NAME
from leadscore.scoring.scorer import LeadScorer
from leadscore.serving.config import ServeConfig


def check_store(uri: str) -> None:
    """Refuse a local tracking store that does not exist (a missing sqlite file, an empty
    one, a missing mlruns folder) before MLflow is asked: MLflow would create it and write
    its schema, and several workers would race to do so."""
    from leadscore.crm.secrets import masked_url

    path = None
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        missing = not path.is_file() or path.stat().st_size == 0
    elif uri.startswith("file:") or (":" not in uri.split("/", 1)[0] and uri != "databricks"):
        # a local folder (./mlruns, /abs/mlruns); "databricks" and other schemes are remote
        path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        missing = not path.is_dir()
    if path is not None and missing:
        raise LeadscoreError(
            f"no MLflow store at {masked_url(uri)}: train a model with `leadscore train` in "
            "this folder first, or point MLFLOW_TRACKING_URI at the store that has it "
            "(nothing was created)"
        )


def load_model(config: ServeConfig) -> tuple[LeadScorer, dict[str, Any]]:
    """The scorer and its metadata; a LeadscoreError with a clear message when none is found."""
    if config.scorer_path:
        scorer = LeadScorer.load(config.scorer_path)
        meta = {
            "name": config.model_name,
            "version": scorer.info.get("mlflow_version", "local"),
            "alias": None,
            "source": config.scorer_path,
        }
    else:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from leadscore.crm.secrets import masked_url
        from leadscore.scoring.mlflow_model import load_registered_scorer

        check_store(mlflow.get_tracking_uri())
        client = MlflowClient()
        try:
            version = (
                client.get_model_version(config.model_name, config.model_version)
                if config.model_version
                else client.get_model_version_by_alias(config.model_name, config.model_alias)
            )
        except MlflowException as exc:
            raise LeadscoreError(
                f"no model {config.model_name}@{config.model_alias} in the MLflow registry at {masked_url(mlflow.get_tracking_uri())}: "
                "train one with `leadscore train` (or set MLFLOW_TRACKING_URI / LEADSCORE_MODEL_ALIAS)"
            ) from exc
        scorer = load_registered_scorer(config.model_name, version.version)
        run = client.get_run(version.run_id) if version.run_id else None
        meta = {
            "name": config.model_name,
            "version": str(version.version),
            "alias": config.model_alias,
            # The version the alias pointed at when the server started (a promotion since
            # moves it at the next reload, for every worker at once).
            "pinned": bool(config.model_version),
            "source": masked_url(mlflow.get_tracking_uri()),
            "trained_at": _iso(run.info.start_time) if run else None,
            "run_id": version.run_id,
            "training_metrics": {
                k: v for k, v in (run.data.metrics if run else {}).items() if k.endswith("_model")
            },
            "test_window": version.tags.get("test_window"),
        }
    return scorer, {**meta, **_scorer_meta(scorer)}


def _scorer_meta(scorer: LeadScorer) -> dict[str, Any]:
    """What the scorer itself tells about the model, wherever it was loaded from."""
    return {
        "feature_set_version": scorer.spec.version,
        "features": len(scorer.features),
        "activity_types": scorer.spec.activity_types,
        "calibration": scorer.calibrator.method,
        "interval": "venn-abers" if scorer.interval is not None else None,
        "interval_review_width": scorer.review_width if scorer.interval is not None else None,
        "oldest_trained_age_days": scorer.oldest_trained_age_days,
        "past_trained_ages": scorer.age_hazard.describe() if scorer.spec.history else None,
        "trained_to": scorer.info.get("trained_to"),
        "grades": scorer.grades.model_dump(),
        "rules_version": scorer.rules.config.version if scorer.rules is not None else None,
        "mql_threshold": scorer.rules.config.mql_threshold if scorer.rules is not None else None,
        "account_model": scorer.accounts is not None,
        "segment_champions": sorted(scorer.segment_champions),
    }


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def load_packed(model) -> tuple[LeadScorer, dict[str, Any]]:
    """The scorer packed into a built bento (a BentoML model made by `leadscore bento`)."""
    stored = getattr(
        model, "stored", model
    )  # a BentoModel declaration, or the resolved Model at run time
    scorer = LeadScorer.load(stored.path)
    labels = dict(stored.info.labels)
    meta = {
        "name": labels.get("mlflow_model", DEFAULT_MODEL_NAME),
        "version": labels.get("mlflow_version", "packed"),
        "alias": labels.get("mlflow_alias"),
        "source": f"bento model {stored.tag}",
    }
    return scorer, {**meta, **_scorer_meta(scorer)}


def packed_model_tag(env: Mapping[str, str], service_file: Path) -> str | None:
    """The BentoML model packed into the bento this service runs from, if any.

    `LEADSCORE_PACKED_MODEL` (set by bentofile.yaml in a container) wins. `bentoml serve
    <bento>` on a machine does not apply the bento's env vars, so the bento's own record
    is read too: the service runs from `<bento>/src/leadscore/serving/service.py`, under
    `<bento>/bento.yaml`, which lists the models packed for each service.
    """
    if env.get("LEADSCORE_PACKED_MODEL"):
        return env["LEADSCORE_PACKED_MODEL"]
    here = service_file.resolve()
    record = here.parents[3] / "bento.yaml" if len(here.parents) > 3 else None
    if record is None or not record.is_file() or here.parents[2].name != "src":
        return None
    import yaml

    bento = yaml.safe_load(record.read_text()) or {}
    for service in bento.get("services") or ():
        if service.get("name") == bento.get("entry_service"):
            tags = [m["tag"] for m in service.get("models") or () if m.get("tag")]
            return str(tags[0]) if tags else None
    return None


def export_to_bentoml(name: str, alias: str) -> str:
    """Copy a registered scorer into BentoML's model store (for `bentoml build`); its tag."""
    import bentoml
    from mlflow import MlflowClient

    from leadscore.scoring.mlflow_model import load_registered_scorer

    version = MlflowClient().get_model_version_by_alias(name, alias)
    scorer = load_registered_scorer(name, version.version)
    labels = {
        "mlflow_model": name,
        "mlflow_version": str(version.version),
        "mlflow_alias": alias,
        "feature_set_version": scorer.spec.version,
    }
    with bentoml.models.create(name=name, labels=labels) as model:
        scorer.save(model.path)
    return str(model.tag)
