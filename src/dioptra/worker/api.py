"""HTTP client of the worker API (``/api/v0/worker``, see docs/ARCHITECTURE.md).

Every call has a timeout. Calls are retried with exponential backoff when the server
cannot be reached (it may be restarting) or answers 502/503/504 (a proxy in front of a
restarting server); calls that are safe to repeat are also retried after a read timeout.
Other HTTP errors raise ``ServerAPIError`` at once.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import requests

from dioptra.contract.messages import (
    ClaimRequest,
    JobAnswer,
    JobHeartbeat,
    JobReport,
    JobSpec,
    WorkerHeartbeat,
)
from dioptra.contract.status import JobStatus

log = logging.getLogger("dioptra.worker")

_RETRY_STATUSES = {502, 503, 504}
_CONNECT_TIMEOUT_S = 10.0


class ServerAPIError(RuntimeError):
    """The server answered with an error, or could not be reached after the retries."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServerAPI:
    """One worker's connection to the Dioptra server.

    ``base_url`` is the server root (``http://host:5000``); a trailing ``/api/v0`` is
    accepted too. ``token`` is sent as ``Authorization: Bearer <token>``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 6,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        root = base_url.rstrip("/")
        for suffix in ("/api/v0", "/api"):
            if root.endswith(suffix):
                root = root[: -len(suffix)]
                break
        self.base_url = root
        self.api_url = f"{root}/api/v0/worker"
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # -- the API -------------------------------------------------------------------------

    def heartbeat(
        self, worker_id: str, queues: list[str] | None, hostname: str | None = None
    ) -> dict[str, Any]:
        """Tell the server this worker is alive and which queues it serves (None = all)."""
        body = WorkerHeartbeat(
            worker_id=worker_id, queues=queues, hostname=hostname or _hostname()
        ).wire()
        return self._json("POST", "/heartbeat", json=body, idempotent=True)

    def claim(
        self,
        worker_id: str,
        queues: list[str] | None,
        wait: float = 10.0,
        job_id: str | None = None,
    ) -> JobSpec | None:
        """Claim one queued job (the given one with ``job_id``); None when there is none.

        The server holds the request up to ``wait`` seconds for a job to come.
        """
        body = ClaimRequest(worker_id=worker_id, queues=queues, wait=wait, job_id=job_id).wire()
        response = self._request(
            "POST",
            "/claim",
            json=body,
            # Not repeated after a read timeout: the server may have claimed a job for us.
            idempotent=False,
            read_timeout_s=wait + self.timeout_s,
        )
        if response.status_code == 204:
            return None
        return JobSpec.model_validate(response.json())

    def download_workflow(self, job_id: str, dest: Path) -> Path:
        """Save the job's workflow archive at ``dest``."""
        return self._download(f"/jobs/{job_id}/workflow", dest)

    def download_plugin(self, name: str, dest: Path) -> Path:
        """Save the ``.tar.gz`` of custom plugin package ``name`` at ``dest``."""
        return self._download(f"/plugins/{name}", dest)

    def report(
        self,
        job_id: str,
        worker_id: str,
        *,
        mlflow_run_id: str | None = None,
        status: JobStatus | None = None,
        reason: str | None = None,
    ) -> bool:
        """Report the MLflow run id and/or a status; returns whether the job must stop."""
        body = JobReport(
            worker_id=worker_id, mlflow_run_id=mlflow_run_id, status=status, reason=reason
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        # The server ignores a status for a job that already ended, so repeating is safe.
        answer = self._json("POST", f"/jobs/{job_id}/report", json=body, idempotent=True)
        return JobAnswer.model_validate(answer).cancel_requested

    def job_heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Keep the job alive on the server; returns whether a cancel was requested."""
        body = JobHeartbeat(worker_id=worker_id).wire()
        answer = self._json("POST", f"/jobs/{job_id}/heartbeat", json=body, idempotent=True)
        return JobAnswer.model_validate(answer).cancel_requested

    def append_log(self, job_id: str, worker_id: str, text: str) -> int:
        """Append ``text`` to the job log; returns the log's new size."""
        answer = self._json(
            "POST",
            f"/jobs/{job_id}/log",
            data=text.encode("utf-8"),
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "X-Dioptra-Worker-Id": worker_id,
            },
            # Repeating after a lost answer would write the text twice.
            idempotent=False,
        )
        return int(answer.get("size", 0))

    def close(self) -> None:
        self.session.close()

    # -- plumbing ------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            answer = response.json()
        except ValueError:
            raise ServerAPIError(
                f"{method} {path}: the server answered {response.status_code} "
                f"with non-JSON content: {response.text[:200]!r}",
                response.status_code,
            ) from None
        return answer if isinstance(answer, dict) else {}

    def _download(self, path: str, dest: Path) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        response = self._request("GET", path, idempotent=True, stream=True)
        partial = dest.with_name(dest.name + ".part")
        try:
            with response, partial.open("wb") as out:
                for block in response.iter_content(chunk_size=1 << 20):
                    out.write(block)
        except requests.RequestException as exc:
            partial.unlink(missing_ok=True)
            raise ServerAPIError(f"GET {path}: the download broke off: {exc}") from exc
        partial.replace(dest)
        return dest

    def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        read_timeout_s: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        url = f"{self.api_url}{path}"
        timeout = (_CONNECT_TIMEOUT_S, read_timeout_s or self.timeout_s)
        delay = self.backoff_s
        attempt = 0
        while True:
            attempt += 1
            problem: str
            try:
                response = self.session.request(method, url, timeout=timeout, **kwargs)
            except requests.ConnectionError as exc:  # includes ConnectTimeout
                problem = f"cannot reach the server: {exc}"
            except requests.Timeout as exc:  # a read timeout: the server got the request
                if not idempotent:
                    raise ServerAPIError(f"{method} {path}: no answer in time: {exc}") from exc
                problem = f"no answer in time: {exc}"
            else:
                if response.status_code not in _RETRY_STATUSES:
                    if response.status_code >= 400:
                        raise ServerAPIError(
                            f"{method} {path}: {response.status_code} {_error_text(response)}",
                            response.status_code,
                        )
                    return response
                problem = f"the server answered {response.status_code}"
                response.close()
            if attempt > self.retries:
                raise ServerAPIError(f"{method} {path}: {problem} (gave up after {attempt} tries)")
            log.warning("%s %s: %s; retrying in %.1fs", method, path, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        for key in ("message", "detail"):
            if key in body:
                return str(body[key])
    return str(body)[:500]


def _hostname() -> str:
    return socket.gethostname()
