from __future__ import annotations

from contextlib import contextmanager

from leadscore.training.config import LightGBMParams, TrainConfig

# The tests' one training config: fewer bootstrap resamples, backtest origins and rounds
# than the defaults (the refit kept): the same code, faster.
FAST = TrainConfig(
    bootstrap=30,
    backtest_origins=2,
    lightgbm=LightGBMParams(max_rounds=300, early_stopping_rounds=30),
)


def fast_yaml(**extra) -> str:
    """FAST as the YAML a command reads (`--config`), with `extra` keys on top."""
    import yaml

    values = FAST.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump({**values, **extra}, sort_keys=False)


def registration_options(dataset, df, result, *, name: str, experiment: str, source="test"):
    """The options `leadscore train` gives a registration, with the FAST config; example
    payloads from the test rows, the champion's features from the same dataset."""
    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.batch import build_training_set

    ids = result.test["lead_id"].drop_duplicates().head(2).tolist()
    return {
        "config": FAST.model_copy(update={"model_name": name, "experiment": experiment}),
        "feature_config": {},
        "training_set": df,
        "source": source,
        "example_payloads": lead_payloads(dataset, ids, iso=True),
        "features_for": lambda spec: build_training_set(dataset, spec=spec)[0],
    }


def register(result, dataset, df, *, name: str, experiment: str, source: str = "test", **kwargs):
    """`log_and_register` as `leadscore train` calls it (`registration_options`)."""
    from leadscore.training.tracking import log_and_register

    options = registration_options(
        dataset, df, result, name=name, experiment=experiment, source=source
    )
    return log_and_register(result, **options, **kwargs)


@contextmanager
def sqlite_store(root):
    """MLflow pointed at a throwaway sqlite store (tracking and registry) in `root`, and
    back at the previous URI afterwards."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        yield root
    finally:
        mlflow.set_tracking_uri(previous)
