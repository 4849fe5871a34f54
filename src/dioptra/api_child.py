"""One API process of a multi-process server (started by dioptra/api_processes.py).

It serves HTTP on the socket it inherited and nothing else: MLflow, the embedded
workers, the reaper and redispatch run once, in the main process. What crosses
processes: the generations (cache invalidation, job wake-ups, MLflow's state) and the
browser sessions, both under the data dir's run folder.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

from dioptra import logs, serving
from dioptra.config import Settings
from dioptra.db import Database
from dioptra.dispatch.wakeup import WakeUp
from dioptra.generations import API_READY, MLFLOW, Generations
from dioptra.processes import exit_now
from dioptra.restapi.app import create_app
from dioptra.restapi.shared_sessions import FileSessions
from dioptra.server import (
    MLFLOW_FAILED,
    MLFLOW_FAILURE_FILE,
    MLFLOW_STARTING,
    Dispatchers,
    own_mlflow_tracking,
)
from dioptra.services.context import ServiceContext
from dioptra.services.tracking import Readiness, Tracking
from dioptra.storage import open_store


class WakeWorkers:
    """This process's share of the embedded dispatch: the workers live in the main
    process's care and long-poll; a ready job only has to wake them, wherever they wait."""

    def __init__(self, wakeup: WakeUp) -> None:
        self.wakeup = wakeup

    def start(self) -> None:
        pass

    def job_ready(self, job_id: str, queue_name: str, timeout_seconds: int) -> None:
        self.wakeup.notify()

    def redispatch(self, jobs: list[tuple[str, str, int]]) -> None:
        pass

    def stop(self) -> None:
        pass


def follow_mlflow(generations: Generations, readiness: Readiness, run_dir: Path) -> None:
    """Settle ``readiness`` as the main process's MLflow settles."""
    stop = threading.Event()
    while generations.read(MLFLOW) == MLFLOW_STARTING:
        stop.wait(0.1)
    failure = None
    if generations.read(MLFLOW) == MLFLOW_FAILED:
        path = run_dir / MLFLOW_FAILURE_FILE
        failure = path.read_text() if path.exists() else "see the server's log"
    readiness.settle(failure=failure)


def _tracking(settings: Settings, generations: Generations, run_dir: Path) -> Tracking:
    if settings.mlflow_tracking_uri:
        return Tracking(settings.mlflow_tracking_uri)
    readiness = Readiness()
    threading.Thread(target=follow_mlflow, args=(generations, readiness, run_dir),
                     name="mlflow-follow", daemon=True).start()
    return own_mlflow_tracking(settings, readiness)


def _dispatcher(settings: Settings, wakeup: WakeUp) -> Dispatchers:
    members: list = []
    if settings.redis_url:
        from dioptra.dispatch.rq import RQDispatcher

        # An enqueue that fails here is not retried by this process: the main process's
        # redispatch finds the job missing from Redis and enqueues it again.
        members.append(RQDispatcher(settings.redis_url))
    if settings.effective_workers > 0:
        members.append(WakeWorkers(wakeup))
    return Dispatchers(members)


def main() -> int:
    handed = sys.stdin.read()  # the application is imported by now: wait for the settings
    if not handed:
        return 0  # the server stopped before it handed them over
    payload = json.loads(handed)
    settings = Settings(**payload["settings"])
    logs.configure(settings.log_level, payload["log_format"])
    run_dir = Path(payload["run_dir"])
    generations = Generations(run_dir / "generations")
    wakeup = WakeUp(generations)
    db = Database(settings.effective_database_uri)  # migrated by the main process
    ctx = ServiceContext(
        settings=settings,
        db=db,
        store=open_store(settings.effective_storage_url),
        tracking=_tracking(settings, generations, run_dir),
        dispatcher=_dispatcher(settings, wakeup),
    )
    ctx.embedded_instance = payload["embedded_instance"]
    app = create_app(ctx, wakeup, on_startup=lambda: generations.bump(API_READY),
                     on_shutdown=db.dispose,
                     mlflow_socket=payload["mlflow_socket"], generations=generations,
                     sessions=FileSessions(run_dir / "sessions"))

    def on_exit() -> None:
        app.state.shutting_down = True
        wakeup.notify_here()

    sock = socket.socket(fileno=payload["fd"])
    serving.run(app, settings, on_exit=on_exit, sock=sock)
    return 0


if __name__ == "__main__":
    exit_now(main())  # served and shut down, the database disposed of
