"""DioptraClient: the v0 client's 20 methods, same names, signatures and answers,
plus a few extras for job logs, cancellation and filtered job lists."""

from __future__ import annotations

import json
import os
import posixpath
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import requests

from dioptra.contract.status import ENDED_STATUSES as TERMINAL_STATUSES


class DioptraClient:
    """Connects to a testbed's REST API.

    Args:
        address: the API's address, e.g. ``http://127.0.0.1:5000``; when not given,
            the ``DIOPTRA_RESTAPI_URI`` environment variable is used.
        api_version: the REST API version; ``"v0"``.

    When ``DIOPTRA_API_TOKEN`` is set, every request carries it as a bearer token.
    """

    def __init__(self, address: str | None = None, api_version: str = "v0") -> None:
        if not address:
            try:
                address = os.environ["DIOPTRA_RESTAPI_URI"]
            except KeyError:
                raise KeyError(
                    "DIOPTRA_RESTAPI_URI: no address was given and the variable is not set"
                ) from None
        base = f"{address}/api/{api_version}"
        parsed = urlparse(base)
        self._scheme, self._netloc, self._path = parsed.scheme, parsed.netloc, parsed.path
        self._session = requests.Session()
        token = os.environ.get("DIOPTRA_API_TOKEN")
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    # URLs ------------------------------------------------------------------------------
    def _url(self, *parts: str) -> str:
        path = posixpath.join(self._path, *[str(p) for p in parts])
        return urlunparse((self._scheme, self._netloc, path, "", "", ""))

    @property
    def experiment_endpoint(self) -> str:
        return self._url("experiment/")

    @property
    def job_endpoint(self) -> str:
        return self._url("job/")

    @property
    def queue_endpoint(self) -> str:
        return self._url("queue/")

    @property
    def task_plugin_endpoint(self) -> str:
        return self._url("taskPlugin/")

    @property
    def task_plugin_builtins_endpoint(self) -> str:
        return self._url("taskPlugin/dioptra_builtins")

    @property
    def task_plugin_custom_endpoint(self) -> str:
        return self._url("taskPlugin/dioptra_custom")

    # The v0 methods --------------------------------------------------------------------
    def delete_custom_task_plugin(self, name: str) -> dict[str, Any]:
        """Delete the custom task plugin package ``name``."""
        return self._session.delete(self._url("taskPlugin/dioptra_custom", name)).json()

    def get_experiment_by_id(self, id: int) -> dict[str, Any]:
        return self._session.get(self._url("experiment", str(id))).json()

    def get_experiment_by_name(self, name: str) -> dict[str, Any]:
        return self._session.get(self._url("experiment", "name", name)).json()

    def get_job_by_id(self, id: str) -> dict[str, Any]:
        return self._session.get(self._url("job", id)).json()

    def get_queue_by_id(self, id: int) -> dict[str, Any]:
        return self._session.get(self._url("queue", str(id))).json()

    def get_queue_by_name(self, name: str) -> dict[str, Any]:
        return self._session.get(self._url("queue", "name", name)).json()

    def get_builtin_task_plugin(self, name: str) -> dict[str, Any]:
        return self._session.get(self._url("taskPlugin/dioptra_builtins", name)).json()

    def get_custom_task_plugin(self, name: str) -> dict[str, Any]:
        return self._session.get(self._url("taskPlugin/dioptra_custom", name)).json()

    def list_experiments(self) -> list[dict[str, Any]]:
        return self._session.get(self.experiment_endpoint).json()

    def list_jobs(self) -> list[dict[str, Any]]:
        return self._session.get(self.job_endpoint).json()

    def list_queues(self) -> list[dict[str, Any]]:
        """The unlocked queues."""
        return self._session.get(self.queue_endpoint).json()

    def list_all_task_plugins(self) -> list[dict[str, Any]]:
        return self._session.get(self.task_plugin_endpoint).json()

    def list_builtin_task_plugins(self) -> list[dict[str, Any]]:
        return self._session.get(self.task_plugin_builtins_endpoint).json()

    def list_custom_task_plugins(self) -> list[dict[str, Any]]:
        return self._session.get(self.task_plugin_custom_endpoint).json()

    def lock_queue(self, name: str) -> dict[str, Any]:
        """Lock a queue: it refuses new jobs (those already queued still run)."""
        return self._session.put(self._url("queue", "name", name, "lock")).json()

    def unlock_queue(self, name: str) -> dict[str, Any]:
        return self._session.delete(self._url("queue", "name", name, "lock")).json()

    def register_experiment(self, name: str) -> dict[str, Any]:
        return self._session.post(self.experiment_endpoint, json={"name": name}).json()

    def register_queue(self, name: str = "tensorflow_cpu") -> dict[str, Any]:
        return self._session.post(self.queue_endpoint, json={"name": name}).json()

    def submit_job(
        self,
        workflows_file: str | Path,
        experiment_name: str,
        entry_point: str,
        entry_point_kwargs: str | None = None,
        depends_on: str | None = None,
        queue: str = "tensorflow_cpu",
        timeout: str = "24h",
    ) -> dict[str, Any]:
        """Submit a job: run ``entry_point`` of the MLproject in ``workflows_file``
        (a tar or zip archive) with ``entry_point_kwargs`` like ``"-P eps=0.3"``."""
        data = {
            "experimentName": experiment_name,
            "queue": queue,
            "timeout": timeout,
            "entryPoint": entry_point,
        }
        if entry_point_kwargs is not None:
            data["entryPointKwargs"] = entry_point_kwargs
        if depends_on is not None:
            data["dependsOn"] = depends_on
        path = Path(workflows_file)
        with path.open("rb") as fh:
            files = {"workflow": (path.name, fh)}
            return self._session.post(self.job_endpoint, data=data, files=files).json()

    def upload_custom_plugin_package(
        self,
        custom_plugin_name: str,
        custom_plugin_file: str | Path,
        collection: str = "dioptra_custom",
    ) -> dict[str, Any]:
        """Upload a task plugin package (a tar or zip archive of Python files)."""
        data = {"taskPluginName": custom_plugin_name, "collection": collection}
        path = Path(custom_plugin_file)
        with path.open("rb") as fh:
            files = {"taskPluginFile": (path.name, fh)}
            return self._session.post(self.task_plugin_endpoint, data=data, files=files).json()

    # Extras beyond v0 ------------------------------------------------------------------
    def find_jobs(
        self,
        status: str | None = None,
        experiment_id: int | None = None,
        queue: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Jobs filtered by status, experiment id and queue name, oldest first."""
        params: dict[str, Any] = {"offset": offset}
        for key, value in (("status", status), ("experimentId", experiment_id),
                           ("queue", queue), ("limit", limit)):
            if value is not None:
                params[key] = value
        return self._session.get(self.job_endpoint, params=params).json()

    def submit_task_engine_job(
        self,
        experiment_description: dict[str, Any],
        experiment_name: str,
        queue: str = "tensorflow_cpu",
        global_parameters: dict[str, Any] | None = None,
        depends_on: str | None = None,
        timeout: str = "24h",
    ) -> dict[str, Any]:
        """Submit a declarative task-engine experiment (``POST /job/newTaskEngine``)."""
        body: dict[str, Any] = {
            "experimentName": experiment_name,
            "queue": queue,
            "experimentDescription": experiment_description,
            "timeout": timeout,
        }
        if global_parameters is not None:
            body["globalParameters"] = global_parameters
        if depends_on is not None:
            body["dependsOn"] = depends_on
        return self._session.post(self._url("job", "newTaskEngine"), json=body).json()

    def get_job_log(self, id: str, offset: int = 0) -> dict[str, Any]:
        """The job's log from character ``offset``: ``{"log", "nextOffset", "status"}``."""
        return self._session.get(self._url("job", id, "log"),
                                 params={"offset": offset}).json()

    def follow_job_log(self, id: str, poll_s: float = 0.5) -> Iterator[str]:
        """Yield the job's log as it grows, until the job has ended."""
        offset = 0
        while True:
            page = self.get_job_log(id, offset)
            if "log" not in page:
                raise RuntimeError(page.get("message", page))
            if page["log"]:
                yield page["log"]
            offset = page["nextOffset"]
            if page["status"] in TERMINAL_STATUSES and not page["log"]:
                return
            if not page["log"]:
                time.sleep(poll_s)

    def cancel_job(self, id: str) -> dict[str, Any]:
        """Stop a queued or running job; it ends ``failed`` with reason 'cancelled'."""
        return self._session.post(self._url("job", id, "cancel")).json()

    def wait_for_job(self, id: str, timeout_s: float = 3600, poll_s: float = 0.5) -> dict:
        """Poll until the job has ended; returns the final job."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get_job_by_id(id)
            if job.get("status") in TERMINAL_STATUSES or "jobId" not in job:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {id} still {job['status']} after {timeout_s:g}s")
            time.sleep(poll_s)

    def list_workers(self) -> list[dict[str, Any]]:
        """The workers that sent a heartbeat recently."""
        return self._session.get(self._url("worker/")).json()

    # Pipelines and reports ---------------------------------------------------------------
    def submit_pipeline(
        self,
        pipeline: str | Path | dict,
        workflows_file: str | Path,
    ) -> dict[str, Any]:
        """Submit a pipeline: a YAML/JSON file's path, its text, or a dict, with the
        workflow archive its stages' entry points come from. Answers the pipeline's state
        (or ``{"message", "problems"}`` listing every problem of an invalid one)."""
        if isinstance(pipeline, dict):
            text = json.dumps(pipeline)
        elif isinstance(pipeline, Path) or (
                "\n" not in str(pipeline) and Path(str(pipeline)).is_file()):
            text = Path(pipeline).read_text(encoding="utf-8")
        else:
            text = str(pipeline)
        path = Path(workflows_file)
        with path.open("rb") as fh:
            files = {"workflow": (path.name, fh)}
            return self._session.post(self._url("pipeline/"), data={"definition": text},
                                      files=files).json()

    def get_pipeline(self, id: str) -> dict[str, Any]:
        """The pipeline's state: status, stages with job counts by status, its jobs."""
        return self._session.get(self._url("pipeline", id)).json()

    def list_pipelines(self, experiment_id: int | None = None) -> list[dict[str, Any]]:
        params = {} if experiment_id is None else {"experimentId": experiment_id}
        return self._session.get(self._url("pipeline/"), params=params).json()

    def cancel_pipeline(self, id: str) -> dict[str, Any]:
        """Cancel every job of the pipeline that has not ended."""
        return self._session.post(self._url("pipeline", id, "cancel")).json()

    def wait_for_pipeline(self, id: str, timeout_s: float = 3600, poll_s: float = 1.0,
                          on_state=None) -> dict[str, Any]:
        """Poll until the pipeline has ended (``on_state`` sees every state polled)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.get_pipeline(id)
            if on_state is not None:
                on_state(state)
            if state.get("status") in TERMINAL_STATUSES or "pipelineId" not in state:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"pipeline {id} still {state['status']} after {timeout_s:g}s")
            time.sleep(poll_s)

    def get_pipeline_report(self, id: str, format: str = "json") -> dict[str, Any] | str:
        """The pipeline's report: ``json`` (a dict), ``csv`` or ``html`` (text)."""
        if format == "json":
            return self._session.get(self._url("pipeline", id, "report")).json()
        if format not in ("csv", "html"):
            raise ValueError("format must be json, csv or html")
        response = self._session.get(self._url("pipeline", id, f"report.{format}"))
        if response.status_code != 200:
            raise RuntimeError(response.json().get("message", response.text))
        return response.text

    def get_jobs_report(self, experiment_id: int | None = None, entry_point: str | None = None,
                        status: str | None = "finished", format: str = "json"
                        ) -> dict[str, Any] | str:
        """A report over any jobs: an experiment's, an entry point's."""
        params: dict[str, Any] = {"format": format, "status": status or ""}
        if experiment_id is not None:
            params["experimentId"] = experiment_id
        if entry_point is not None:
            params["entryPoint"] = entry_point
        response = self._session.get(self._url("report/"), params=params)
        return response.json() if format == "json" else response.text
