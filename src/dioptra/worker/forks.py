"""Warm start by forking: the worker's side of the fork server (``fork_server.py``).

One interpreter per worker imports the ML stack once; each job whose command is a plain
``python SCRIPT`` / ``python -m MODULE`` is a fresh fork of it, in a sandbox of its own
(jail.py), so that its start costs a fork instead of seconds of imports, and the next
job needs nothing prepared. ``ForkPool`` offers the same interface as ``warm.WarmPool``
(``take`` gives a ``ForkTicket``, which behaves as a ``WarmInterpreter``), and falls back
to it where forking is not possible: a non-root worker with bubblewrap (it cannot give
a forked job a uid of its own), or a server that still has threads after its imports.
Workers on one machine can share a fork server (the embedded ones do, ``fork_host.py``):
their pools connect to the socket it listens on instead of starting one each.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from dioptra.folders import remove_tree
from dioptra.processes import die_with_parent
from dioptra.worker.sandbox import Sandbox, python_dirs_in_private_places
from dioptra.worker.warm import BOOT, PythonCall, WarmPool, job_folder, modules

log = logging.getLogger("dioptra.worker")

ENV_FORK = "DIOPTRA_WARM_FORK"


class ForkFailed(OSError):
    """The fork server could not start this job (the worker then runs it cold)."""


def fork_modules(preload: list[str]) -> list[str]:
    """What the fork server imports: the builtins are left to each job, which imports
    them from its own plugin folder (their paths are the job's, as in a cold start);
    what they import (ART, torch, ...) is in the list on its own."""
    return [m for m in preload if m.split(".")[0] != "dioptra_builtins"]


class ForkedProcess:
    """A job forked by the fork server, supervised by ``runner.run_command`` like the
    ``Popen`` of a cold job: ``pid`` leads its process group; the exit status comes from
    the fork server (its parent) over the status pipe."""

    def __init__(self, pid: int, stdout, status_fd: int, said: str = "") -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._status = status_fd
        self._text = said  # what the server said after the pid (an early "exit")

    def poll(self) -> int | None:
        self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired("forked job", timeout or 0)
            self._read(left)
        return self.returncode

    def _read(self, wait_s: float | None) -> None:
        if self._status < 0 or not select.select([self._status], [], [], wait_s)[0]:
            return
        data = os.read(self._status, 256)
        self._text += data.decode(errors="replace")
        for line in self._text.splitlines():
            if line.startswith("exit "):
                self.returncode = int(line.split()[1])
        if not data and self.returncode is None:
            self.returncode = -signal.SIGKILL  # the fork server died, and the job with it
        if self.returncode is not None:
            os.close(self._status)
            self._status = -1


class _ForkChannel:
    """A connection to a fork server: what it said it is, and the jobs it forks for us."""

    work_root: Path
    sandbox: Sandbox
    _sock: socket.socket
    _state: str = "starting"  # then "ready <rss kB>" or "unforkable ..."

    def alive(self) -> bool:
        raise NotImplementedError

    def state(self, wait_s: float = 0) -> str:
        """What it said it is: ``starting`` (importing), ``ready <rss kB>``,
        ``unforkable ...`` or ``dead``."""
        if self._state == "starting" and self._sock.fileno() >= 0 and \
                select.select([self._sock], [], [], wait_s)[0]:
            self._state = self._sock.recv(4096).decode(errors="replace") or "dead"
        if not self.alive():
            self._state = "dead"
        return self._state

    def ready_rss_kb(self, wait_s: float = 0) -> int | None:
        words = self.state(wait_s).split()
        return int(words[1]) if len(words) == 2 and words[0] == "ready" else None

    def usable(self) -> bool:
        """Alive and not known to be unable to fork (it may still be importing)."""
        state = self.state()
        return state == "starting" or state.startswith("ready")

    def fork(self, job: Mapping, wait_s: float = 120) -> ForkedProcess:
        """Start ``job`` (as ``fork_server`` takes it) in a fresh fork; waits while the
        server is still importing (at most ``wait_s``: then the job starts cold)."""
        if not self.alive():
            raise ForkFailed("the fork server has ended")
        out_r, out_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            socket.send_fds(self._sock, [json.dumps(job).encode()], [out_w, status_w])
        except OSError:
            for fd in (out_r, status_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(status_w)
        text = ""
        deadline = time.monotonic() + wait_s
        while "\n" not in text:
            ready = select.select([status_r], [], [], max(deadline - time.monotonic(), 0))[0]
            data = os.read(status_r, 256) if ready else b""
            if not data:
                break
            text += data.decode(errors="replace")
        first, _, rest = text.partition("\n")
        if not first.startswith("pid "):
            os.close(out_r)
            os.close(status_r)
            raise ForkFailed(f"the fork server did not start the job ({first or 'no answer'})")
        return ForkedProcess(int(first.split()[1]), os.fdopen(out_r, "rb", buffering=0),
                             status_r, rest)

    def ticket(self) -> ForkTicket:
        """The next job's folder, made now, to be run by a fork of this server."""
        return ForkTicket(self, *job_folder(self.work_root, self.sandbox))


class ForkServer(_ForkChannel):
    """The worker's fork server process, started from the worker's loop thread (it dies
    with that thread). ``listener``: a listening socket on which other workers may ask
    for forks too (``SharedForkServer``)."""

    def __init__(self, work_root: Path, sandbox: Sandbox,
                 environment: Callable[[Path, Path], dict[str, str]], preload: list[str],
                 listener: socket.socket | None = None) -> None:
        work_root.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="fork-server-", dir=work_root))
        self.work_root = work_root
        self.sandbox = sandbox
        (self.folder / "home").mkdir()
        env = environment(self.folder / "plugins", self.folder / "home")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = (theirs.fileno(),) if listener is None else (theirs.fileno(), listener.fileno())
        try:
            command = shlex.join(["python", str(BOOT), "--serve", ",".join(map(str, fds)),
                                  *preload])
            argv = sandbox.wrap_fork_server(command, self.folder, work_root)
            self.process = subprocess.Popen(
                [*die_with_parent("KILL"), *argv], cwd=str(self.folder), env=env,
                stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=fds)
        except BaseException:
            ours.close()
            with contextlib.suppress(OSError):
                remove_tree(self.folder)
            raise
        finally:
            theirs.close()
        self._sock = ours
        self._owner = os.getpid()

    def alive(self) -> bool:
        """Also right in a process forked from the one that started it (an RQ work
        horse), which is not its parent."""
        if os.getpid() == self._owner:
            return self.process.poll() is None
        try:
            os.kill(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def close(self) -> None:
        self._sock.close()  # end of file: it exits, and jobs still running die with it
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(OSError):
            remove_tree(self.folder)


class SharedForkServer(_ForkChannel):
    """A connection to a fork server another process keeps and listens for (``listen``).
    The jobs forked for us die when we close it."""

    def __init__(self, path: Path, work_root: Path, sandbox: Sandbox) -> None:
        self.work_root = work_root
        self.sandbox = sandbox
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with unix_address(path) as address:
                self._sock.connect(address)
        except OSError:
            self._sock.close()
            raise

    def alive(self) -> bool:
        if self._sock.fileno() < 0:
            return False
        poll = select.poll()
        poll.register(self._sock, select.POLLIN)
        return not any(events & (select.POLLHUP | select.POLLERR) for _, events in poll.poll(0))

    def close(self) -> None:
        self._sock.close()


@contextlib.contextmanager
def unix_address(path: Path):
    """``path`` as an AF_UNIX address: through its folder's descriptor when it is longer
    than the 108 bytes such an address may be (a deep work dir)."""
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def listen(path: Path) -> socket.socket:
    """The socket where workers of this uid ask a shared fork server for forks."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        with unix_address(path) as address:
            sock.bind(address)
        path.chmod(0o600)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


class ForkTicket:
    """The next job's folder and uid, to be run by a fork of the server: what
    ``WarmPool.take`` gives, for ``execute.py``."""

    def __init__(self, server: _ForkChannel, folder: Path, uid: int | None) -> None:
        self.server = server
        self.folder = folder
        self.sandbox = server.sandbox
        self.uid = uid
        self.handed_over = False

    def alive(self) -> bool:
        return self.server.usable()

    def ready_rss_kb(self, wait_s: float = 0) -> int | None:
        return self.server.ready_rss_kb(wait_s)

    def start(self, call: PythonCall, env: Mapping[str, str], cwd: Path) -> ForkedProcess:
        limits = self.sandbox.limits
        job = {
            "kind": call.kind, "target": call.target, "args": list(call.args),
            "orig_argv": list(call.argv), "env": dict(env), "cwd": str(cwd),
            "limits": {"memory_bytes": limits.memory_bytes, "processes": limits.processes,
                       "file_bytes": limits.file_bytes},
            "sandbox": None if not self.sandbox.enabled else {
                "job_dir": str(self.folder), "work_root": str(self.server.work_root),
                "tmp_size": max(limits.file_bytes, 0), "uid": self.uid,
                "keep": [str(p) for p in python_dirs_in_private_places()]},
        }
        self.handed_over = True
        return self.server.fork(job)

    def discard(self) -> None:
        pass  # nothing runs until ``start``

    def remove(self) -> None:
        with contextlib.suppress(OSError):  # as a cold job's folder: never fails the job
            remove_tree(self.folder)


# How long a pool waits, after its start, for the shared fork server's socket to appear
# (its keeper starts beside the workers); later, a job finding none starts cold.
SHARED_START_WAIT_S = 10.0


class ForkPool:
    """``WarmPool``'s interface over one fork server (or, where it cannot fork, over a
    ``WarmPool``). Call from the worker's loop thread."""

    def __init__(self, work_root: Path, sandbox: Sandbox,
                 environment: Callable[[Path, Path], dict[str, str]],
                 preload: list[str] | None = None, shared: Path | None = None) -> None:
        self.work_root = work_root
        self.sandbox = sandbox
        self.environment = environment
        self.preload = modules() if preload is None else preload
        self.shared = shared  # the socket of the fork server this pool shares, if any
        self.server: ForkServer | SharedForkServer | None = None
        self.fallback: WarmPool | None = None
        self.wanted = True
        self._born = time.monotonic()

    def note(self, usable: bool) -> None:
        self.wanted = usable
        self.prepare()

    def prepare(self) -> None:
        if self.fallback is not None:
            self.fallback.note(self.wanted)
            return
        if self.server is not None:
            state = self.server.state()
            if state.startswith("unforkable"):
                log.warning("warm start: the fork server cannot fork safely (%s); each job "
                            "gets an interpreter of its own instead", state)
                self._fall_back()
                return
            if state != "dead":
                return
            log.warning("warm start: the fork server ended; %s",
                        "connecting again" if self.shared else "starting another")
            self.server.close()
            self.server = None
        if not self.wanted:
            return  # the server is started when a job could use it
        if self.shared is not None:
            try:
                self.server = SharedForkServer(self.shared, self.work_root, self.sandbox)
            except OSError as exc:  # not listening (yet): the next job tries again
                log.debug("warm start: no fork server at %s yet (%s)", self.shared, exc)
            return
        try:
            self.server = self.new_server()
        except Exception:  # noqa: BLE001 - warm start is an optimisation only
            log.exception("could not start the fork server; jobs start cold")

    def new_server(self, listener: socket.socket | None = None) -> ForkServer:
        """A fork server for this pool's jobs (``listener``: see ``ForkServer``)."""
        return ForkServer(self.work_root, self.sandbox, self.environment,
                          fork_modules(self.preload), listener)

    def wait_ready(self, timeout_s: float, stop: Callable[[], bool]) -> None:
        if self.fallback is not None:
            self.fallback.wait_ready(timeout_s, stop)
            return
        deadline = time.monotonic() + timeout_s
        while not stop() and time.monotonic() < deadline:
            if self.server is None and self.shared is not None and self.wanted \
                    and time.monotonic() < self._born + SHARED_START_WAIT_S:
                time.sleep(0.1)  # its keeper is starting with us
                self.prepare()
                continue
            if self.server is None or self.server.state(0.2) != "starting":
                return

    def take(self) -> ForkTicket | object | None:
        self.prepare()
        if self.fallback is not None:
            return self.fallback.take()
        if self.server is None or not self.server.usable():
            return None
        return self.server.ticket()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.fallback is not None:
            self.fallback.close()

    def _fall_back(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.fallback = WarmPool(self.work_root, self.sandbox, self.environment, self.preload)
        self.fallback.prepare()


def forking(sandbox: Sandbox, env: Mapping[str, str] = os.environ) -> bool:
    """Whether warm start forks (default where the sandbox allows it) or prepares one
    interpreter per job (``DIOPTRA_WARM_FORK=0``, or a non-root worker with bubblewrap)."""
    wanted = (env.get(ENV_FORK) or "1").strip().lower() not in {"0", "false", "no", "off"}
    return wanted and sandbox.forks_jobs()
