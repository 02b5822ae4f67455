"""Legacy import path, kept so that models registered before the 0.2 layout still load.

Such a model's logged entry file runs `from features.mlflow_model import LeadScoringModel`.
The class now lives in `scoring.mlflow_model`; this alias resolves it on first use. It is
the one import from `features` up to `scoring`, listed as such in the layout test. New code
imports `scoring.mlflow_model`.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from scoring import mlflow_model

    return getattr(mlflow_model, name)
