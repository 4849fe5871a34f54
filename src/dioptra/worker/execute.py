"""Run ONE claimed job from start to final report.

The steps follow the v0 worker and its MLflow backend (reference §7.2-7.3): download and
unpack the workflow, find and validate the MLproject, fetch the custom plugins, create the
MLflow run (tags, params, the archive as artifact), report the run id, spawn the entry
point, report ``started``, wait, end the MLflow run and report ``finished``/``failed``.

Unlike v0, every failure - a broken archive, a bad parameter, an unreachable MLflow, a
timeout, a cancel, an exception here - still ends with a ``failed`` report and a reason,
so no job is left ``queued``/``started`` forever. Errors found before the entry point
could run (archive, MLproject, parameters and paths, plugins) fail the job before an
MLflow run is created.

This module must not import torch (or anything that does): the worker parent forks.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import importlib.metadata
import logging
import os
import platform
import re
import shlex
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from dioptra.contract.messages import JobSpec
from dioptra.contract.mlproject import (
    MLprojectError,
    Project,
    find_project_dir,
    load_project,
    parse_kwargs,
)
from dioptra.contract.status import JobStatus
from dioptra.folders import temporary_folder
from dioptra.worker.api import ServerAPI, ServerAPIError
from dioptra.worker.runner import RunResult, run_command
from dioptra.worker.sandbox import Sandbox, SandboxUnavailable, exit_reason, job_environment
from dioptra.worker.sandbox import from_environment as sandbox_from_environment
from dioptra.worker.v0_environment import lay_out_plugin_dir, python_path, v0_variables
from dioptra.worker.warm import PythonCall, WarmInterpreter, plain_python

log = logging.getLogger("dioptra.worker")

LOG_FLUSH_S = 0.5  # the job log on the server lags the entry point by at most this much
JOB_HEARTBEAT_S = 2.0
LOG_PIECE_CHARS = 256 * 1024  # at most 1 MiB of UTF-8 per log request
_MAX_PENDING_LOG_CHARS = 4 * 1024 * 1024  # kept for the server while it is unreachable
_FINAL_REPORT_ROUNDS = 4  # x the API client's own retries: a restarting server gets minutes
_PLUGIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MLFLOW_PARAM_MAX_CHARS = 6000
_PREFIX = "[dioptra-worker] "


class JobFailed(Exception):
    """A failure whose message is the job's reason, as is (no exception type prefix)."""


def execute_job(
    api: ServerAPI,
    spec: JobSpec,
    worker_id: str,
    work_root: Path,
    *,
    stop_requested: Callable[[], bool] | None = None,
    sandbox: Sandbox | None = None,
    warm: WarmInterpreter | None = None,
    on_command: Callable[[bool], None] | None = None,
) -> str:
    """Run the claimed job ``spec``; return its final status, ``finished`` or ``failed``.

    ``stop_requested`` lets the worker abort the job (its second SIGTERM): the entry point
    is killed and the job reported failed. ``sandbox``: as configured in the environment
    when not given. ``warm``: an interpreter prepared for the next job (its folder becomes
    the job's; it runs the entry point when that is a plain ``python`` call).
    ``on_command(usable)``: called once the command is known, with whether a warm
    interpreter could run it (the worker then prepares the next job's).
    """
    job = _Job(api, spec, worker_id, Path(work_root), stop_requested or (lambda: False))
    job.sandbox = sandbox
    job.warm = warm
    job.on_command = on_command
    return job.run()


class _Job:
    def __init__(
        self,
        api: ServerAPI,
        spec: JobSpec,
        worker_id: str,
        work_root: Path,
        stop_requested: Callable[[], bool],
    ) -> None:
        self.api = api
        self.spec = spec
        self.job_id = spec.job_id
        self.worker_id = worker_id
        self.work_root = work_root
        self.stop_requested = stop_requested
        self.cancel = threading.Event()
        self.lost = threading.Event()  # the server no longer assigns the job to us
        self.client: Any = None  # mlflow.MlflowClient, once created
        self.run_id: str | None = None
        self.joblog: _JobLog | None = None
        self.sandbox: Sandbox | None = None
        self.warm: WarmInterpreter | None = None
        self.on_command: Callable[[bool], None] | None = None

    # -- the whole job -------------------------------------------------------------------

    def run(self) -> str:
        status, reason = JobStatus.FAILED, "the worker failed before the job could start"
        interrupted: BaseException | None = None
        try:
            self.work_root.mkdir(parents=True, exist_ok=True)
            with self._folder() as tmp:
                self.joblog = _JobLog(self.api, self.job_id, self.worker_id, tmp / "job.log")
                heartbeat = _Heartbeat(self)
                try:
                    status, reason = self._steps(tmp)
                except (JobFailed, MLprojectError, ServerAPIError) as exc:
                    reason = str(exc)  # messages written for the user, shown as they are
                except Exception as exc:  # noqa: BLE001 - any error must fail the job
                    reason = f"{type(exc).__name__}: {exc}"
                    self._say(traceback.format_exc().rstrip())
                except BaseException as exc:  # KeyboardInterrupt, SystemExit: report, re-raise
                    reason = "the worker was interrupted"
                    interrupted = exc
                finally:
                    heartbeat.stop()
                    self._finish(status, reason)
                    # Ship the rest of the log before the final status becomes visible.
                    self.joblog.close()
        except Exception as exc:  # noqa: BLE001 - e.g. work_root not writable
            log.exception("job %s: the worker failed", self.job_id)
            status, reason = JobStatus.FAILED, f"the worker failed: {type(exc).__name__}: {exc}"
        except BaseException as exc:
            status, reason = JobStatus.FAILED, "the worker was interrupted"
            interrupted = exc
        finally:
            self._final_report(status, reason if status == JobStatus.FAILED else None)
        if interrupted is not None:
            raise interrupted
        return status

    @contextlib.contextmanager
    def _folder(self) -> Iterator[Path]:
        """The job's own folder: the warm interpreter's, else a new one; removed after."""
        if self.warm is None:
            # A folder the entry point made undeletable must not turn "finished" into "failed".
            with temporary_folder(
                prefix=f"job-{self.job_id[:8]}-", dir=self.work_root, ignore_cleanup_errors=True
            ) as tmp:
                tmp.chmod(0o755)  # the job's own uid must reach its folders inside
                yield tmp
            return
        try:
            yield self.warm.folder
        finally:
            self.warm.remove()  # stops it if it did not get the job

    def _steps(self, tmp: Path) -> tuple[JobStatus, str | None]:
        from dioptra.archives import safe_extract  # written alongside; imported when used

        spec = self.spec
        entry_point = spec.entry_point
        self._say(f"worker {self.worker_id}, queue {spec.queue}, entry point {entry_point}")

        # 1. The workflow archive.
        filename = _safe_name(spec.workflow_filename or "workflow.tar.gz")
        archive = self.api.download_workflow(self.job_id, tmp / "downloads" / filename)
        workflow_sha256 = _sha256(archive)
        self._say(
            f"downloaded {filename} ({archive.stat().st_size} bytes, sha256 {workflow_sha256})"
        )
        expected = spec.workflow_sha256
        if expected and expected != workflow_sha256:
            raise JobFailed(
                f"the downloaded workflow archive has sha256 {workflow_sha256}, "
                f"but the server recorded {expected}"
            )
        extracted = tmp / "workflow"
        extracted.mkdir()
        try:
            safe_extract(archive, extracted)
        except ValueError as exc:  # ArchiveError
            raise JobFailed(f"the workflow archive was rejected: {exc}") from exc

        # 2. The MLproject and the parameters.
        project = load_project(find_project_dir(extracted))
        params = project.validate(entry_point, parse_kwargs(spec.entry_point_kwargs))
        where = project.directory.relative_to(extracted).as_posix()
        self._say(f"MLproject in {where}, entry point {entry_point!r}, parameters {params}")

        # 3. Custom task plugins, importable as dioptra_custom.<name>.
        plugins_dir = tmp / "plugins"
        plugin_digests = self._fetch_plugins(tmp, plugins_dir / "dioptra_custom", safe_extract)
        if self.warm is None:  # a warm interpreter's folder has them: it imported them
            lay_out_plugin_dir(plugins_dir)  # + dioptra_builtins: $DIOPTRA_PLUGIN_DIR, as v0
        # Built now so that a missing 'path' value also fails before any MLflow run exists.
        command = project.command(entry_point, params, tmp / "storage")
        self._check_cancel()

        # 4. The MLflow run: created, tagged, reported, before the entry point starts.
        self._create_run(entry_point, params, workflow_sha256, plugin_digests)
        assert self.run_id is not None
        if self.api.report(self.job_id, self.worker_id, mlflow_run_id=self.run_id):
            self.cancel.set()
        self._say(f"MLflow run {self.run_id} in experiment {spec.experiment_id}")
        self.client.log_artifact(self.run_id, str(archive))
        self._check_cancel()

        # 5. The entry point, in its sandbox.
        env = self._environment(plugins_dir, tmp / "home")
        usable = project.entry_point(entry_point).warm_start and bool(plain_python(command))
        if self.on_command is not None:
            self.on_command(usable)
        call = self._warm_call(project, entry_point, command) if usable else None
        timeout_s = spec.timeout_seconds
        assert self.joblog is not None
        # The same limits, cancel and log streaming whichever process runs the command.
        run = functools.partial(
            run_command,
            command,
            project.directory,
            env,
            float(timeout_s) if timeout_s else None,
            self.joblog.write,
            lambda: self.cancel.is_set() or self.stop_requested() or self.lost.is_set(),
            on_start=self._started,
        )
        if call is not None and self.warm is not None:
            sandbox = self.warm.sandbox
            self._say(sandbox.describe())
            (tmp / "storage").mkdir(exist_ok=True)
            sandbox.give(self.warm.uid, [extracted, tmp / "storage", tmp / "home"])
            try:
                process = self.warm.start(call, env, project.directory)
            except OSError as exc:  # forks.ForkFailed among them: then as always
                self._say(f"warm start failed ({exc}); starting a fresh interpreter")
            else:
                self._say(f"running: {command.strip()} (in a warm interpreter)")
                return self._outcome(run(process=process))
        if self.warm is not None:
            self.warm.discard()  # not for this command: a fresh process, as always
        argv = self._sandboxed(command, tmp, extracted, project.directory)
        self._say(f"running: {command.strip()}")
        return self._outcome(run(argv=argv))

    # -- steps ---------------------------------------------------------------------------

    def _fetch_plugins(
        self, tmp: Path, custom_dir: Path, safe_extract: Callable[..., Any]
    ) -> dict[str, str]:
        digests: dict[str, str] = {}
        custom_dir.mkdir(parents=True, exist_ok=True)
        for plugin in self.spec.custom_plugins:
            name = plugin.name
            if not _PLUGIN_NAME.fullmatch(name):
                raise JobFailed(f"the custom task plugin name {name!r} is not a Python name")
            packed = self.api.download_plugin(
                name, tmp / "downloads" / "plugins" / f"{name}.tar.gz"
            )
            digest = _sha256(packed)
            if plugin.sha256 and plugin.sha256 != digest:
                # Re-uploaded between claim and download: run and record what we got.
                self._say(f"warning: custom plugin {name} changed since the job was claimed")
            target = custom_dir / name
            target.mkdir()
            try:
                safe_extract(packed, target)
            except ValueError as exc:
                raise JobFailed(f"the custom task plugin {name!r} was rejected: {exc}") from exc
            digests[name] = digest
        if digests:
            listed = ", ".join(f"{name} ({digest[:12]})" for name, digest in digests.items())
            self._say(f"custom task plugins: {listed}")
        return digests

    def _create_run(
        self,
        entry_point: str,
        params: dict[str, str],
        workflow_sha256: str,
        plugin_digests: dict[str, str],
    ) -> None:
        import mlflow  # imported late: slow, and only needed once the job is valid
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        spec = self.spec
        self.client = mlflow.MlflowClient(tracking_uri=spec.mlflow_tracking_uri)
        tags = {
            # What MLflow projects set on their runs.
            "mlflow.source.type": "PROJECT",
            "mlflow.source.name": spec.workflow_uri,
            "mlflow.project.entryPoint": entry_point,
            "mlflow.project.backend": "dioptra",
            "mlflow.user": _user(),
            # What the v0 Dioptra backend set ("None" when there is no dependency).
            "dioptra.jobId": self.job_id,
            "dioptra.queue": spec.queue,
            "dioptra.dependsOn": str(spec.depends_on),
            # Provenance.
            "dioptra.workflowSha256": workflow_sha256,
            "dioptra.workerId": self.worker_id,
            "dioptra.version": _version("dioptra-testbed"),
            "dioptra.pythonVersion": platform.python_version(),
            "dioptra.torchVersion": _version("torch"),
            "dioptra.artVersion": _version("adversarial-robustness-toolbox"),
            "dioptra.mlflowVersion": _version("mlflow"),
        }
        for name, digest in plugin_digests.items():
            tags[f"dioptra.plugin.{name}.sha256"] = digest
        # From the server: a pipeline's job is nested under the pipeline's run.
        tags.update(spec.mlflow_tags)
        run = self.client.create_run(str(spec.experiment_id), tags=tags)
        self.run_id = run.info.run_id
        # As `mlflow run` logs them: the shell-quoted values the command receives.
        logged = [
            Param(key, shlex.quote(value)[:_MLFLOW_PARAM_MAX_CHARS])
            for key, value in params.items()
        ]
        try:
            if logged:
                self.client.log_batch(self.run_id, params=logged)
        except MlflowException as exc:  # a bad key should not stop the job
            self._say(f"warning: the parameters could not be logged to MLflow: {exc.message}")

    def _warm_call(self, project: Project, entry_point: str, command: str) -> PythonCall | None:
        """How the warm interpreter runs ``command``, None when it must not."""
        call = plain_python(command)
        if self.warm is None or call is None or not self.warm.alive():
            return None
        if call.kind == "script" and not (project.directory / call.target).is_file():
            return None  # a folder, a zip or nothing: python's own handling
        return call

    def _sandboxed(self, command: str, tmp: Path, workflow: Path, cwd: Path) -> list[str]:
        try:
            sandbox = self.sandbox or sandbox_from_environment()
        except (SandboxUnavailable, ValueError) as exc:
            raise JobFailed(f"the job cannot run: {exc}") from exc
        self._say(sandbox.describe())
        uid = sandbox.job_uid(self.job_id)
        # The only folders the job may write: its workflow, its downloads, its home.
        (tmp / "storage").mkdir(exist_ok=True)
        sandbox.give(uid, [workflow, tmp / "storage", tmp / "home"])
        return sandbox.wrap(command, tmp, cwd, self.work_root, uid)

    def _environment(self, plugins_dir: Path, home: Path | None = None) -> dict[str, str]:
        home = home or plugins_dir.parent / "home"
        job_vars = {
            "MLFLOW_RUN_ID": str(self.run_id),
            "MLFLOW_TRACKING_URI": self.spec.mlflow_tracking_uri,
            "MLFLOW_EXPERIMENT_ID": str(self.spec.experiment_id),
            "DIOPTRA_JOB_ID": self.job_id,
            "DIOPTRA_RQ_JOB_ID": self.job_id,  # the name v0 entry points knew
        }
        # A credential for MLflow that is this job's only and ends with it.
        if self.spec.mlflow_tracking_token:
            job_vars["MLFLOW_TRACKING_TOKEN"] = self.spec.mlflow_tracking_token
        return entry_point_environment(plugins_dir, home, self.work_root, job_vars)

    def _started(self, pid: int) -> None:
        self._say(f"entry point started (pid {pid})")
        try:
            if self.api.report(self.job_id, self.worker_id, status=JobStatus.STARTED):
                self.cancel.set()
        except ServerAPIError as exc:
            # Not worth killing a running entry point for: the final report still counts.
            self._say(f"warning: could not report the start to the server: {exc}")

    def _outcome(self, result: RunResult) -> tuple[JobStatus, str | None]:
        if result.reason == "timeout":
            timeout = self.spec.timeout or ""
            shown = f"{timeout}s" if timeout.isdigit() else timeout or f"{result.duration_s:.0f}s"
            return JobStatus.FAILED, f"timed out after {shown}"
        if result.reason == "cancelled":
            if self.lost.is_set():
                return JobStatus.FAILED, "the server no longer assigns this job to this worker"
            if self.cancel.is_set():
                return JobStatus.FAILED, "cancelled"
            return JobStatus.FAILED, "the worker was stopped"
        if result.returncode == 0:
            return JobStatus.FINISHED, None
        return JobStatus.FAILED, exit_reason(int(result.returncode or 0))

    def _check_cancel(self) -> None:
        if self.lost.is_set():
            raise JobFailed("the server no longer assigns this job to this worker")
        if self.cancel.is_set():
            raise JobFailed("cancelled")
        if self.stop_requested():
            raise JobFailed("the worker was stopped")

    # -- the end -------------------------------------------------------------------------

    def _finish(self, status: JobStatus, reason: str | None) -> None:
        """Write the last log line, store job.log, end the MLflow run (never raises)."""
        self._say(f"job {status}" + (f": {reason}" if reason else ""))
        if self.client is None or self.run_id is None:
            return
        assert self.joblog is not None
        self.joblog.flush_file()
        try:
            self.client.log_artifact(self.run_id, str(self.joblog.path))
        except Exception as exc:  # noqa: BLE001
            self._say(f"warning: job.log could not be stored in MLflow: {exc}")
        try:
            run = self.client.get_run(self.run_id)
            if run.info.status in ("RUNNING", "SCHEDULED"):  # unless the entry point ended it
                self.client.set_terminated(
                    self.run_id, "FINISHED" if status == JobStatus.FINISHED else "FAILED"
                )
        except Exception as exc:  # noqa: BLE001
            self._say(f"warning: the MLflow run could not be ended: {exc}")

    def _final_report(self, status: JobStatus, reason: str | None) -> None:
        for round_ in range(1, _FINAL_REPORT_ROUNDS + 1):
            try:
                self.api.report(self.job_id, self.worker_id, status=status, reason=reason)
                log.info("job %s %s%s", self.job_id, status, f": {reason}" if reason else "")
                return
            except ServerAPIError as exc:
                if exc.status_code is not None and exc.status_code < 500:
                    log.error("job %s: the server refused the final report: %s", self.job_id, exc)
                    return
                log.warning("job %s: final report failed (round %d): %s", self.job_id, round_, exc)
            except Exception:  # noqa: BLE001
                log.exception("job %s: final report failed", self.job_id)
            time.sleep(2.0)
        log.error(
            "job %s: could not report %s to the server; it will time it out", self.job_id, status
        )

    def _say(self, text: str) -> None:
        """A worker message in the job log (and the worker's own log)."""
        log.info("job %s: %s", self.job_id, text.splitlines()[0] if text else "")
        if self.joblog is not None:
            self.joblog.write("".join(f"{_PREFIX}{line}\n" for line in text.splitlines()))


def entry_point_environment(
    plugins_dir: Path, home: Path, work_root: Path, job_vars: Mapping[str, str]
) -> dict[str, str]:
    """The whole environment of an entry point; ``job_vars``: what only the job knows (a
    warm interpreter starts with the rest and receives these with its job)."""
    # Built from nothing: the worker's token and keys must not reach the job.
    home.mkdir(parents=True, exist_ok=True)
    env = job_environment(os.environ, home)
    env.update(job_vars)
    # Progress bars of artifact downloads are noise in a job log (the user may opt in).
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # The worker's own settings for v0 entry points (log level, format) pass on.
    env.update(v0_variables(plugins_dir, work_root, dict(os.environ)))
    env["PYTHONPATH"] = python_path(plugins_dir, env)
    return env


class _Heartbeat:
    """Posts the job heartbeat every 2 s; turns the server's cancelRequested into a flag."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"job-heartbeat-{job.job_id[:8]}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        job = self.job
        while not self._stop.wait(JOB_HEARTBEAT_S):
            try:
                if job.api.job_heartbeat(job.job_id, job.worker_id):
                    if not job.cancel.is_set():
                        job._say("cancel requested by the server")
                    job.cancel.set()
            except ServerAPIError as exc:
                if exc.status_code in (404, 409):
                    job._say(f"stopping: {exc}")
                    job.lost.set()
                    return
                log.warning("job %s: heartbeat failed: %s", job.job_id, exc)
            except Exception:  # noqa: BLE001 - keep beating
                log.exception("job %s: heartbeat failed", job.job_id)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)


class _JobLog:
    """The job's output: appended to a local file, shipped to the server in batches."""

    def __init__(self, api: ServerAPI, job_id: str, worker_id: str, path: Path) -> None:
        self.api = api
        self.job_id = job_id
        self.worker_id = worker_id
        self.path = path
        self._file = path.open("a", encoding="utf-8", errors="replace")
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._pending_chars = 0
        self._dropped = 0
        self._refused = False
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"job-log-{job_id[:8]}", daemon=True
        )
        self._thread.start()

    def write(self, text: str) -> None:
        with self._lock:
            if self._file.closed:
                return
            self._file.write(text)
            self._pending.append(text)
            self._pending_chars += len(text)
            while self._pending_chars > _MAX_PENDING_LOG_CHARS and len(self._pending) > 1:
                dropped = self._pending.pop(0)
                self._pending_chars -= len(dropped)
                self._dropped += len(dropped)

    def flush_file(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()

    def _loop(self) -> None:
        while not self._closed.wait(LOG_FLUSH_S):
            self._ship()
        self._ship()

    def _ship(self) -> None:
        with self._lock:
            if not self._pending or self._refused:
                return
            text = "".join(self._pending)
            if self._dropped:
                text = (
                    f"{_PREFIX}{self._dropped} characters of output were dropped while the "
                    "server was unreachable; the MLflow artifact job.log has them\n" + text
                )
            self._pending, self._pending_chars, self._dropped = [], 0, 0
            self._file.flush()
        sent = 0
        try:
            # In pieces the server accepts (DIOPTRA_MAX_LOG_CHUNK_BYTES is at least 1 MiB).
            while sent < len(text):
                piece = text[sent : sent + LOG_PIECE_CHARS]
                self.api.append_log(self.job_id, self.worker_id, piece)
                sent += len(piece)
        except ServerAPIError as exc:
            if exc.status_code is not None and exc.status_code < 500:
                log.error("job %s: the server refuses log text: %s", self.job_id, exc)
                with self._lock:
                    self._refused = True
                return
            log.warning("job %s: log upload failed, will retry: %s", self.job_id, exc)
            with self._lock:  # put the rest back in front of what came meanwhile
                self._pending.insert(0, text[sent:])
                self._pending_chars += len(text) - sent
        except Exception:  # noqa: BLE001 - the log must not kill the job
            log.exception("job %s: log upload failed", self.job_id)

    def close(self) -> None:
        """Ship what is left (one last try) and close the file."""
        if not self._closed.is_set():
            self._closed.set()
            self._thread.join(timeout=120)
        with self._lock:
            if not self._file.closed:
                self._file.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_name(name: str) -> str:
    """The archive's file name without any directory part (it names a local file)."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name.replace("\\", "/")).name).lstrip(".")
    return base or "workflow.tar.gz"


def _version(distribution: str) -> str:
    # Metadata only: importing torch in the worker parent is exactly what must not happen.
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
