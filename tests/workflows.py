"""Build workflow archives (MLproject + scripts) and plugin archives for the tests."""

from __future__ import annotations

import io
import tarfile
import textwrap
import zipfile
from pathlib import Path

ECHO_MLPROJECT = """\
name: echo
entry_points:
  main:
    parameters:
      x: {type: float, default: 1.5}
      word: {type: string, default: hello}
    command: "python echo.py --x {x} --word {word}"
  sleep:
    parameters:
      seconds: {type: float, default: 60}
    command: "python -c 'import time,sys; print(\\"sleeping\\", flush=True); time.sleep({seconds})'"
  fail:
    command: "python -c 'import sys; print(\\"about to fail\\"); sys.exit(3)'"
  needs:
    parameters:
      run_id: string
    command: "python echo.py --x 0 --word {run_id}"
"""

ECHO_SCRIPT = """\
import argparse, os, sys
import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--word")
args = parser.parse_args()
print(f"x={args.x} word={args.word}", flush=True)
with mlflow.start_run() as run:
    mlflow.log_metric("x_squared", args.x ** 2)
    print("run", run.info.run_id, flush=True)
"""


def write_tar(path: Path, files: dict[str, str | bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return path


def echo_workflow(tmp: Path, name: str = "workflows.tar.gz") -> Path:
    """A small MLproject whose entry points echo, sleep, fail, or need a parameter."""
    return write_tar(tmp / name, {"MLproject": ECHO_MLPROJECT, "echo.py": ECHO_SCRIPT})


def plugin_archive(tmp: Path, package: str, name: str | None = None, zip_: bool = False
                   ) -> Path:
    files = {
        f"{package}/__init__.py": "",
        f"{package}/tasks.py": textwrap.dedent("""\
            from dioptra import pyplugs

            @pyplugs.register
            def double(x):
                return 2 * x
        """),
        f"{package}/sub/helper.py": "VALUE = 42\n",
        f"{package}/README.md": "not python\n",
    }
    if zip_:
        return write_zip(tmp / (name or f"{package}.zip"), files)
    return write_tar(tmp / (name or f"custom-plugins-{package}.tar.gz"), files)
