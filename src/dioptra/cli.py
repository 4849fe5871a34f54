"""The `dioptra` command: run a server, run a worker, and (usercli.py) the everyday
verbs that talk to a server: pipeline, job, queue, experiment, plugin."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dioptra import __version__, logs
from dioptra.processes import exit_now

SERVER_HELP = """\
Serve the Dioptra v0 REST API with everything under one data directory: a SQLite
database, a local object store, an MLflow tracking server and local worker
processes. Scale out by pointing it at PostgreSQL (--database-uri), Redis + RQ
(--redis-url, then start `dioptra worker` anywhere), S3 (--storage-url s3) and an
external MLflow (--mlflow-tracking-uri). Every flag has a DIOPTRA_* variable."""



def _read_token(args: argparse.Namespace) -> str | None:
    if getattr(args, "token_file", None):
        return Path(args.token_file).read_text().strip() or None
    return os.environ.get("DIOPTRA_API_TOKEN") or None


def server_settings(args: argparse.Namespace):
    """The server's settings: DIOPTRA_* variables, and over them the flags given."""
    from dioptra.config import Settings

    settings = Settings()
    for name in ("data_dir", "host", "port", "database_uri", "storage_url",
                 "mlflow_tracking_uri", "redis_url", "workers", "api_workers", "public_url"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    settings.data_dir = Path(settings.data_dir).expanduser().resolve()
    settings.api_token = _read_token(args) or settings.api_token
    settings.insecure = args.insecure
    if args.log_level is not None:  # the flag wins only when given
        settings.log_level = args.log_level
    settings.log_level = settings.log_level.lower()
    return settings


def _server(args: argparse.Namespace) -> int:
    from dioptra.api_processes import ApiProcessesFailed
    from dioptra.server import InsecureBindError, TestbedServer

    settings = server_settings(args)
    if args.no_warm_start:  # the embedded workers inherit the server's environment
        os.environ["DIOPTRA_WARM_START"] = "0"
    logs.configure(settings.log_level, args.log_format)
    try:
        server = TestbedServer(settings)
    except InsecureBindError as exc:
        print(f"dioptra server: {exc}", file=sys.stderr)
        return 2
    print(f"Dioptra testbed {__version__}: API at {settings.server_url}, "
          f"docs at {settings.server_url}/docs, data in {settings.data_dir}", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        return 130
    except ApiProcessesFailed as exc:
        print(f"dioptra server: {exc}", file=sys.stderr, flush=True)
        return 1
    exit_now(0)  # everything stopped and saved: no need to tear the modules down


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dioptra",
        description="A testbed for the security of machine-learning models, compatible "
        "with NIST Dioptra's v0 REST API and client.",
        epilog="Start here: `dioptra server --data-dir ./data`, then use "
        "dioptra.client.DioptraClient('http://127.0.0.1:5000').",
    )
    parser.add_argument("--version", action="version", version=f"dioptra {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    server = sub.add_parser("server", help="serve the REST API (and embedded workers)",
                            description=SERVER_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    server.add_argument("--host", help="address to listen on (DIOPTRA_HOST; default "
                        "127.0.0.1; a non-loopback address needs a token or --insecure)")
    server.add_argument("--port", type=int, help="port (DIOPTRA_PORT; default 5000)")
    server.add_argument("--data-dir", help="where the database, objects, MLflow store and "
                        "job work folders live (DIOPTRA_DATA_DIR; default ./data)")
    server.add_argument("--database-uri", help="SQLAlchemy URL, e.g. postgresql://u@h/db "
                        "(DIOPTRA_DATABASE_URI; default SQLite in the data dir)")
    server.add_argument("--storage-url", help="object store: a directory, or 's3' for the "
                        "S3 backend set by DIOPTRA_S3_ENDPOINT_URL and AWS_* keys "
                        "(DIOPTRA_STORAGE_URL; default <data-dir>/objects)")
    server.add_argument("--mlflow-tracking-uri", help="use this MLflow tracking server "
                        "instead of starting one (DIOPTRA_MLFLOW_TRACKING_URI)")
    server.add_argument("--redis-url", help="dispatch jobs through Redis + RQ, e.g. "
                        "redis://127.0.0.1:6379/0 (DIOPTRA_REDIS_URL)")
    server.add_argument("--workers", type=int, help="embedded worker processes "
                        "(DIOPTRA_WORKERS; default: cores, or 0 with --redis-url)")
    server.add_argument("--api-workers", type=int,
                        help="processes serving the API, sharing one socket "
                        "(DIOPTRA_API_WORKERS; default: the number of cores; 1: one process)")
    server.add_argument("--no-warm-start", action="store_true",
                        help="embedded workers start every entry point in a fresh "
                        "interpreter instead of one with the ML stack imported in advance "
                        "(DIOPTRA_WARM_START=0)")
    server.add_argument("--public-url", help="URL workers use to reach this server "
                        "(DIOPTRA_PUBLIC_URL; default http://<host>:<port>)")
    server.add_argument("--token-file", help="file holding the API token (else "
                        "DIOPTRA_API_TOKEN); requests must send 'Authorization: Bearer'")
    server.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback address without a token")
    server.add_argument("--log-level", type=str.lower,
                        choices=["debug", "info", "warning", "error"],
                        help="server log level (DIOPTRA_LOG_LEVEL; default info)")
    server.add_argument("--log-format", default=os.environ.get("DIOPTRA_LOG_FORMAT", "text"),
                        choices=["text", "json"],
                        help="text, or one JSON object per line (DIOPTRA_LOG_FORMAT)")
    server.set_defaults(func=_server)

    from dioptra.worker.main import DESCRIPTION, EPILOG, add_arguments
    from dioptra.worker.main import run as run_worker

    worker = sub.add_parser("worker", help="run a worker against a server",
                            description=DESCRIPTION, epilog=EPILOG)
    add_arguments(worker)
    worker.set_defaults(func=lambda args: run_worker(args, worker))

    from dioptra import usercli  # the everyday verbs: pipeline, job, queue, experiment, plugin

    usercli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
