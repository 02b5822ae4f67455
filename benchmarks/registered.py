"""A registered champion for the serving benchmarks (`serving.py`, `events.py`): a simulated
CRM, a model trained on it with the default points rules packed next to it (as `leadscore
train` packs them), registered in an MLflow store in a temporary folder."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Registered:
    folder: Path  # the temporary folder: data, MLflow store, serving folder
    uri: str  # the MLflow tracking URI
    dataset: Any  # leadscore.crm.dataset.Dataset
    result: Any  # leadscore.training.fit.FitResult


def registered_model(n_leads: int, seed: int = 9) -> Registered:
    import mlflow
    from mlflow import MlflowClient

    from leadscore.crm.loading import load_dataset
    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.batch import build_training_set
    from leadscore.rules.config import load_rules
    from leadscore.simulation import SimulationConfig, simulate_apart
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models, fit_rules
    from leadscore.training.tracking import log_and_register

    tmp = Path(tempfile.mkdtemp(prefix="leadscore-bench-"))
    data = tmp / "crm"
    # In a child process: its memory does not count in this one's peak RSS.
    simulate_apart(SimulationConfig(n_leads=n_leads, seed=seed), data)
    ds = load_dataset(data)
    df, spec, _ = build_training_set(ds)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    MlflowClient().create_experiment("bench", artifact_location=str(tmp / "artifacts"))
    config = TrainConfig(bootstrap=0, experiment="bench")
    result = fit_models(df, spec, config)
    # marketing's points rules packed next to the model, as `leadscore train` packs them
    result.scorer.rules = fit_rules(load_rules("conf/rules.yaml"), ds, df[result.split.validation])
    ids = result.test["lead_id"].drop_duplicates().head(2).tolist()
    log_and_register(
        result,
        config=config,
        feature_config={},
        training_set=df,
        source="bench",
        example_payloads=lead_payloads(ds, ids, iso=True),
        features_for=lambda s: build_training_set(ds, spec=s)[0],
    )
    return Registered(tmp, uri, ds, result)
