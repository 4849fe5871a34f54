"""Assembles one testbed server: database, object store, MLflow, dispatch, HTTP."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from dioptra.config import Settings
from dioptra.db import Database
from dioptra.dispatch.embedded import EMBEDDED_PREFIX, EmbeddedDispatcher
from dioptra.dispatch.wakeup import WakeUp
from dioptra.mlflow_server import PREFIX as MLFLOW_PREFIX
from dioptra.mlflow_server import MLflowServer
from dioptra.restapi.app import create_app
from dioptra.restapi.limits import head_timeout_protocol
from dioptra.services import plugins, reaper
from dioptra.services.context import ServiceContext
from dioptra.services.tracking import Tracking
from dioptra.storage import open_store
from dioptra.worker import sandbox

log = logging.getLogger("dioptra.server")
REAP_INTERVAL_S = 2.0
# How often queued jobs are checked against the dispatcher (a Redis restarted or flushed
# loses what was enqueued): every this many reaper rounds.
REDISPATCH_EVERY_ROUNDS = 5


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


class TestbedServer:
    def __init__(self, settings: Settings) -> None:
        check_bind(settings)
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.mlflow: MLflowServer | None = None
        self.embedded: EmbeddedDispatcher | None = None
        self.wakeup = WakeUp()
        self._stop = threading.Event()

    def _tracking(self) -> Tracking:
        settings = self.settings
        if settings.mlflow_tracking_uri:
            return Tracking(settings.mlflow_tracking_uri)
        # Our own MLflow listens on a private socket; the API serves it under /mlflow,
        # behind the same token check as everything else.
        self.mlflow = MLflowServer(settings.data_dir, private=True)
        self.mlflow.start()
        if settings.api_token:
            # MLflow's client sends it as a bearer token: this server's own calls and
            # its embedded workers' (each job gets a token of its own instead).
            os.environ["MLFLOW_TRACKING_TOKEN"] = settings.api_token
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        host = f"[{host}]" if ":" in host else host
        return Tracking(f"{settings.server_url}{MLFLOW_PREFIX}",
                        local_uri=f"http://{host}:{settings.port}{MLFLOW_PREFIX}")

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
                # their Python needs (worker/sandbox.py).
                extra_env={sandbox.ENV_HIDE: str(self.settings.data_dir)},
            )
            members.append(self.embedded)
        return Dispatchers(members)

    def build(self):
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
        socket = str(self.mlflow.socket_path) if self.mlflow is not None else None
        app = create_app(self.ctx, self.wakeup, self._on_startup, self._on_shutdown,
                         mlflow_socket=socket)
        self.app_state = app.state
        return app

    def _on_startup(self) -> None:
        if self.mlflow is not None:
            self.mlflow.wait_ready()
        self.ctx.dispatcher.start()
        try:
            plugins.record_missing_digests(self.ctx)
        except Exception:  # noqa: BLE001 - an object store away must not stop the start
            log.exception("could not record the digests of the custom plugins")
        reaper.recover(self.ctx, EMBEDDED_PREFIX)
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

    def _keep_books(self) -> None:
        rounds = 0
        while not self._stop.wait(REAP_INTERVAL_S):
            rounds += 1
            try:
                reaper.reap(self.ctx)
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
        app = self.build()
        config = uvicorn.Config(
            app,
            host=self.settings.host,
            port=self.settings.port,
            log_level=self.settings.log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
            # A client must finish its request head in time (bodies: restapi/limits.py).
            http=head_timeout_protocol(AutoHTTPProtocol, self.settings.request_timeout_s),
            log_config=None,  # uvicorn's records go through our handler (text or JSON)
        )
        server = _Uvicorn(config, on_exit=self._on_signal)
        # uvicorn re-raises the signal that stopped it once it is done; with this handler
        # in place that re-raise is a no-op, so a SIGTERM stop exits 0.
        signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            server.run()
        finally:
            if self.mlflow is not None:
                self.mlflow.stop()

    def _on_signal(self) -> None:
        # Release the long-polling claims now: uvicorn waits for open requests to end
        # before it shuts the application down.
        self.app_state.shutting_down = True
        self.wakeup.notify()


class _Uvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_exit) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig, frame) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)

