"""The worker process: pull jobs from the server (default) or take them from RQ queues.

Pull mode: claim a job over HTTP (long poll), run it, repeat. RQ mode: an RQ ``Worker``
listens on the RQ queues named like the Dioptra queues; its task
``dioptra.worker.rq_task.run_job(job_id)`` claims that one job over HTTP and runs it.
Either way a thread posts this worker's heartbeat every 5 s.

Stopping: the first SIGTERM/SIGINT stops the worker after the current job; a second one
stops the current job too (its entry point is killed and the job reported failed).
Never import torch here (nor anything that does): RQ forks its work horses from here.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import tempfile
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from dioptra.worker.api import ServerAPI, ServerAPIError
from dioptra.worker.sandbox import announcement as sandbox_announcement

log = logging.getLogger("dioptra.worker")

WORKER_HEARTBEAT_S = 5.0
CLAIM_WAIT_S = 10.0
# Read by dioptra.worker.rq_task.run_job in RQ work horses.
ENV_SERVER_URL = "DIOPTRA_SERVER_URL"
ENV_TOKEN = "DIOPTRA_API_TOKEN"
ENV_WORKER_ID = "DIOPTRA_WORKER_ID"
ENV_WORK_DIR = "DIOPTRA_WORKDIR"  # the v0 worker's name for its scratch directory


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def default_work_root() -> Path:
    configured = os.environ.get(ENV_WORK_DIR)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "dioptra-worker"


def run_worker(
    server_url: str,
    token: str | None,
    queues: list[str] | None,
    worker_id: str | None,
    work_root: Path | None,
    redis_url: str | None,
    once: bool = False,
    fork_server_socket: Path | None = None,
) -> int:
    """Run a worker until it is told to stop; return the number of jobs it ran.

    ``queues`` None serves every queue (pull mode only: RQ needs queue names).
    ``once``: burst mode - return as soon as no job is waiting (in pull mode: when a
    claim finds nothing within its 10 s wait).
    ``fork_server_socket``: fork warm jobs from the fork server listening there
    (``fork_host.py``) instead of starting one (pull mode).
    """
    worker_id = worker_id or default_worker_id()
    if token:
        # MLflow's client sends it as a bearer token (a server's own MLflow sits behind
        # the API's token check); an MLflow token set for an external MLflow wins.
        os.environ.setdefault("MLFLOW_TRACKING_TOKEN", token)
    ok, described = sandbox_announcement()
    (log.info if ok else log.warning)("jobs: %s", described)
    work_root = Path(work_root) if work_root is not None else default_work_root()
    work_root.mkdir(parents=True, exist_ok=True)
    queues = list(queues) if queues else None
    if redis_url and not queues:
        raise ValueError("an RQ worker needs the names of its queues (--queue NAME)")
    beat = _WorkerHeartbeat(ServerAPI(server_url, token, retries=0), worker_id, queues)
    beat.start()
    try:
        if redis_url:
            assert queues is not None
            return _run_rq(server_url, token, queues, worker_id, work_root, redis_url, once)
        return _run_pull(ServerAPI(server_url, token), queues, worker_id, work_root, once,
                         fork_server_socket)
    finally:
        beat.stop()


# -- pull mode ---------------------------------------------------------------------------


class _StopNow(Exception):
    """Raised by the signal handler to abandon an idle claim request."""


class _Stopper:
    """SIGTERM/SIGINT: the first stops the loop after the job, the second the job itself."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.kill = threading.Event()
        self.idle = False  # True only while waiting in a claim request

    def install(self) -> dict[int, Any]:
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._handle)
        return previous

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            if not self.kill.is_set():
                log.warning("%s again: stopping the current job", name)
            self.kill.set()
        else:
            log.info("%s: stopping after the current job (send it again to stop the job)", name)
            self.stop.set()
        if self.idle:
            # Waiting for work: leave now rather than after the long poll. (Should the server
            # hand over a job at this very moment, it fails it when its heartbeats stay away.)
            raise _StopNow()


def _run_pull(
    api: ServerAPI, queues: list[str] | None, worker_id: str, work_root: Path, once: bool,
    fork_server_socket: Path | None = None,
) -> int:
    pool = warm_pool(work_root, fork_server_socket)
    if pool is not None:
        pool.prepare()  # first: it imports the ML stack while this process imports mlflow
    # Import mlflow now, while idle, not when the first job is waiting (seconds).
    import mlflow  # noqa: F401

    from dioptra.worker.execute import execute_job

    stopper = _Stopper()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = stopper.install() if in_main_thread else {}
    served = "every queue" if queues is None else ", ".join(queues)
    log.info("worker %s pulling jobs from %s for %s", worker_id, api.base_url, served)
    jobs_run = 0
    failures = 0
    try:
        while not stopper.stop.is_set():
            if pool is not None:
                pool.prepare()  # the next job's interpreter imports while we wait
                pool.wait_ready(WARM_READY_WAIT_S, stopper.stop.is_set)
            try:
                stopper.idle = True
                spec = api.claim(worker_id, queues, wait=CLAIM_WAIT_S)
            except ServerAPIError as exc:
                if exc.status_code in (401, 403):
                    raise  # a wrong token does not fix itself
                failures += 1
                delay = min(2.0 * failures, 30.0)
                log.warning("claim failed (%s); trying again in %.0fs", exc, delay)
                stopper.stop.wait(delay)
                continue
            finally:
                stopper.idle = False
            failures = 0
            if spec is None:
                if once:
                    break
                continue
            log.info("job %s claimed (entry point %s)", spec.job_id, spec.entry_point)
            warm = pool.take() if pool is not None else None
            execute_job(
                api, spec, worker_id, work_root, stop_requested=stopper.kill.is_set,
                sandbox=pool.sandbox if warm is not None and pool is not None else None,
                warm=warm, on_command=pool.note if pool is not None else None,
            )
            jobs_run += 1
    except _StopNow:
        pass
    finally:
        if pool is not None:
            pool.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        api.close()
    log.info("worker %s stopped after %d job(s)", worker_id, jobs_run)
    return jobs_run


# A worker claims once its interpreter is ready (so that, of several workers, a ready one
# gets the job), but not later than this: a slow import must not hold jobs back for long.
WARM_READY_WAIT_S = 60.0


def warm_pool(work_root: Path, fork_server_socket: Path | None = None) -> Any:
    """The worker's warm interpreters (None: switched off, or the sandbox cannot run);
    forked from the fork server at ``fork_server_socket`` if given and forking."""
    from dioptra.worker import warm
    from dioptra.worker.execute import entry_point_environment
    from dioptra.worker.sandbox import SandboxUnavailable
    from dioptra.worker.sandbox import from_environment as sandbox_from_environment

    if not warm.enabled():
        log.info("warm start is off (%s=0): every job starts a fresh interpreter",
                 warm.ENV_WARM)
        return None
    try:
        sandbox = sandbox_from_environment()
    except (SandboxUnavailable, ValueError):
        return None  # every job fails with the reason; nothing to prepare
    from dioptra.worker import forks

    def environment(plugins: Path, home: Path) -> dict[str, str]:
        return entry_point_environment(plugins, home, work_root, {})

    if forks.forking(sandbox):
        return forks.ForkPool(work_root, sandbox, environment, shared=fork_server_socket)
    return warm.WarmPool(work_root, sandbox, environment)


# -- RQ mode -----------------------------------------------------------------------------


def _run_rq(
    server_url: str,
    token: str | None,
    queues: list[str],
    worker_id: str,
    work_root: Path,
    redis_url: str,
    once: bool,
) -> int:
    from redis import Redis

    # The task runs in forked work horses and finds its settings in the environment.
    os.environ[ENV_SERVER_URL] = server_url
    os.environ[ENV_WORKER_ID] = worker_id
    os.environ[ENV_WORK_DIR] = str(work_root)
    if token:
        os.environ[ENV_TOKEN] = token
    else:
        os.environ.pop(ENV_TOKEN, None)
    # Imported once here rather than in every forked work horse (seconds per job). mlflow
    # starts no threads on import and does not import torch, so forking after it is safe.
    import mlflow  # noqa: F401

    worker = _rq_worker_class()(queues, connection=Redis.from_url(redis_url))
    log.info(
        "worker %s (RQ worker %s) taking jobs from RQ queues %s at %s",
        worker_id,
        worker.name,
        ", ".join(queues),
        redis_url,
    )
    from dioptra.worker import rq_task

    rq_task.FORK_SERVER = _rq_fork_server(work_root)
    try:
        worker.work(burst=once)
    finally:
        if rq_task.FORK_SERVER is not None:
            rq_task.FORK_SERVER.close()
            rq_task.FORK_SERVER = None
    return worker.successful_job_count + worker.failed_job_count


def _rq_fork_server(work_root: Path) -> Any:
    """The fork server the work horses' jobs are forked from (None: they start cold).
    Started from this (the main) thread, which RQ's loop keeps alive as long as it."""
    from dioptra.worker.forks import ForkPool

    pool = warm_pool(work_root)
    if not isinstance(pool, ForkPool):
        if pool is not None:
            log.info("warm start: RQ jobs start cold (this worker cannot fork them into "
                     "their sandbox)")
        return None
    pool.prepare()
    return pool.server


def _rq_worker_class() -> type:
    from rq import Worker
    from rq.utils import now

    class DioptraRQWorker(Worker):
        """RQ's forking worker, with a cold shutdown that lets the job report ``failed``.

        RQ's second signal SIGKILLs the work horse; the job's entry point, in a process
        group of its own, would live on and the job would never be reported. Instead the
        horse gets SIGTERM (``run_job`` turns it into "stop the job"); a third signal
        falls back to RQ's SIGKILL.
        """

        _horse_terminated = False

        def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
            shutdown_at = getattr(self, "_shutdown_requested_date", None)
            if shutdown_at is not None and (now() - shutdown_at).total_seconds() < 1:
                return  # the same stop delivered twice (RQ ignores these as well)
            if self.horse_pid and not self._horse_terminated:
                self._horse_terminated = True
                log.warning("stopping the current job (send the signal again to kill it)")
                try:
                    os.kill(self.horse_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                return
            super().request_force_stop(signum, frame)

    return DioptraRQWorker


# -- worker heartbeat --------------------------------------------------------------------


class _WorkerHeartbeat:
    def __init__(self, api: ServerAPI, worker_id: str, queues: list[str] | None) -> None:
        self.api = api
        self.worker_id = worker_id
        self.queues = queues
        self.hostname = socket.gethostname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-heartbeat", daemon=True)
        self._healthy = True

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.api.heartbeat(self.worker_id, self.queues, self.hostname)
                if not self._healthy:
                    log.info("the server answers heartbeats again")
                self._healthy = True
            except Exception as exc:  # noqa: BLE001 - keep beating whatever happened
                if self._healthy:  # say it once, not every 5 s
                    log.warning("worker heartbeat failed: %s", exc)
                self._healthy = False
            if self._stop.wait(WORKER_HEARTBEAT_S):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.api.close()


# -- command line ------------------------------------------------------------------------
# The one definition of the worker's options: `dioptra worker` and `python -m
# dioptra.worker` both use it.

DESCRIPTION = (
    "Run a Dioptra worker. It talks to the Dioptra server over HTTP only (the worker API "
    "under /api/v0/worker) and runs one job at a time: it downloads the workflow archive "
    "and custom task plugins, creates the MLflow run, runs the MLproject entry point and "
    "streams its output to the job log. Without --redis-url it pulls jobs from the server; "
    "with it, it takes them from the RQ queues named like the Dioptra queues."
)
EPILOG = (
    "Stop it with SIGTERM or Ctrl+C: the running job finishes first. A second signal stops "
    "the job (reported failed). Example: dioptra worker --server http://localhost:5000 "
    "--queue tensorflow_cpu"
)
LOG_LEVELS = ["debug", "info", "warning", "error"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        help="base URL of the Dioptra server, e.g. http://localhost:5000 "
        f"(default: ${ENV_SERVER_URL}, else $DIOPTRA_RESTAPI_URI)",
    )
    parser.add_argument(
        "--token", help=f"API bearer token, when the server requires one (default: ${ENV_TOKEN})"
    )
    parser.add_argument("--token-file", help=f"file holding the API token (else ${ENV_TOKEN})")
    parser.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="serve this queue; repeat for several (default: every queue; "
        "required with --redis-url)",
    )
    parser.add_argument(
        "--redis-url",
        help="take jobs from RQ at this Redis URL (e.g. redis://localhost:6379/0) instead of "
        "pulling them from the server",
    )
    parser.add_argument(
        "--worker-id",
        help="name of this worker as the server shows it (default: <hostname>-<pid>-<random>)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="scratch directory for the jobs' temporary folders "
        f"(default: ${ENV_WORK_DIR}, else <tmp>/dioptra-worker)",
    )
    parser.add_argument(
        "--no-warm-start",
        action="store_true",
        help="start every job's entry point in a fresh interpreter (default: a plain "
        "`python script.py` runs in a fork of an interpreter that imported the ML stack "
        "once; also $DIOPTRA_WARM_START=0)",
    )
    parser.add_argument(
        "--fork-server-socket",
        type=Path,
        metavar="PATH",
        help="fork warm jobs from the fork server listening at PATH, shared with other "
        "workers of this machine (python -m dioptra.worker.fork_host; the embedded workers "
        "do this), instead of starting one of this worker's own",
    )
    parser.add_argument(
        "--once", action="store_true", help="burst mode: exit as soon as no job is waiting"
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="log level (default: $DIOPTRA_WORKER_LOG_LEVEL, else $DIOPTRA_LOG_LEVEL, "
        "else info)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text, or one JSON object per line (default: $DIOPTRA_LOG_FORMAT, else text)",
    )


def log_settings(level: str | None = None, fmt: str | None = None) -> tuple[str, str]:
    """A worker's log level and format: as given, else from the environment."""
    env = os.environ
    level = level or env.get("DIOPTRA_WORKER_LOG_LEVEL") or env.get("DIOPTRA_LOG_LEVEL")
    return (level or "info").lower(), fmt or env.get("DIOPTRA_LOG_FORMAT") or "text"


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill what the flags left out from the environment (a flag given always wins) and
    refuse what cannot run; ``parser.error`` exits with status 2."""
    env = os.environ
    args.server = args.server or env.get(ENV_SERVER_URL) or env.get("DIOPTRA_RESTAPI_URI")
    if not args.server:
        parser.error(f"--server is required (or set {ENV_SERVER_URL})")
    if args.redis_url and not args.queues:
        parser.error("--redis-url needs at least one --queue NAME")
    if args.token is None and args.token_file:
        try:
            args.token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            parser.error(f"--token-file: {exc}")
    args.token = args.token or env.get(ENV_TOKEN) or None
    level = args.log_level
    args.log_level, args.log_format = log_settings(args.log_level, args.log_format)
    if args.log_level not in LOG_LEVELS:
        parser.error(f"the log level must be one of {', '.join(LOG_LEVELS)}, "
                     f"got {level or args.log_level!r}")
    if args.no_warm_start:
        os.environ["DIOPTRA_WARM_START"] = "0"
    return args


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    args = resolve(args, parser)
    from dioptra import logs

    logs.configure(args.log_level, args.log_format)
    try:
        run_worker(
            args.server,
            args.token,
            args.queues,
            args.worker_id,
            args.work_dir,
            args.redis_url,
            once=args.once,
            fork_server_socket=args.fork_server_socket,
        )
    except (ServerAPIError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dioptra.worker", description=DESCRIPTION, epilog=EPILOG
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run(parser.parse_args(argv), parser)
