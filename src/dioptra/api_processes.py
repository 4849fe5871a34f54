"""The API processes of a multi-process server, started and watched by the main one.

Each is `python -m dioptra.api_child`, handed the listening socket (inherited by fd) and
its settings (on stdin: they may hold the API token). They die with the main process
(PR_SET_PDEATHSIG), so they are spawned, watched and stopped from the main thread only:
the signal fires when the thread that forked them ends.

A child that exits is restarted (logged); one that keeps dying within CRASH_WINDOW_S of
its start, MAX_QUICK_CRASHES times in a row, stops the whole server loudly rather than
restarting forever (a broken installation, a port taken...).
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time

from dioptra.generations import API_READY, Generations
from dioptra.processes import die_with_parent

log = logging.getLogger("dioptra.server")
CRASH_WINDOW_S = 10.0
MAX_QUICK_CRASHES = 3
STOP_WAIT_S = 20.0  # uvicorn gives open requests 10 s
READY_WAIT_S = 60.0


class ApiProcessesFailed(RuntimeError):
    pass


class ApiProcesses:
    """``start()`` early: the processes import the application while the main process
    migrates the database; ``hand_over()`` then gives them their settings, which they
    wait for on stdin before serving; ``supervise()`` restarts any that exits."""

    def __init__(self, count: int, sock: socket.socket, generations: Generations) -> None:
        self.count = count
        self.sock = sock
        self.generations = generations
        self.payload: dict = {}
        self.procs: dict[int, subprocess.Popen] = {}
        self._started: dict[int, float] = {}
        self._quick_crashes: dict[int, int] = {}

    def _spawn(self, index: int) -> subprocess.Popen:
        fd = self.sock.fileno()
        self._started[index] = time.monotonic()
        return subprocess.Popen(
            [*die_with_parent("TERM"), sys.executable, "-m", "dioptra.api_child",
             # Only for ps and /proc: which server the process belongs to.
             "--serving", self.payload.get("server_url", "")],
            stdin=subprocess.PIPE, pass_fds=(fd,),
        )

    def _hand_over(self, index: int) -> None:
        proc = self.procs[index]
        try:
            proc.stdin.write(json.dumps({**self.payload, "fd": self.sock.fileno(),
                                         "index": index}).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it died meanwhile: the watch below restarts it

    def start(self, server_url: str) -> None:
        """From the main thread (see above)."""
        self.payload = {"server_url": server_url}
        for index in range(self.count):
            self.procs[index] = self._spawn(index)

    def hand_over(self, payload: dict, stop: threading.Event) -> None:
        """Hand over the settings; return once every process serves (each bumps the
        API_READY generation), or after READY_WAIT_S, or as soon as one has exited."""
        self.payload = payload
        for index in self.procs:
            self._hand_over(index)
        deadline = time.monotonic() + READY_WAIT_S
        while (self.generations.read(API_READY) < self.count and time.monotonic() < deadline
               and not stop.is_set()
               and all(p.poll() is None for p in self.procs.values())):
            time.sleep(0.05)

    def supervise(self, stop: threading.Event) -> None:
        """Keep the processes up until ``stop`` is set, then stop them."""
        try:
            while not stop.wait(0.2):
                for index, proc in list(self.procs.items()):
                    if proc.poll() is not None and not stop.is_set():
                        self._restart(index, proc.returncode)
        finally:
            self.stop()

    def _restart(self, index: int, code: int) -> None:
        quick = time.monotonic() - self._started[index] < CRASH_WINDOW_S
        self._quick_crashes[index] = self._quick_crashes.get(index, 0) + 1 if quick else 0
        if self._quick_crashes[index] >= MAX_QUICK_CRASHES:
            raise ApiProcessesFailed(
                f"API process {index} exited with {code} {MAX_QUICK_CRASHES} times within "
                f"{CRASH_WINDOW_S:g}s of its start; stopping the server")
        log.warning("API process %d exited with %s; restarting it", index, code)
        self.procs[index] = self._spawn(index)
        self._hand_over(index)

    def stop(self) -> None:
        alive = [p for p in self.procs.values() if p.poll() is None]
        for proc in alive:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for proc in alive:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
