"""Change counters shared by the server's processes: a few u64 slots in an mmap'd file.

A writer bumps a slot (under an flock, so two processes never lose a bump) after its
change has committed; a reader compares the slot with what it saw before, which costs
one aligned 8-byte read from shared memory: no system call. Caches and waiters in
every API process watch these slots (restapi/cache.py, dispatch/wakeup.py).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from pathlib import Path

# API_READY: how many API processes have started serving (api_processes.py waits on it).
QUEUES, EXPERIMENTS, JOBS, MLFLOW, API_READY = range(5)
SLOTS = 8
_U64 = struct.Struct("=Q")
FILE_NAME = "generations"


class Generations:
    """``path`` None: private to this process (tests, a server built in-process)."""

    def __init__(self, path: Path | None = None, create: bool = False) -> None:
        self.path = path
        self._fd: int | None = None
        self._thread_lock = threading.Lock()
        size = SLOTS * _U64.size
        if path is None:
            self._map = mmap.mmap(-1, size)
            return
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        self._fd = os.open(path, flags, 0o600)
        if create:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    @classmethod
    def in_run_dir(cls, data_dir: Path, create: bool = False) -> Generations:
        run = data_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        return cls(run / FILE_NAME, create=create)

    def read(self, slot: int) -> int:
        return _U64.unpack_from(self._map, slot * _U64.size)[0]

    def bump(self, slot: int) -> int:
        with self._thread_lock:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                value = self.read(slot) + 1
                _U64.pack_into(self._map, slot * _U64.size, value)
                return value
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def set(self, slot: int, value: int) -> None:
        with self._thread_lock:
            _U64.pack_into(self._map, slot * _U64.size, value)
