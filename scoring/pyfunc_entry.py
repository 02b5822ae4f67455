"""Models-from-code entry point that MLflow runs when it loads a leadscore model.

Logged by path (not pickled): loading runs this file, which declares the model class.
"""

from mlflow.models import set_model

from leadscore.scoring.mlflow_model import LeadScoringModel

set_model(LeadScoringModel())
