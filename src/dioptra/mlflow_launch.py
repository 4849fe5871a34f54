"""``mlflow server`` in one interpreter instead of two.

MLflow's CLI imports MLflow (about 4 s of CPU), prepares its stores, then starts uvicorn
as a new Python process that imports MLflow all over again before it answers. With one
uvicorn worker (the embedded server's) that second process buys nothing: this runs
MLflow's own CLI unchanged, except that the uvicorn command it builds runs in this very
process, with the environment MLflow meant for it. Any other command (several workers,
gunicorn, waitress) is started as MLflow would, and so is uvicorn when that environment
differs from what MLflow's server module saw at import (it reads the static prefix then,
for its routes): the prefix is therefore set before the import, from ``--static-prefix``.

    python -m dioptra.mlflow_launch [--seed DB] server --backend-store-uri ... (``mlflow``'s
    arguments; ``--seed DB``: a new database DB starts from the template, made here first
    if missing, see mlflow_db.py)
"""

from __future__ import annotations

import os
import sys

# Before MLflow: its server module looks for uvicorn in sys.modules at import to know it
# is the server process (and sets up its security middleware), as in uvicorn's process.
import uvicorn  # noqa: F401

# The variable MLflow's CLI hands the static prefix to uvicorn's process in (checked
# against mlflow.server.handlers.STATIC_PREFIX_ENV_VAR before it is relied on).
PREFIX_VARIABLE = "_MLFLOW_STATIC_PREFIX"


class _Ended:
    """The handle MLflow's CLI waits on (and forwards signals to) once uvicorn returned."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode
        self.pid = os.getpid()

    def poll(self) -> int:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        pass


def _one_uvicorn_worker(command: list[str]) -> bool:
    if command[:3] != [sys.executable, "-m", "uvicorn"]:
        return False
    workers = [b for a, b in zip(command, command[1:], strict=False) if a == "--workers"]
    return workers in ([], ["1"]) and "--reload" not in command


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--seed"] and len(args) > 1:
        from pathlib import Path

        from dioptra import mlflow_db

        if mlflow_db.make_template() is not None:  # MLflow is imported below anyway
            mlflow_db.seed(Path(args[1]))
        args = args[2:]

    prefix = _option(args, "--static-prefix")
    if prefix:
        os.environ[PREFIX_VARIABLE] = prefix

    import mlflow.server
    from mlflow.cli import cli
    from mlflow.server.handlers import STATIC_PREFIX_ENV_VAR

    spawn = mlflow.server._exec_cmd
    imported_with = {STATIC_PREFIX_ENV_VAR: os.environ.get(STATIC_PREFIX_ENV_VAR)}

    def run_here(cmd, *, extra_env=None, **kwargs):
        command = [str(part) for part in cmd] if isinstance(cmd, list) else []
        as_imported = all((extra_env or {}).get(k) == v for k, v in imported_with.items())
        if not (_one_uvicorn_worker(command) and as_imported):
            os.environ.pop(PREFIX_VARIABLE, None)
            return spawn(cmd, extra_env=extra_env, **kwargs)
        os.environ.update(extra_env or {})
        from uvicorn.main import main as uvicorn_main

        try:
            uvicorn_main.main(args=command[3:], prog_name="uvicorn", standalone_mode=False)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return _Ended(code)

    mlflow.server._exec_cmd = run_here
    return cli.main(args=args, prog_name="mlflow", standalone_mode=True)


if __name__ == "__main__":
    sys.exit(main())
