"""The sandbox a job's entry point runs in (bubblewrap), its environment and its limits.

A workflow is someone else's code. Inside the sandbox it sees: the system (``/usr``,
``/etc``), the Python installation and packages the worker runs on (read-only), its own
job folder (writable: the unpacked workflow, its storage and home), a private ``/tmp``
and ``/dev/shm``, and a ``/proc`` of its own PID namespace. It does not see the data
dir, the database, the object store, other jobs' folders or the host's processes, and
its environment holds no secret of the worker (only what ``job_environment`` passes).
When it exits, everything it started dies with it (PID namespace), and a dying worker
takes the sandbox with it (``--die-with-parent``).

The network is shared: a job must reach the server's MLflow (with a token scoped to the
job) and may download data. Services on the host's network must therefore ask for
credentials of their own.

Settings (read from the worker's environment; embedded workers inherit the server's):
``DIOPTRA_SANDBOX`` ``auto`` (default: bubblewrap when it works, else a loud warning),
``require`` (fail jobs when it does not work) or ``off``; ``DIOPTRA_JOB_MAX_MEMORY``,
``DIOPTRA_JOB_MAX_PROCESSES``, ``DIOPTRA_JOB_MAX_FILE_SIZE`` (see ``Limits``);
``DIOPTRA_JOB_ENV_PASS`` names worker variables a job may receive (e.g. cloud keys for
its data); ``DIOPTRA_SANDBOX_HIDE`` lists paths to hide even when they lie inside a
visible folder (the embedded dispatcher names the server's data dir).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("dioptra.worker")

ENV_MODE = "DIOPTRA_SANDBOX"
ENV_HIDE = "DIOPTRA_SANDBOX_HIDE"
ENV_PASS = "DIOPTRA_JOB_ENV_PASS"
MODES = ("auto", "require", "off")

# What a job inherits from the worker's environment: locale, terminal, thread counts and
# where Python finds packages (the sandbox shows the worker's sys.path). Everything else
# (tokens, cloud keys, database URLs) stays out unless DIOPTRA_JOB_ENV_PASS names it.
_INHERITED = re.compile(
    r"LANG|LANGUAGE|LC_[A-Z]+|TZ|TERM|PYTHONPATH|PYTHONHASHSEED|PYTHONUNBUFFERED|"
    r"(OMP|OPENBLAS|MKL|NUMEXPR|VECLIB_MAXIMUM)_NUM_THREADS|CUDA_VISIBLE_DEVICES"
)
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_SYSTEM_DIRS = ("/usr", "/etc")
_NEVER_SHOWN = (Path("/"), Path("/tmp"), Path("/dev/shm"))
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# When the worker runs as root, each job runs as a uid of its own from this range: the
# process limit counts per user, and a job must not own the worker's files.
_UID_BASE, _UID_SPAN = 200_000, 100_000
# What the fork server keeps so that each forked job can take namespaces of its own,
# mount its folder, /tmp and /proc, and become its uid; the job drops them all (jail.py).
_FORK_SERVER_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")

_SIZE = re.compile(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``"8G"``, ``"512 MiB"``, ``"1048576"`` -> bytes."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 8G, 512M, 1048576)")
    return int(match[1]) * _UNITS[match[2].upper()]


@dataclass(frozen=True)
class Limits:
    """Per-job resource limits (setrlimit; they apply inside and outside the sandbox).

    memory_bytes: address space of each process (RLIMIT_AS), ``DIOPTRA_JOB_MAX_MEMORY``;
    processes: processes and threads of the job (RLIMIT_NPROC),
    ``DIOPTRA_JOB_MAX_PROCESSES``; file_bytes: largest file it may write (RLIMIT_FSIZE),
    also the size of its private /tmp, ``DIOPTRA_JOB_MAX_FILE_SIZE``. 0 means no limit.
    """

    memory_bytes: int = 8 << 30
    processes: int = 1024
    file_bytes: int = 4 << 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Limits:
        default = cls()
        memory = env.get("DIOPTRA_JOB_MAX_MEMORY")
        processes = env.get("DIOPTRA_JOB_MAX_PROCESSES")
        file_size = env.get("DIOPTRA_JOB_MAX_FILE_SIZE")
        return cls(
            memory_bytes=parse_size(memory) if memory else default.memory_bytes,
            processes=int(processes) if processes else default.processes,
            file_bytes=parse_size(file_size) if file_size else default.file_bytes,
        )

    def prlimit_args(self) -> list[str]:
        args = []
        for flag, value in (("--as", self.memory_bytes), ("--nproc", self.processes),
                            ("--fsize", self.file_bytes)):
            if value > 0:
                args.append(f"{flag}={value}")
        return args

    def describe(self) -> str:
        def size(n: int) -> str:
            return "unlimited" if n <= 0 else f"{n / (1 << 30):g} GiB"

        procs = "unlimited" if self.processes <= 0 else str(self.processes)
        return (f"memory {size(self.memory_bytes)} per process, {procs} processes, "
                f"files up to {size(self.file_bytes)}")


@dataclass(frozen=True)
class Sandbox:
    """How this worker runs entry points: ``enabled`` with bubblewrap, or not (``why``)."""

    enabled: bool
    why: str
    limits: Limits
    hidden: tuple[Path, ...] = ()

    def describe(self) -> str:
        if self.enabled:
            return f"sandbox: bubblewrap ({self.limits.describe()})"
        return f"WARNING: NO SANDBOX: {self.why}. The entry point can read everything the " \
               f"worker can (limits still apply: {self.limits.describe()})"

    def job_uid(self, job_id: str) -> int | None:
        """The uid the job runs as (a job's own when the worker is root), None: the worker's."""
        if not self.enabled or os.geteuid() != 0:
            return None
        return _UID_BASE + zlib.crc32(job_id.encode()) % _UID_SPAN

    def give(self, uid: int | None, paths: Iterable[Path]) -> None:
        """Make ``paths`` (folders, recursively) the job's: the only places it may write."""
        if uid is None:
            return
        for top in paths:
            if not top.exists():
                continue
            os.chown(top, uid, uid)
            for root, dirs, files in os.walk(top):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)

    def wrap(self, command: str, job_dir: Path, cwd: Path, work_root: Path,
             uid: int | None) -> list[str]:
        """The argv that runs ``bash -c command`` in the sandbox (or bare, with limits)."""
        prlimit = [_which("prlimit"), *self.limits.prlimit_args(), "--"]
        if not self.enabled:
            return [*prlimit, "bash", "-c", command]
        argv = [_which("bwrap"), *_namespaces(), *_system_mounts()]
        # The private /tmp first: the worker's Python may live under /tmp (a checkout or a
        # venv there) and must show on top of it.
        tmp_size = ["--size", str(self.limits.file_bytes)] if self.limits.file_bytes > 0 else []
        argv += ["--perms", "1777", *tmp_size, "--tmpfs", "/tmp"]
        argv += ["--perms", "1777", *tmp_size, "--tmpfs", "/dev/shm"]
        visible = _python_dirs()
        argv += _read_only(visible)
        # Other jobs and whatever the worker keeps next to them: hidden under an empty
        # tmpfs, then this job's folder on top, writable.
        for hidden in (*self.hidden, work_root):
            if any(_inside(hidden, v) for v in visible):
                argv += ["--tmpfs", str(hidden)]
        # Last, so that it shows even when it lives under /tmp.
        argv += _make_dirs([job_dir], visible)
        argv += ["--bind", str(job_dir), str(job_dir), "--chdir", str(cwd), "--"]
        if uid is not None:
            # Privileged bubblewrap keeps root's capabilities for this step only: setpriv
            # becomes the job's own uid and empties the bounding set, so nothing (setuid
            # binaries included) can get them back.
            become = [_which("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                      "--inh-caps=-all", "--bounding-set=-all", "--"]
        else:
            become = []
        return [*argv, *prlimit, *become, "bash", "-c", command]

    def forks_jobs(self) -> bool:
        """True when the fork server can give each job this sandbox: bubblewrap as root
        (the forked job enters namespaces of its own and becomes its uid, see jail.py),
        or no sandbox at all."""
        return not self.enabled or os.geteuid() == 0

    def wrap_fork_server(self, command: str, folder: Path, work_root: Path) -> list[str]:
        """The argv that runs the fork server (``bash -c command``): in a bubblewrap
        sandbox that shows what every job may see - all job folders under ``work_root``
        included - and keeps the capabilities a forked job needs to narrow that down to
        its own (jail.py). Its processes share the worker's PID namespace, so that the
        worker can signal a job's process group. Bare when there is no sandbox."""
        if not self.enabled:
            return ["bash", "-c", command]
        argv = [_which("bwrap"),
                *[a for a in _namespaces() if a != "--unshare-pid"], *_system_mounts()]
        argv += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm"]
        visible = _python_dirs()
        argv += _read_only(visible)
        for hidden in self.hidden:
            if any(_inside(hidden, v) for v in visible):
                argv += ["--tmpfs", str(hidden)]
        argv += _make_dirs([work_root], visible)
        argv += ["--bind", str(work_root), str(work_root), "--dir", "/.dioptra-stage"]
        for cap in _FORK_SERVER_CAPS:
            argv += ["--cap-add", cap]
        return [*argv, "--chdir", str(folder), "--", "bash", "-c", command]


def from_environment(env: Mapping[str, str] = os.environ) -> Sandbox:
    """The sandbox this worker can give its jobs, as configured and as this machine allows."""
    limits = Limits.from_env(env)
    mode = (env.get(ENV_MODE) or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{ENV_MODE}={mode!r}: expected one of {', '.join(MODES)}")
    hidden = tuple(Path(p).resolve() for p in (env.get(ENV_HIDE) or "").split(os.pathsep) if p)
    if mode == "off":
        return Sandbox(False, f"switched off ({ENV_MODE}=off)", limits, hidden)
    problem = probe()
    if problem is None:
        return Sandbox(True, "", limits, hidden)
    if mode == "require":
        raise SandboxUnavailable(f"{ENV_MODE}=require, but {problem}")
    return Sandbox(False, problem, limits, hidden)


def announcement(env: Mapping[str, str] = os.environ) -> tuple[bool, str]:
    """(all is well, what to tell the operator) about the sandbox jobs will get."""
    try:
        sandbox = from_environment(env)
    except (SandboxUnavailable, ValueError) as exc:
        return False, f"WARNING: every job will fail: {exc}"
    return sandbox.enabled, sandbox.describe()


class SandboxUnavailable(RuntimeError):
    """DIOPTRA_SANDBOX=require on a machine where bubblewrap does not work."""


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when bubblewrap works here (namespaces allowed), else why not."""
    missing = [tool for tool in ("bwrap", "prlimit", "setpriv") if not shutil.which(tool)]
    if missing:
        return (f"{', '.join(missing)} not found (install the Debian packages bubblewrap "
                "and util-linux)")
    # As a job would run: Python must be readable by the job's uid too.
    become = ([_which("setpriv"), f"--reuid={_UID_BASE}", f"--regid={_UID_BASE}",
               "--clear-groups", "--"] if os.geteuid() == 0 else [])
    argv = [_which("bwrap"), *_namespaces(), *_system_mounts(), *_read_only(_python_dirs()),
            "--", *become, sys.executable, "-c", "import dioptra"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not be started: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        return "bubblewrap does not work here (" + (detail[-1] if detail else
                                                    f"exit code {done.returncode}") + ")"
    return None


def job_environment(worker_env: Mapping[str, str], home: Path) -> dict[str, str]:
    """The environment a job starts from: no secret of the worker, a home of its own."""
    passed = {n.strip() for n in (worker_env.get(ENV_PASS) or "").split(",") if n.strip()}
    env = {k: v for k, v in worker_env.items() if _INHERITED.fullmatch(k) or k in passed}
    # "python" in an MLproject command means the worker's interpreter (its venv).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), _SYSTEM_PATH])
    env["HOME"] = str(home)
    env.setdefault("LANG", "C.UTF-8")
    return env


def exit_reason(returncode: int) -> str:
    """Why an entry point ended with ``returncode`` (bash and bubblewrap report a signal
    death as 128 + the signal number)."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if number <= 0:
        return f"entry point exited with code {returncode}"
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    hint = {"SIGXFSZ": ": it wrote a file larger than the job's file size limit",
            "SIGKILL": " (out of memory, or stopped)"}.get(name, "")
    return f"entry point was killed by signal {number} ({name}){hint}"


# -- bubblewrap arguments ------------------------------------------------------------------


def _namespaces() -> list[str]:
    # No user namespace when root: setpriv then switches to the job's uid (a namespace
    # would map only root). No network namespace: the job needs the server's MLflow.
    user = [] if os.geteuid() == 0 else ["--unshare-user"]
    return [*user, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "dioptra-job", "--die-with-parent", "--new-session"]


def _system_mounts() -> list[str]:
    argv: list[str] = []
    for path in _SYSTEM_DIRS:
        argv += ["--ro-bind", path, path]
    for path in _SYSTEM_LINKS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    # CPU topology: thread pools size themselves from it.
    argv += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    return argv


@functools.lru_cache(maxsize=1)
def _python_dirs() -> tuple[Path, ...]:
    """The folders the worker's Python needs: installation, venv, packages, our code."""
    candidates = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
                  Path(os.path.realpath(sys.executable)).parent.parent]
    candidates += [Path(p) for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p)]
    for package in ("dioptra", "dioptra_builtins"):  # editable installs live elsewhere
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            candidates += [Path(p) for p in spec.submodule_search_locations]
    resolved = sorted({Path(os.path.realpath(p)) for p in candidates}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in resolved:
        # Never the whole of /, /tmp or /dev/shm: the job's own are private.
        if path in _NEVER_SHOWN or any(_inside(path, Path(s)) for s in _SYSTEM_DIRS):
            continue
        if not any(_inside(path, k) for k in kept):
            kept.append(path)
    return tuple(kept)


def python_dirs_in_private_places() -> tuple[Path, ...]:
    """The worker's Python folders that lie where each job gets a fresh tmpfs (/tmp,
    /dev/shm): a forked job shows them again over it (jail.py)."""
    private = (Path("/tmp"), Path("/dev/shm"))
    return tuple(p for p in _python_dirs() if any(_inside(p, top) for top in private))


def _read_only(paths: Iterable[Path]) -> list[str]:
    paths = list(paths)
    argv = _make_dirs(paths, ())
    for path in paths:
        argv += ["--ro-bind", str(path), str(path)]
    return argv


def _make_dirs(paths: Iterable[Path], mounted: Iterable[Path]) -> list[str]:
    """``--dir`` for the parents bubblewrap would otherwise create as root-only (0700)."""
    mounted = [*mounted, *(Path(s) for s in _SYSTEM_DIRS)]
    argv: list[str] = []
    seen: set[Path] = set()
    for path in paths:
        for parent in reversed(path.parents):
            if parent == Path("/") or parent in seen or any(_inside(parent, m) for m in mounted):
                continue
            seen.add(parent)
            argv += ["--perms", "0755", "--dir", str(parent)]
    return argv


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _which(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise SandboxUnavailable(f"{tool} not found")
    return found
