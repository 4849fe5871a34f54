"""``run-experiment [-P name=value]... [-l LEVEL] file``: run an experiment description.

``-P`` values are parsed as YAML (``1`` is an int, ``[28,28,1]`` a list, ``name=`` is
None, a bare ``name`` is True). Exit status: 0 success, 1 any error (traceback on
stderr), 2 bad arguments. Like v0 it does not validate (run ``validate-experiment``
first); each step is logged as ``Running step: <s>`` on stderr.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import sys
from typing import Any

import yaml

from dioptra.task_engine import task_engine

_LEVELS = ["all", "debug", "info", "warning", "error", "critical"]


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run-experiment", description="Run a Dioptra experiment description (YAML)."
    )
    parser.add_argument("file", type=argparse.FileType("r", encoding="utf-8"))
    parser.add_argument(
        "-P", dest="params", action="append", default=[], metavar="name=value",
        help="set a global parameter (repeatable; the value is parsed as YAML)",
    )
    parser.add_argument("-l", "--log-level", choices=_LEVELS, default="info")
    return parser.parse_args(argv)


def _setup_logging(level: str) -> None:
    """One stderr handler; ``all`` opens the root logger, others the engine's only."""
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"te": {"format": "[%(levelname)8s] %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "te",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"]},
    }
    if level == "all":
        config["root"]["level"] = "DEBUG"
    else:
        config["loggers"] = {"dioptra.task_engine": {"level": level.upper()}}
    logging.config.dictConfig(config)


def _cmdline_params_to_map(params: list[str]) -> dict[str, Any]:
    """``["a=1", "b"]`` -> ``{"a": 1, "b": True}`` (the last value of a name wins)."""
    result: dict[str, Any] = {}
    for param in params:
        if "=" in param:
            name, text = param.split("=", 1)
            if not name:
                raise ValueError(f"Global parameter names must not be empty: {param}")
            result[name] = yaml.safe_load(text)
        else:
            result[param] = True
    return result


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    _setup_logging(args.log_level)
    with args.file:
        desc = yaml.safe_load(args.file)
    params = _cmdline_params_to_map(args.params)
    task_engine.run_experiment(desc, params)


if __name__ == "__main__":
    main()
    sys.exit(0)
