"""The MLflow tracking server as the experiments service sees it."""

from __future__ import annotations

import functools

from dioptra.services.errors import BadGateway, BadRequest


class Tracking:
    """``tracking_uri`` is what workers and jobs use; ``local_uri`` (default: the same) is
    how this server reaches it (its own MLflow through its own port, say)."""

    def __init__(self, tracking_uri: str, local_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.local_uri = local_uri or tracking_uri

    @functools.cached_property
    def client(self):
        # Imported here: mlflow takes seconds to import and only this needs it.
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.local_uri)

    def create_experiment(self, name: str) -> int:
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.create_experiment(name))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_ALREADY_EXISTS":
                raise BadRequest(
                    "The experiment name on the registration form already exists on the "
                    "MLFlow Tracking backend. Please select another and resubmit."
                ) from exc
            raise BadGateway(
                "Experiment registration to the MLFlow Tracking backend has failed. "
                f"If this happens more than once, please file a bug report. ({exc.message})"
            ) from exc
        except OSError as exc:
            raise BadGateway(f"The MLflow Tracking backend cannot be reached: {exc}") from exc

    def rename_experiment(self, experiment_id: int, new_name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.rename_experiment(str(experiment_id), new_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise BadGateway(
                    "The requested experiment exists in our database but cannot be found "
                    "on the MLFlow Tracking backend. If this happens more than once, "
                    "please file a bug report."
                ) from exc
            raise BadRequest(
                f"The MLflow Tracking backend refused the new name: {exc.message}"
            ) from exc

    def delete_experiment(self, experiment_id: int, name: str) -> None:
        """Delete in MLflow, first renaming it so that the name can be registered again."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.rename_experiment(str(experiment_id), f"{name} (deleted {experiment_id})")
            self.client.delete_experiment(str(experiment_id))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise BadGateway(f"MLflow refused to delete the experiment: {exc.message}") from exc

    def fail_run(self, run_id: str) -> bool:
        """End a run its worker can no longer end (the job was failed for it) as FAILED;
        a run that has ended already is left as it is. Returns whether it was ended."""
        run = self.client.get_run(run_id)
        if run.info.status not in ("RUNNING", "SCHEDULED"):
            return False
        self.client.set_terminated(run_id, "FAILED")
        return True
