"""One fork server for all the embedded workers of a server.

    python -m dioptra.worker.fork_host --socket PATH --work-dir DIR

Each worker would otherwise start a fork server of its own: seconds of imports per
worker at start, when MLflow starts too and the first jobs wait, and about 450 MB
resident each. This process keeps one (``forks.ForkServer``, restarted if it dies) and
listens at PATH; the workers (``--fork-server-socket PATH``) connect to it and have their
jobs forked there, each in its own sandbox as before. A worker that goes takes its
running jobs with it (the server kills them when its connection closes); this process
going (SIGTERM, or its parent dying) ends the fork server and every job in it, so it is
stopped after the workers.

Where the workers cannot fork (warm start off, or a non-root worker with bubblewrap), it
serves nothing and exits: they decide the same from the same settings.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from dioptra.processes import exit_now
from dioptra.worker import forks
from dioptra.worker.main import log_settings, warm_pool

log = logging.getLogger("dioptra.worker")

RESTART_DELAYS_S = (1.0, 5.0, 30.0)  # after a fork server's death, while it keeps dying


def serve(socket_path: Path, work_root: Path, stop: threading.Event) -> None:
    """Keep the shared fork server until ``stop`` (call from the main thread: the
    server dies with the thread that started it)."""
    pool = warm_pool(work_root)
    if not isinstance(pool, forks.ForkPool):
        log.info("warm start: the embedded workers' jobs are not forked; no fork server")
        if pool is not None:
            pool.close()
        return
    failures = 0  # in a row, each within a minute of its start
    while not stop.is_set():
        started = time.monotonic()
        ended = _keep_one(socket_path, work_root, pool, stop)
        if stop.is_set():
            return
        failures = failures + 1 if time.monotonic() - started < 60 else 1
        delay = RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S)) - 1]
        log.warning("warm start: the workers' fork server %s; their jobs start cold until "
                    "another is ready (in %.0f s)", ended, delay)
        stop.wait(delay)


def _keep_one(socket_path: Path, work_root: Path, pool: forks.ForkPool,
              stop: threading.Event) -> str:
    """Run one fork server until ``stop`` or its end; say how it ended. The socket is
    there only while it runs: meanwhile a worker's jobs start cold rather than wait on a
    connection nobody answers."""
    listener = server = None
    try:
        listener = forks.listen(socket_path)
        server = pool.new_server(listener)
        said = ""
        while server.alive() and not stop.is_set():
            if not said and server.state() != "starting":
                said = server.state()
                log.info("warm start: the workers' fork server says %s", said)
            stop.wait(0.5)
        return f"ended (exit {server.process.poll()})"
    except Exception as exc:  # noqa: BLE001 - the workers go on, cold
        log.exception("warm start: could not start the workers' fork server")
        return f"could not start ({exc})"
    finally:
        if server is not None:
            server.close()
        if listener is not None:
            listener.close()
            socket_path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dioptra.worker.fork_host",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, required=True,
                        help="where the workers connect (a Unix socket made here)")
    parser.add_argument("--work-dir", type=Path, required=True,
                        help="the workers' --work-dir (the jobs' folders)")
    args = parser.parse_args(argv)
    from dioptra import logs

    logs.configure(*log_settings())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    args.work_dir.mkdir(parents=True, exist_ok=True)
    serve(args.socket, args.work_dir, stop)
    return 0


if __name__ == "__main__":
    exit_now(main())
