"""Logging to the active MLflow run."""
