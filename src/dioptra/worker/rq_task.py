"""The RQ task: run in an RQ work horse started by ``dioptra.worker.main.run_worker``.

Only the Dioptra job id travels through Redis. The task claims that job from the server
(the claim is atomic, so a job enqueued twice still runs once) and runs it like a pulled
job. The server URL, token and worker id come from the environment that ``run_worker``
set before RQ forked the horse.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger("dioptra.worker")

# The RQ worker's fork server (``forks.ForkServer``), started by ``main._run_rq`` before
# RQ forks its work horses: each horse inherits the connection and has its job forked
# from it. None: warm start is off, or this worker cannot fork jobs into their sandbox.
FORK_SERVER: Any = None


def run_job(job_id: str) -> str:
    """Claim and run the Dioptra job ``job_id``; return its final status.

    Returns ``"not claimed"`` when the server does not hand the job over (another worker
    has it, or it was cancelled meanwhile). A failed job is not an RQ failure: the server
    keeps the job's status, and dependents are released by the server, not by RQ.
    """
    from dioptra.worker.api import ServerAPI
    from dioptra.worker.execute import execute_job
    from dioptra.worker.main import (
        ENV_SERVER_URL,
        ENV_TOKEN,
        ENV_WORKER_ID,
        default_work_root,
        default_worker_id,
    )

    server_url = os.environ.get(ENV_SERVER_URL)
    if not server_url:
        raise RuntimeError(
            f"{ENV_SERVER_URL} is not set: run RQ workers with `python -m dioptra.worker "
            "--redis-url ...`, which sets it"
        )
    worker_id = os.environ.get(ENV_WORKER_ID) or default_worker_id()
    api = ServerAPI(server_url, os.environ.get(ENV_TOKEN) or None)
    try:
        spec = api.claim(worker_id, None, wait=0, job_id=job_id)
        if spec is None:
            log.info("job %s was not handed over (taken or cancelled); nothing to do", job_id)
            return "not claimed"
        stop = threading.Event()
        previous = _on_sigterm(stop)
        ticket = _fork_ticket()
        try:
            return execute_job(
                api, spec, worker_id, default_work_root(), stop_requested=stop.is_set,
                sandbox=ticket.sandbox if ticket is not None else None, warm=ticket,
            )
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    finally:
        api.close()


def _fork_ticket() -> Any:
    """The job's folder (in the worker's work root, the server's), to be run by a fork of
    the RQ worker's fork server (None: the job starts cold)."""
    if FORK_SERVER is None or not FORK_SERVER.usable():
        return None
    return FORK_SERVER.ticket()


def _on_sigterm(stop: threading.Event) -> Any:
    """Turn SIGTERM (the worker's cold shutdown) into "stop the job and report it".

    Only possible in the main thread; returns the previous handler to restore.
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def handle(signum: int, frame: FrameType | None) -> None:
        log.warning("SIGTERM: stopping the job")
        stop.set()

    return signal.signal(signal.SIGTERM, handle)
