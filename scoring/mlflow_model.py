"""The MLflow pyfunc model: raw lead payloads in, probability, score, grade and reasons out.

Input: a DataFrame with a `lead` column (one JSON payload per row, as the CRM sends it) and
an optional `as_of` column (ISO-8601; empty: the payload's own `as_of`).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.secrets import masked_url
from leadscore.scoring.model_ref import LOCAL_VERSION, ModelRef
from leadscore.scoring.scorer import LeadScorer

SCORER_ARTIFACT = "scorer"


class LeadScoringModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.scorer = LeadScorer.load(context.artifacts[SCORER_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        leads = [json.loads(v) if isinstance(v, str) else v for v in model_input["lead"]]
        as_of = model_input["as_of"] if "as_of" in model_input.columns else [None] * len(leads)
        # One batch: score_leads reads each lead's own as_of when none is given for all.
        dated = [
            {**lead, "as_of": when} if isinstance(when, str) and when else lead
            for lead, when in zip(leads, as_of, strict=True)
        ]
        rows = [
            {**scored, "reasons": json.dumps(scored["reasons"])}
            for scored in self.scorer.score_leads(dated, None)
        ]
        columns = ["lead_id", "probability", "score", "grade", "reasons"]
        if self.scorer.interval is not None:
            columns[2:2] = ["p_low", "p_high", "review"]
        if self.scorer.rules is not None:
            columns += ["rule_score", "rule_grade", "mql", "rule_probability"]
        return pd.DataFrame(rows, columns=columns)


def load_registered_scorer(name: str, version_or_alias: str) -> LeadScorer:
    """The LeadScorer inside a registered model version (`3`) or alias (`champion`)."""
    uri = (
        f"models:/{name}/{version_or_alias}"
        if str(version_or_alias).isdigit()
        else f"models:/{name}@{version_or_alias}"
    )
    from mlflow.exceptions import MlflowException

    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
    except (MlflowException, OSError) as exc:  # a missing model or alias, a store down
        raise LeadscoreError(
            f"{uri}: not found in the MLflow registry at {masked_url(mlflow.get_tracking_uri())} "
            f"({type(exc).__name__})"
        ) from exc
    return LeadScorer.load(Path(local) / "artifacts" / SCORER_ARTIFACT)


def load_scorer(ref: str | Path) -> LeadScorer:
    """A scorer from `models:/<name>@<alias>`, `models:/<name>/<version>` or a saved folder."""
    text = str(ref)
    if text.startswith("models:/"):
        rest = text[len("models:/") :]
        name, sep, alias = rest.partition("@")
        if not sep:
            name, _, alias = rest.rpartition("/")
        if not name or not alias:
            raise LeadscoreError(
                f"{text}: expected models:/<name>@<alias> or models:/<name>/<version>"
            )
        return load_registered_scorer(name, alias)
    return LeadScorer.load(Path(text))


def model_identity(ref: str | Path) -> ModelRef:
    """The registered name and version of `models:/<name>@<alias>` or
    `models:/<name>/<version>` as the registry resolves it now; a saved folder is its path
    and "local"."""
    text = str(ref)
    if not text.startswith("models:/"):
        return ModelRef(text, LOCAL_VERSION)
    rest = text[len("models:/") :]
    name, sep, alias = rest.partition("@")
    if not sep:
        name, _, version = rest.rpartition("/")
        return ModelRef(name, version)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return ModelRef(name, str(MlflowClient().get_model_version_by_alias(name, alias).version))
    except MlflowException as exc:
        raise LeadscoreError(
            f"{text}: not found in the MLflow registry at {masked_url(mlflow.get_tracking_uri())}"
        ) from exc


def load_pinned_scorer(ref: str | Path) -> tuple[LeadScorer, ModelRef]:
    """The scorer of a model reference and which model it is: an alias resolved once and
    the version loaded by number, so that what is reported as the scoring model is what
    scored."""
    which = model_identity(ref)
    pinned = f"models:/{which.name}/{which.version}" if str(ref).startswith("models:/") else ref
    return load_scorer(pinned), which
