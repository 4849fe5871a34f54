"""Child processes that die with their parent.

If a process is killed outright (kill -9, the OOM killer) it cannot stop its children;
the kernel can: PR_SET_PDEATHSIG sends them a signal when their parent dies. setpriv
(util-linux) sets it before exec, and it survives the exec of the real command.

Mind that the kernel sends it when the *thread* that forked the child ends, not the
process: spawn such children from a thread that lives as long as they should.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from typing import NoReturn


def die_with_parent(signal_name: str = "KILL") -> list[str]:
    """A command prefix making the command get SIG``signal_name`` when its parent dies
    (empty where setpriv is missing)."""
    return ["setpriv", "--pdeathsig", signal_name] if shutil.which("setpriv") else []


def stop(proc: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it is still running ``timeout_s`` later; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def exit_now(code: int) -> NoReturn:
    """End a process whose work is done and saved (its database connections closed, its
    children stopped) without tearing down its modules: with torch or mlflow imported
    that takes a few tenths of a second, which whoever stops it would wait for."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
