"""Addresses of pages in the MLflow UI, as the testbed hands them out.

MLflow 3's UI opens an experiment on its GenAI view (traces, prompts) unless the address
asks for the "Model training" view, which has the runs table, metrics and artifacts; the
choice is the `workflowType` query parameter (or the sidebar switch, remembered by the
browser). The experiments also carry the `mlflow.experimentKind` tag (see
services/tracking.py), which other MLflow 3 releases read instead.
"""

from __future__ import annotations

MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def experiment_url(ui: str, experiment_id: int | str) -> str:
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}?{MODEL_TRAINING_VIEW}"


def run_url(ui: str, experiment_id: int | str, run_id: str) -> str:
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING_VIEW}"
