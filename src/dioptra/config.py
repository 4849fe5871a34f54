"""Server settings: one dataclass, filled from CLI flags over ``DIOPTRA_*`` variables.

Every setting is documented once, in the README's configuration table.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def resolves_to_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address: decided by the
    addresses, never the spelling (``127.attacker.example`` is a public name)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False  # unresolvable: not known to be local
    addresses = {info[4][0].split("%", 1)[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(_env("DIOPTRA_DATA_DIR", "./data")))
    host: str = field(default_factory=lambda: _env("DIOPTRA_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("DIOPTRA_PORT", "5000")))
    # Empty means "SQLite under data_dir".
    database_uri: str | None = field(default_factory=lambda: _env("DIOPTRA_DATABASE_URI"))
    # Empty means "a local object store under data_dir"; "s3" means boto3 (see storage/).
    storage_url: str | None = field(default_factory=lambda: _env("DIOPTRA_STORAGE_URL"))
    # Empty means "run an MLflow tracking server under data_dir".
    mlflow_tracking_uri: str | None = field(
        default_factory=lambda: _env("DIOPTRA_MLFLOW_TRACKING_URI")
    )
    redis_url: str | None = field(default_factory=lambda: _env("DIOPTRA_REDIS_URL"))
    # Embedded worker processes; None means "number of cores" without Redis, 0 with it.
    workers: int | None = field(
        default_factory=lambda: int(v) if (v := _env("DIOPTRA_WORKERS")) else None
    )
    # Processes serving the API (one listening socket); None means "the cores we may use".
    api_workers: int | None = field(
        default_factory=lambda: int(v) if (v := _env("DIOPTRA_API_WORKERS")) else None
    )
    api_token: str | None = field(default_factory=lambda: _env("DIOPTRA_API_TOKEN"))
    insecure: bool = False
    # URL the workers use to reach this server; derived from host/port when empty.
    public_url: str | None = field(default_factory=lambda: _env("DIOPTRA_PUBLIC_URL"))
    # A job whose worker stops sending heartbeats for this long is failed.
    heartbeat_timeout_s: float = field(
        default_factory=lambda: float(_env("DIOPTRA_HEARTBEAT_TIMEOUT", "20"))
    )
    max_upload_bytes: int = field(
        default_factory=lambda: int(_env("DIOPTRA_MAX_UPLOAD_BYTES", str(1 << 30)))
    )
    # Request bodies: JSON bodies and worker log chunks are read into memory, so they
    # are capped; an upload is refused once it passes max_upload_bytes.
    max_json_bytes: int = field(
        default_factory=lambda: _env_int("DIOPTRA_MAX_JSON_BYTES", 1 << 20)
    )
    max_log_chunk_bytes: int = field(
        default_factory=lambda: _env_int("DIOPTRA_MAX_LOG_CHUNK_BYTES", 4 << 20)
    )
    # A client that has not sent a whole request head (or the next part of its body)
    # within this many seconds is disconnected (408 once the head has arrived).
    request_timeout_s: float = field(
        default_factory=lambda: float(_env("DIOPTRA_REQUEST_TIMEOUT", "30"))
    )
    log_level: str = field(default_factory=lambda: _env("DIOPTRA_LOG_LEVEL", "info"))

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()

    # Derived values -------------------------------------------------------------------
    @property
    def effective_database_uri(self) -> str:
        return self.database_uri or f"sqlite:///{self.data_dir / 'dioptra.db'}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or str(self.data_dir / "objects")

    @property
    def effective_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        return 0 if self.redis_url else (os.cpu_count() or 1)

    @property
    def effective_api_workers(self) -> int:
        if self.api_workers is not None:
            return max(1, self.api_workers)
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1

    @property
    def server_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        return resolves_to_loopback(self.host)

    def describe(self) -> dict[str, str]:
        """Settings as strings, with the token hidden, for the start-up banner."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_token":
                value = "set" if value else "not set"
            out[f.name] = str(value)
        return out
