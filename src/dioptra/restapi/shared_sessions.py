"""Browser sessions shared by the server's API processes: one empty file per session,
named by the digest of its id, in the data dir's run folder; its age is the session's.

A login answered by one process is honoured by all, and a logout ends the session in
every one at once. The main process empties the folder at start: a restart asks people
to log in again, as with the in-memory sessions (restapi/auth.py Sessions).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from pathlib import Path

from dioptra.restapi.auth import SESSION_TTL_S


class FileSessions:
    def __init__(self, directory: Path, ttl_s: float = SESSION_TTL_S) -> None:
        self.directory = directory
        self.ttl_s = ttl_s
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    @staticmethod
    def reset(directory: Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, session_id: str) -> Path:
        return self.directory / hashlib.sha256(session_id.encode()).hexdigest()

    def open(self) -> str:
        self._forget_expired()
        session_id = secrets.token_urlsafe(32)
        fd = os.open(self._path(session_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        return session_id

    def valid(self, session_id: str) -> bool:
        try:
            opened = self._path(session_id).stat().st_mtime
        except OSError:
            return False
        return time.time() - opened < self.ttl_s

    def close(self, session_id: str) -> None:
        self._path(session_id).unlink(missing_ok=True)

    def _forget_expired(self) -> None:
        cutoff = time.time() - self.ttl_s
        for path in self.directory.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
            except OSError:
                pass
