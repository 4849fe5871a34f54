"""Run one shell command in its own process group, stream its output, enforce limits.

The entry point of a job may start sub-processes of its own (data loaders, ``&`` in a shell
command). Killing only the direct child would leave those running, so the command runs in
a new session (its own process group) and every stop - timeout, cancellation, an exception
in the worker, or a normal exit that left background processes behind - kills the group.
"""

from __future__ import annotations

import codecs
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dioptra.processes import die_with_parent

Reason = Literal["exited", "timeout", "cancelled"]

_POLL_S = 0.1  # how often limits are checked; output itself is forwarded as it arrives
_READ_SIZE = 65536


# If the worker is killed outright (kill -9, OOM) its entry point must not live on as an
# orphan: the kernel sends SIGKILL to the command when its parent dies (it survives
# bash's exec of a single command).
_DIE_WITH_WORKER = die_with_parent("KILL")

@dataclass(frozen=True)
class RunResult:
    """How the command ended. ``returncode`` is None when we killed it (timeout, cancel)."""

    returncode: int | None
    reason: Reason
    duration_s: float


def run_command(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float | None,
    on_output: Callable[[str], None],
    should_cancel: Callable[[], bool],
    on_start: Callable[[int], None] | None = None,
    grace_s: float = 5.0,
    argv: Sequence[str] | None = None,
    process: subprocess.Popen[bytes] | None = None,
) -> RunResult:
    """Run ``bash -c command`` (or ``argv``, e.g. sandboxed) in ``cwd`` with exactly ``env``.

    stdout and stderr share one pipe, so ``on_output`` gets them merged in the order they
    were written, as text chunks (UTF-8, invalid bytes replaced), in the calling thread.
    ``on_start(pid)`` runs right after the process was spawned. ``should_cancel`` is polled
    every 0.1 s and must be cheap. On timeout or cancellation the process group gets
    SIGTERM, then SIGKILL after ``grace_s`` seconds. ``process``: one already started
    with ``spawn`` (a warm interpreter that was just handed its job) instead.
    """
    started = time.monotonic()
    proc = process or spawn(argv or ["bash", "-c", command], cwd, env)
    pgid = proc.pid  # a session leader's pid is its process group id
    assert proc.stdout is not None
    chunks: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(
        target=_read_pipe, args=(proc.stdout.fileno(), chunks), name="runner-output", daemon=True
    )
    reader.start()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    eof = False

    def forward(wait_s: float) -> None:
        # Take everything that is available now (waiting at most wait_s for the first
        # chunk) and hand it over in one call, so a chatty process costs few callbacks.
        nonlocal eof
        data: list[bytes] = []
        try:
            item = chunks.get(timeout=wait_s) if wait_s > 0 else chunks.get_nowait()
            while True:
                if item is None:
                    eof = True
                    break
                data.append(item)
                item = chunks.get_nowait()
        except queue.Empty:
            pass
        text = decoder.decode(b"".join(data))
        if text:
            on_output(text)

    reason: Reason = "exited"
    cleaned_up = False
    try:
        if on_start is not None:
            on_start(proc.pid)
        while True:
            forward(0 if eof else _POLL_S)
            if eof:
                time.sleep(_POLL_S)
            if _has_exited(proc):
                break
            if should_cancel():
                reason = "cancelled"
                break
            if timeout_s is not None and time.monotonic() - started >= timeout_s:
                reason = "timeout"
                break
        # Also after a normal exit: background children of the command must not outlive
        # the job (and they would keep the output pipe open).
        _kill_group(pgid, grace_s if reason != "exited" else min(grace_s, 1.0))
        cleaned_up = True
    finally:
        if not cleaned_up:  # an exception (KeyboardInterrupt too) in a callback or here
            _kill_group(pgid, 0.0)
        proc.wait()
        reader.join(timeout=2.0)
        # A process that left our group (setsid) may still hold the pipe open; then the
        # reader stays blocked and the descriptor is left to it (closing it under a
        # blocked read could hand the number to an unrelated file).
        if not reader.is_alive():
            proc.stdout.close()
    forward(0)
    tail = decoder.decode(b"", final=True)
    if tail:
        on_output(tail)
    duration = time.monotonic() - started
    return RunResult(
        returncode=proc.returncode if reason == "exited" else None,
        reason=reason,
        duration_s=duration,
    )


def spawn(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], pass_fds: Sequence[int] = ()
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as ``run_command`` supervises it: its own session, no stdin, stdout
    and stderr on one pipe, killed when the thread that starts it ends."""
    return subprocess.Popen(
        [*_DIE_WITH_WORKER, *argv],
        cwd=str(cwd),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )


def _read_pipe(fd: int, out: queue.Queue[bytes | None]) -> None:
    # os.read returns as soon as anything is written, so output is never held back here.
    try:
        while True:
            data = os.read(fd, _READ_SIZE)
            if not data:
                break
            out.put(data)
    except OSError:
        pass
    finally:
        out.put(None)


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True when the group leader exited, WITHOUT reaping it.

    While the leader is an unreaped zombie its pid - the process group id - cannot be
    reused, so the group kill that follows cannot hit an unrelated process group.
    """
    if not isinstance(proc, subprocess.Popen):
        # A job forked by the fork server (forks.ForkedProcess): not our child; the
        # server, its parent, reaps it and tells us.
        return proc.poll() is not None
    if hasattr(os, "waitid"):
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None
    return proc.poll() is not None


def _kill_group(pgid: int, grace_s: float) -> None:
    """SIGTERM the group, wait up to grace_s for it to go away, then SIGKILL what is left."""
    if not _group_alive(pgid):
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _group_alive(pgid: int) -> bool:
    """True while some non-zombie process is in the group.

    Zombies are skipped: our own leader is kept unreaped on purpose, and re-parented
    grandchildren may stay zombies for a while if pid 1 is slow to reap them.
    """
    proc_dir = Path("/proc")
    if not (proc_dir / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Format: pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False
