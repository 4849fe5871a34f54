"""Assembles one testbed server: database, object store, MLflow, dispatch, HTTP."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import asdict

from dioptra import logs, serving
from dioptra.api_processes import ApiProcesses
from dioptra.config import Settings
from dioptra.db import Database
from dioptra.dispatch.embedded import EMBEDDED_PREFIX, EmbeddedDispatcher
from dioptra.dispatch.wakeup import WakeUp
from dioptra.generations import MLFLOW, Generations
from dioptra.mlflow_server import PREFIX as MLFLOW_PREFIX
from dioptra.mlflow_server import MLflowServer
from dioptra.restapi.app import create_app
from dioptra.restapi.shared_sessions import FileSessions
from dioptra.services import experiments, pipelines, plugins, reaper
from dioptra.services.context import ServiceContext
from dioptra.services.tracking import Readiness, Tracking
from dioptra.storage import open_store
from dioptra.worker import sandbox

log = logging.getLogger("dioptra.server")
REAP_INTERVAL_S = 2.0
# How often queued jobs are checked against the dispatcher (a Redis restarted or flushed
# loses what was enqueued): every this many reaper rounds.
REDISPATCH_EVERY_ROUNDS = 5
# The MLflow slot of the shared generations (dioptra/generations.py): its state, for
# the API processes' Readiness.
MLFLOW_STARTING, MLFLOW_READY, MLFLOW_FAILED = 0, 1, 2
MLFLOW_FAILURE_FILE = "mlflow-failure"


class InsecureBindError(SystemExit):
    pass


class Dispatchers:
    """Embedded workers and RQ together: a job is claimed once whoever gets it."""

    def __init__(self, members: list) -> None:
        self.members = members

    def start(self) -> None:
        for member in self.members:
            member.start()

    def job_ready(self, job_id: str, queue_name: str, timeout_seconds: int) -> None:
        for member in self.members:
            member.job_ready(job_id, queue_name, timeout_seconds)

    def redispatch(self, jobs: list[tuple[str, str, int]]) -> None:
        for member in self.members:
            member.redispatch(jobs)

    def retry_failed(self) -> None:
        for member in self.members:
            if hasattr(member, "retry_failed"):
                member.retry_failed()

    def stop(self) -> None:
        for member in self.members:
            member.stop()


def check_bind(settings: Settings) -> None:
    if not settings.is_loopback and not settings.api_token and not settings.insecure:
        raise InsecureBindError(
            f"Refusing to listen on {settings.host} without an API token: anyone who can "
            "reach it could run code on the workers. Set DIOPTRA_API_TOKEN (or "
            "--token-file), or pass --insecure if the network is trusted."
        )


def own_mlflow_tracking(settings: Settings, readiness: Readiness) -> Tracking:
    """The tracking of the MLflow this server runs and serves under /mlflow."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    host = f"[{host}]" if ":" in host else host
    return Tracking(f"{settings.server_url}{MLFLOW_PREFIX}",
                    local_uri=f"http://{host}:{settings.port}{MLFLOW_PREFIX}",
                    readiness=readiness)


class TestbedServer:
    """The main process: MLflow, dispatch (embedded workers, RQ) and the reaper run here
    only; the API is served here too (one API process) or by API processes it starts
    (dioptra/api_processes.py), which share with it the generations and the sessions."""

    def __init__(self, settings: Settings) -> None:
        check_bind(settings)
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.mlflow: MLflowServer | None = None
        self.embedded: EmbeddedDispatcher | None = None
        self.run_dir = settings.data_dir / "run"
        # Created afresh: what an earlier server left there means nothing now.
        self.generations = Generations.in_run_dir(settings.data_dir, create=True)
        (self.run_dir / MLFLOW_FAILURE_FILE).unlink(missing_ok=True)
        FileSessions.reset(self.run_dir / "sessions")
        self.wakeup = WakeUp(self.generations)
        self._stop = threading.Event()
        # Whether MLflow starts before the API serves (one process) or after (several).
        self.mlflow_first = True

    def _tracking(self) -> Tracking:
        settings = self.settings
        if settings.mlflow_tracking_uri:
            return Tracking(settings.mlflow_tracking_uri)
        # Our own MLflow listens on a private socket; the API serves it under /mlflow,
        # behind the same token check as everything else.
        self.mlflow = MLflowServer(settings.data_dir, private=True)
        # The API answers meanwhile: MLflow takes 10-40 s to start; what needs it waits
        # on this (services/tracking.py). Started by _start_mlflow().
        self._readiness = Readiness()
        readiness = self._readiness
        if self.mlflow_first:  # a head start on the migration
            self._start_mlflow()
        if settings.api_token:
            # MLflow's client sends it as a bearer token: this server's own calls and
            # its embedded workers' (each job gets a token of its own instead).
            os.environ["MLFLOW_TRACKING_TOKEN"] = settings.api_token
        return own_mlflow_tracking(settings, readiness)

    def _start_mlflow(self) -> None:
        if self.mlflow is None:
            return
        self.mlflow.start()
        threading.Thread(target=self._watch_mlflow, args=(self._readiness,),
                         name="mlflow-start", daemon=True).start()

    def _watch_mlflow(self, readiness: Readiness) -> None:
        try:
            self.mlflow.wait_ready()
        except RuntimeError as exc:
            log.error("%s", exc)
            (self.run_dir / MLFLOW_FAILURE_FILE).write_text(str(exc))
            self.generations.set(MLFLOW, MLFLOW_FAILED)
            readiness.settle(failure=str(exc))
            return
        self.generations.set(MLFLOW, MLFLOW_READY)
        readiness.settle()
        log.info("MLflow tracking server ready")

    def _dispatchers(self) -> Dispatchers:
        members: list = []
        if self.settings.redis_url:
            from dioptra.dispatch.rq import RQDispatcher

            members.append(RQDispatcher(self.settings.redis_url))
        n = self.settings.effective_workers
        if n > 0:
            self.embedded = EmbeddedDispatcher(
                self.settings.server_url, n, self.wakeup, self.settings.api_token,
                str(self.settings.data_dir / "work"),
                # Jobs must not see the data dir, even where it lies inside a folder
                # their Python needs (worker/sandbox.py). The workers log at the
                # server's level (`--log-level` included) unless told their own.
                extra_env={sandbox.ENV_HIDE: str(self.settings.data_dir),
                           "DIOPTRA_LOG_LEVEL": self.settings.log_level},
            )
            members.append(self.embedded)
        return Dispatchers(members)

    def build_context(self) -> ServiceContext:
        settings = self.settings
        tracking = self._tracking()
        db = Database(settings.effective_database_uri)
        db.upgrade()
        self.ctx = ServiceContext(
            settings=settings,
            db=db,
            store=open_store(settings.effective_storage_url),
            tracking=tracking,
            dispatcher=self._dispatchers(),
        )
        if self.embedded is not None:
            self.ctx.embedded_instance = self.embedded.instance
        return self.ctx

    @property
    def mlflow_socket(self) -> str | None:
        return str(self.mlflow.socket_path) if self.mlflow is not None else None

    def build(self):
        self.build_context()
        app = create_app(self.ctx, self.wakeup, self._on_startup, self._on_shutdown,
                         mlflow_socket=self.mlflow_socket, generations=self.generations,
                         sessions=FileSessions(self.run_dir / "sessions"))
        self.app_state = app.state
        return app

    def _on_startup(self) -> None:
        self.ctx.dispatcher.start()
        try:
            plugins.record_missing_digests(self.ctx)
        except Exception:  # noqa: BLE001 - an object store away must not stop the start
            log.exception("could not record the digests of the custom plugins")
        threading.Thread(target=self._keep_books, name="reaper", daemon=True).start()
        self._announce_sandbox()
        ui = self.ctx.tracking.tracking_uri + ("/" if self.mlflow is not None else "")
        print(f"Dioptra testbed ready at {self.settings.server_url} "
              f"(MLflow UI at {ui})", flush=True)

    def _announce_sandbox(self) -> None:
        """Say loudly when the embedded workers cannot sandbox their jobs."""
        if self.settings.effective_workers <= 0:
            return
        ok, described = sandbox.announcement()
        if not ok:
            log.warning("jobs of the embedded workers: %s", described)
            print(f"\n*** {described} ***\n", file=sys.stderr, flush=True)
        else:
            log.info("jobs of the embedded workers run in a %s", described)

    def _tag_experiments(self) -> None:
        # Experiments registered before the testbed tagged them would open on MLflow's
        # GenAI view. A tracking server that is down must not stop the testbed starting.
        # Not holding a session while MLflow starts (it settles within its own bound).
        self.ctx.tracking.readiness.wait(timeout_s=300)
        try:
            with self.ctx.db.session() as session:
                tagged = experiments.tag_untagged(session, self.ctx.tracking)
            if tagged:
                log.info("tagged %d MLflow experiments as model development", len(tagged))
        except Exception:  # noqa: BLE001
            log.warning("could not tag the MLflow experiments", exc_info=True)

    def _keep_books(self) -> None:
        # Here, not in the start-up hook: ending a lost job's MLflow run and tagging the
        # experiments wait for MLflow, which starts in the background.
        try:
            reaper.recover(self.ctx, EMBEDDED_PREFIX)
            pipelines.recover(self.ctx)
        except Exception:  # noqa: BLE001 - the reaper's rounds recover the rest
            log.exception("recovery after the restart failed")
        self._tag_experiments()
        rounds = 0
        while not self._stop.wait(REAP_INTERVAL_S):
            rounds += 1
            try:
                reaper.reap(self.ctx)
                pipelines.finalize_pending(self.ctx)
                self.ctx.dispatcher.retry_failed()
                if rounds % REDISPATCH_EVERY_ROUNDS == 0:
                    reaper.redispatch(self.ctx, min_age_s=REAP_INTERVAL_S * REDISPATCH_EVERY_ROUNDS)
            except Exception:  # noqa: BLE001 - the reaper must outlive a bad round
                log.exception("reaper round failed")

    def _on_shutdown(self) -> None:
        self._stop.set()
        self.ctx.dispatcher.stop()
        if self.mlflow is not None:
            self.mlflow.stop()
        self.ctx.db.dispose()

    def serve(self) -> None:
        count = self.settings.effective_api_workers
        try:
            if count == 1:
                app = self.build()
                # The embedded workers stop first, as with several API processes.
                serving.run(app, self.settings, on_exit=self._on_signal,
                            before_exit=self.embedded.stop if self.embedded else None)
            else:
                self._serve_with_processes(count)
        finally:
            if self.mlflow is not None:
                self.mlflow.stop()

    def _on_signal(self) -> None:
        # Release the long-polling claims now: uvicorn waits for open requests to end
        # before it shuts the application down.
        self.app_state.shutting_down = True
        self.wakeup.notify_here()

    def _serve_with_processes(self, count: int) -> None:
        """Bind once, start ``count`` API processes on the socket, supervise them from
        this (main) thread until SIGTERM/SIGINT, then stop them before the dispatch."""
        sock = serving.listening_socket(self.settings)
        sock.listen(2048)  # connections wait here until an API process accepts them
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        processes = ApiProcesses(count, sock, self.generations)
        started = False
        try:
            processes.start(self.settings.server_url)  # they import meanwhile
            self.mlflow_first = False
            self.build_context()
            payload = {
                "settings": {k: (str(v) if k == "data_dir" else v)
                             for k, v in asdict(self.settings).items()},
                "log_format": logs.current_format(),
                "embedded_instance": self.ctx.embedded_instance,
                "mlflow_socket": self.mlflow_socket,
                "run_dir": str(self.run_dir),
                "server_url": self.settings.server_url,
            }
            # MLflow and the embedded workers (their warm interpreters) take the cores for
            # seconds: only once the API answers, so that it answers within seconds.
            processes.hand_over(payload, stop)
            if stop.is_set():
                return
            self._start_mlflow()
            self._on_startup()
            started = True
            processes.supervise(stop)
        finally:
            if started and self.embedded is not None:
                # Before the API goes: a job stopped now is still reported, and no idle
                # worker finds the server gone.
                self.embedded.stop()
            processes.stop()
            sock.close()
            if started:
                self._on_shutdown()
