"""Splits, model fitting, calibration, evaluation, MLflow tracking and registry."""
