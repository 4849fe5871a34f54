"""MLflow model registry helpers."""
