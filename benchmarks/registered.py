"""A registered champion for the serving benchmarks (`serving.py`, `events.py`): a simulated
CRM, a model trained on it and registered in an MLflow store in a temporary folder."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Registered:
    folder: Path  # the temporary folder: data, MLflow store, serving folder
    uri: str  # the MLflow tracking URI
    dataset: Any  # crm.loading.Dataset
    result: Any  # training.fit.FitResult


def registered_model(n_leads: int, seed: int = 9) -> Registered:
    import mlflow
    from mlflow import MlflowClient

    from crm.loading import load_dataset
    from crm.payloads import lead_payloads
    from features.batch import build_training_set
    from simulation import SimulationConfig, simulate_apart
    from training.config import TrainConfig
    from training.fit import fit_models
    from training.tracking import log_and_register

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
