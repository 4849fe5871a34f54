"""Warm interpreters: a job's ``python SCRIPT`` starts with the ML stack already imported.

Importing mlflow, torch, ART and scikit-learn takes seconds, paid again by every job. A
pull worker therefore keeps ONE interpreter ready: a fresh process (``warm_boot.py``)
started exactly as the next job's entry point would be - in the next job's own folder
(created in advance), inside that folder's sandbox, with its limits, its uid and its
environment - which imports the configured modules and then waits on a pipe. When the
job's command is a plain ``python SCRIPT.py ARGS`` or ``python -m MODULE ARGS``, the job
is written to that pipe (its environment, working directory and arguments) and the
interpreter runs it as a fresh ``python`` would; the worker supervises it as any entry
point (output, timeout, cancel, the process group). Any other command runs as before and
the interpreter is thrown away. Each interpreter serves one job; the next one is started
as soon as the current one is taken, so it loads while the job runs.

Never a fork: a process that has started threads (OpenMP, BLAS, torch) cannot be forked
safely, so every interpreter is a new process that imports for itself.

Settings: ``DIOPTRA_WARM_START=0`` (or ``dioptra server|worker --no-warm-start``) turns it
off; ``DIOPTRA_WARM_MODULES`` (comma-separated) replaces the modules imported in advance.
An MLproject entry point opts out with ``warm_start: false``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dioptra.folders import remove_tree
from dioptra.worker import runner
from dioptra.worker.sandbox import Sandbox
from dioptra.worker.v0_environment import lay_out_plugin_dir

log = logging.getLogger("dioptra.worker")

ENV_WARM = "DIOPTRA_WARM_START"
ENV_MODULES = "DIOPTRA_WARM_MODULES"
# What the builtins and the examples import: the ML stack, and the builtins' own modules
# (which import ART's attacks and estimators).
DEFAULT_MODULES = (
    "numpy", "pandas", "mlflow", "torch", "sklearn", "sklearn.datasets", "sklearn.ensemble",
    "sklearn.linear_model", "sklearn.metrics", "sklearn.model_selection", "sklearn.svm",
    "art", "art.attacks.evasion", "art.attacks.inference.membership_inference",
    "art.attacks.inference.model_inversion", "art.attacks.poisoning",
    "art.defences.preprocessor", "art.estimators.classification", "dioptra_builtins.artifacts",
    "dioptra_builtins.attacks", "dioptra_builtins.backend_configs", "dioptra_builtins.data",
    "dioptra_builtins.estimators", "dioptra_builtins.metrics", "dioptra_builtins.registry",
    "dioptra_builtins.tracking",
)
BOOT = Path(__file__).with_name("warm_boot.py")
_OFF = {"0", "false", "no", "off"}
# Unquoted, these make a command more than one plain program call in bash.
_SHELL_SPECIAL = set(";&|<>()$`*?[]{}~!#\\\n\r")


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    return (env.get(ENV_WARM) or "1").strip().lower() not in _OFF


def modules(env: Mapping[str, str] = os.environ) -> list[str]:
    configured = env.get(ENV_MODULES)
    if configured is None:
        return list(DEFAULT_MODULES)
    return [name.strip() for name in configured.split(",") if name.strip()]


@dataclass(frozen=True)
class PythonCall:
    """A command that is ``python SCRIPT ARGS`` (kind ``script``) or ``python -m MODULE
    ARGS`` (kind ``module``), as bash would have split it."""

    kind: str
    target: str
    args: tuple[str, ...]
    argv: tuple[str, ...]  # the whole command line: sys.orig_argv


def plain_python(command: str) -> PythonCall | None:
    """The call when ``command`` is a single plain call of the worker's ``python``, else
    None: pipes, ``&&``, redirections, variables, globs, assignments, options for the
    interpreter, another interpreter all leave it to bash."""
    text = command.strip()
    if not _only_words(text):
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    if len(words) < 2 or words[0] != "python":
        return None
    if words[1] == "-m":
        if len(words) < 3 or not words[2] or words[2].startswith("-"):
            return None
        return PythonCall("module", words[2], tuple(words[3:]), tuple(words))
    if words[1].startswith("-") or not words[1]:
        return None  # interpreter options, or the script from stdin
    return PythonCall("script", words[1], tuple(words[2:]), tuple(words))


def _only_words(text: str) -> bool:
    """True when nothing in ``text`` is special to bash outside quotes (except spaces)."""
    quote = ""
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quote == "'":
            quote = "" if char == "'" else quote
        elif quote == '"':
            if char in "$`\\":
                return False
            if char == '"':
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in _SHELL_SPECIAL:
            return False
    return not quote and not escaped


class WarmInterpreter:
    """One interpreter, started in ``folder`` (the folder its job will use), not yet used."""

    def __init__(self, folder: Path, sandbox: Sandbox, uid: int | None,
                 process: subprocess.Popen[bytes], control: int, status: int) -> None:
        self.folder = folder
        self.sandbox = sandbox
        self.uid = uid
        self.process = process
        self._control = control
        self._status = status
        self._status_text = ""
        self.handed_over = False

    def ready_rss_kb(self, wait_s: float = 0) -> int | None:
        """Its memory (RSS, kB) once it has imported everything, None while it imports
        (waiting up to ``wait_s`` for it)."""
        if self._status >= 0 and select.select([self._status], [], [], wait_s)[0]:
            data = os.read(self._status, 256)
            self._status_text += data.decode(errors="replace")
            if not data or "\n" in self._status_text:
                os.close(self._status)
                self._status = -1
        words = self._status_text.split()
        return int(words[1]) if len(words) == 2 and words[0] == "ready" else None

    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self, call: PythonCall, env: Mapping[str, str], cwd: Path
              ) -> subprocess.Popen[bytes]:
        """Hand the job over; from now on the process is the entry point."""
        request = json.dumps({
            "kind": call.kind, "target": call.target, "args": list(call.args),
            "orig_argv": list(call.argv), "env": dict(env), "cwd": str(cwd),
        }).encode()
        self.handed_over = True
        try:
            view = memoryview(request)
            while view:
                view = view[os.write(self._control, view):]
        finally:
            self._close_pipes()
        return self.process

    def discard(self) -> None:
        """Stop it if it never got a job (the job ran another command, or the worker stops)
        and forget its pipes; the folder belongs to the job, or goes with ``remove``."""
        if not self.handed_over:
            self._close_pipes()  # end of file: it exits by itself
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
        self._close_pipes()

    def remove(self) -> None:
        self.discard()
        with contextlib.suppress(OSError):  # as a cold job's folder: never fails the job
            remove_tree(self.folder)

    def _close_pipes(self) -> None:
        for attr in ("_control", "_status"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)


class WarmPool:
    """The next job's interpreter of one worker. ``prepare`` and ``take`` must be called
    from the worker's loop thread: the interpreter dies with the thread that started it."""

    def __init__(
        self,
        work_root: Path,
        sandbox: Sandbox,
        environment: Callable[[Path, Path], dict[str, str]],
        preload: list[str] | None = None,
    ) -> None:
        self.work_root = work_root
        self.sandbox = sandbox
        self.environment = environment  # (plugins dir, home) -> the entry point's env
        self.preload = modules() if preload is None else preload
        self._next: WarmInterpreter | None = None
        # False after a job whose command could not use one: then no interpreter is
        # prepared (their imports would only take CPU from jobs that run `bash ...`)
        # until a job that could have used one shows up.
        self.wanted = True

    def note(self, usable: bool) -> None:
        """Called with the current job's command known: prepare the next job's
        interpreter now (it imports while this job runs) if this one could use one."""
        self.wanted = usable
        self.prepare()

    def prepare(self) -> None:
        """Start the next interpreter unless one is there or none is wanted (errors:
        logged, jobs then start cold)."""
        if not self.wanted or (self._next is not None and self._next.alive()):
            return
        if self._next is not None:
            self._next.remove()
            self._next = None
        try:
            self._next = self._start()
        except Exception:  # noqa: BLE001 - warm start is an optimisation only
            log.exception("could not start a warm interpreter; jobs start cold")

    def wait_ready(self, timeout_s: float, stop: Callable[[], bool]) -> None:
        """Wait (at most ``timeout_s``) until the next interpreter has imported everything:
        with several workers, the one whose interpreter is ready should take the job."""
        deadline = time.monotonic() + timeout_s
        while self.wanted and self._next is not None and self._next.alive() and not stop():
            if self._next.ready_rss_kb(wait_s=0.2) is not None or time.monotonic() > deadline:
                return

    def take(self) -> WarmInterpreter | None:
        """The prepared interpreter (ready or still importing) for the job just claimed."""
        warm, self._next = self._next, None
        if warm is None:
            return None
        if not warm.alive():
            log.warning("the warm interpreter ended by itself (exit code %s); the job starts "
                        "cold", warm.process.returncode)
            warm.remove()
            return None
        rss = warm.ready_rss_kb()
        log.info("warm interpreter %s", f"ready ({rss / 1024:.0f} MB)" if rss else
                 "still importing")
        return warm

    def close(self) -> None:
        if self._next is not None:
            self._next.remove()
            self._next = None

    def _start(self) -> WarmInterpreter:
        folder, uid = job_folder(self.work_root, self.sandbox)
        try:
            env = self.environment(folder / "plugins", folder / "home")
            control_r, control_w = os.pipe()
            status_r, status_w = os.pipe()
            try:
                command = shlex.join(["python", str(BOOT), str(control_r),
                                      str(status_w), *self.preload])
                argv = self.sandbox.wrap(command, folder, folder, self.work_root, uid)
                process = runner.spawn(argv, folder, env, pass_fds=(control_r, status_w))
            except BaseException:
                os.close(control_w)
                os.close(status_r)
                raise
            finally:
                os.close(control_r)
                os.close(status_w)
        except BaseException:
            with contextlib.suppress(OSError):
                remove_tree(folder)
            raise
        log.debug("warm interpreter starting in %s (pid %d)", folder, process.pid)
        return WarmInterpreter(folder, self.sandbox, uid, process, control_w, status_r)


def job_folder(work_root: Path, sandbox: Sandbox) -> tuple[Path, int | None]:
    """The next job's folder, made in advance (its plugins laid out, its home and storage
    its own), and the uid the job will run as."""
    work_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="job-warm-", dir=work_root))
    try:
        folder.chmod(0o755)  # the job's own uid must reach its folders inside
        lay_out_plugin_dir(folder / "plugins")  # the builtins import from here, as in the job
        (folder / "home").mkdir()
        (folder / "storage").mkdir()
        uid = sandbox.job_uid(folder.name)
        sandbox.give(uid, [folder / "storage", folder / "home"])
    except BaseException:
        with contextlib.suppress(OSError):
            remove_tree(folder)
        raise
    return folder, uid


def measure_ready_memory(preload: list[str] | None = None, timeout_s: float = 600
                         ) -> tuple[int, float]:
    """(RSS in kB, seconds to get ready) of one interpreter that imported ``preload``,
    started bare (no sandbox): what each ready interpreter holds."""
    control_r, control_w = os.pipe()
    status_r, status_w = os.pipe()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(BOOT), str(control_r), str(status_w),
         *(modules() if preload is None else preload)],
        pass_fds=(control_r, status_w), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(control_r)
    os.close(status_w)
    try:
        ready, _, _ = select.select([status_r], [], [], timeout_s)
        text = os.read(status_r, 256).decode() if ready else ""
        elapsed = time.monotonic() - started
    finally:
        os.close(status_r)
        os.close(control_w)  # end of file: it exits
        process.wait(timeout=60)
    words = text.split()
    if len(words) != 2 or words[0] != "ready":
        raise RuntimeError(f"the interpreter did not get ready: {text!r}")
    return int(words[1]), elapsed
