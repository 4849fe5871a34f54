"""The MLflow tracking server as the experiments service sees it."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

from dioptra.services.errors import BadGateway, BadRequest, ServiceUnavailable

# How long a request that needs MLflow waits for it to finish starting before a 503.
READY_WAIT_S = 90.0
STARTING = ("The MLflow tracking server is still starting (it starts in the background "
            "after the API); try again in a few seconds.")


class Readiness:
    """Whether the MLflow tracking server answers yet: the API answers before its own
    MLflow has started, and whatever needs MLflow waits here, bounded."""

    def __init__(self, ready: bool = False) -> None:
        self._settled = threading.Event()
        self.failure: str | None = None
        if ready:
            self._settled.set()

    def settle(self, failure: str | None = None) -> None:
        self.failure = failure
        self._settled.set()

    @property
    def state(self) -> str:
        if not self._settled.is_set():
            return "starting"
        return "failed" if self.failure else "ready"

    def wait(self, timeout_s: float | None = None) -> bool:
        self._settled.wait(READY_WAIT_S if timeout_s is None else timeout_s)
        return self.state == "ready"

    async def wait_async(self, timeout_s: float | None = None) -> bool:
        # Polled rather than a thread per waiting request: the wait is short and rare.
        deadline = time.monotonic() + (READY_WAIT_S if timeout_s is None else timeout_s)
        while not self._settled.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return self.state == "ready"

    def unavailable(self) -> str:
        if self.failure:
            return f"The MLflow tracking server failed to start: {self.failure}"
        return STARTING


_IMPORTING = threading.Lock()


def import_mlflow() -> None:
    """Import MLflow's client side once, one thread at a time: call it before any
    ``from mlflow ...`` here. Two threads importing MLflow at once (the reaper's start-up
    tagging, a request that MLflow's readiness just released) can meet inside its
    circular imports, and one gets "cannot import name ... from partially initialized
    module"."""
    with _IMPORTING:
        import mlflow.entities  # noqa: F401
        import mlflow.exceptions  # noqa: F401
        from mlflow import MlflowClient  # noqa: F401


# MLflow 3's UI picks an experiment's view from this tag: without it, it guesses and may
# open the GenAI view (traces, prompts); this value opens the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


class Tracking:
    """``tracking_uri`` is what workers and jobs use; ``local_uri`` (default: the same) is
    how this server reaches it (its own MLflow through its own port, say). ``readiness``
    says when it answers (default: from the start, an external server)."""

    def __init__(self, tracking_uri: str, local_uri: str | None = None,
                 readiness: Readiness | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.local_uri = local_uri or tracking_uri
        self.readiness = readiness or Readiness(ready=True)

    @property
    def client(self):
        """The MLflow client, once MLflow answers (ServiceUnavailable after the bound)."""
        if not self.readiness.wait():
            raise ServiceUnavailable(self.readiness.unavailable())
        return self._client

    @functools.cached_property
    def _client(self):
        # Imported here: mlflow takes seconds to import and only this needs it.
        import_mlflow()
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.local_uri)

    def create_experiment(self, name: str) -> int:
        import_mlflow()
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.create_experiment(
                name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            ))
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
        import_mlflow()
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
        import_mlflow()
        from mlflow.exceptions import MlflowException

        try:
            self.client.rename_experiment(str(experiment_id), f"{name} (deleted {experiment_id})")
            self.client.delete_experiment(str(experiment_id))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise BadGateway(f"MLflow refused to delete the experiment: {exc.message}") from exc

    def tag_kind(self, experiment_ids: set[int]) -> list[int]:
        """Give those of ``experiment_ids`` that lack it the experiment-kind tag (for
        experiments made before the testbed set it); returns the ids it tagged."""
        import_mlflow()
        from mlflow.entities import ViewType

        tagged = []
        page_token = None
        while True:
            page = self.client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=page_token
            )
            for experiment in page:
                key = int(experiment.experiment_id)
                if key in experiment_ids and EXPERIMENT_KIND_TAG not in experiment.tags:
                    self.client.set_experiment_tag(
                        experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                    )
                    tagged.append(key)
            page_token = page.token
            if not page_token:
                return tagged

    def fail_run(self, run_id: str) -> bool:
        """End a run its worker can no longer end (the job was failed for it) as FAILED;
        a run that has ended already is left as it is. Returns whether it was ended."""
        run = self.client.get_run(run_id)
        if run.info.status not in ("RUNNING", "SCHEDULED"):
            return False
        self.client.set_terminated(run_id, "FAILED")
        return True
