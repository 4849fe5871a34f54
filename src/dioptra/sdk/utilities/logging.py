"""Logging helpers of v0 entry points.

A v0 entry point reads ``DIOPTRA_JOB_LOG_LEVEL`` (default ``INFO``) and
``DIOPTRA_JOB_LOG_AS_JSON`` (any non-empty value: JSON) and calls these helpers; the job
sets both variables (see ``dioptra.worker.v0_environment``). With ``structlog``
installed (the ``[v0]`` extra) the records are rendered by structlog as in v0; without
it a stdlib formatter renders the same fields, so the helpers never need it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

__all__ = [
    "StderrLogStream",
    "StdoutLogStream",
    "attach_stdout_stream_handler",
    "clear_logger_handlers",
    "configure_structlog",
    "set_logging_level",
]

_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}


def _structlog() -> Any:
    try:
        import structlog
    except ImportError:
        return None
    return structlog


class _JSONFormatter(logging.Formatter):
    """One JSON object per record (the fields structlog's JSONRenderer would give)."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "logger": record.name,
            "level": record.levelname.lower(),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def _formatter(as_json: bool) -> logging.Formatter:
    structlog = _structlog()
    if structlog is None:
        if as_json:
            return _JSONFormatter()
        formatter = logging.Formatter("%(asctime)s [%(levelname)-8s] [%(name)s] %(message)s")
        formatter.converter = time.gmtime
        return formatter
    renderer = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        processor=renderer,
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
        ],
    )


def attach_stdout_stream_handler(as_json: bool, logger: logging.Logger | None = None) -> None:
    """Add one handler writing to the ``sys.stdout`` of *now* (later redirects don't loop)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_formatter(as_json))
    (logger or logging.getLogger()).addHandler(handler)
    logging.captureWarnings(True)


def clear_logger_handlers(logger: logging.Logger | None) -> None:
    """Remove every handler of ``logger`` (v0 skipped every other one: fixed here)."""
    if logger is None:
        return
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


_STRUCTLOG_CONFIGURED = False


def configure_structlog() -> None:
    """Route structlog events through stdlib logging (first call only; no-op without it)."""
    global _STRUCTLOG_CONFIGURED
    structlog = _structlog()
    if structlog is None or _STRUCTLOG_CONFIGURED:
        return
    _STRUCTLOG_CONFIGURED = True
    structlog.configure_once(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        context_class=dict,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def set_logging_level(level: str, logger: logging.Logger | None = None) -> None:
    """Set DEBUG, INFO, WARNING or ERROR (any other text, even CRITICAL, means INFO)."""
    name = level.strip().upper()
    (logger or logging.getLogger()).setLevel(name if name in _LEVELS else "INFO")


class _LogStream:
    """A file-like object whose writes become INFO records of one logger."""

    name = ""

    def __init__(self, as_json: bool) -> None:
        self._as_json = as_json
        self.level = logging.INFO
        self.logger = logging.getLogger(self.name)
        self._redirect: Any = None

    def write(self, msg: str) -> None:
        if not msg or msg.isspace():
            return
        lines = [line.rstrip() for line in msg.rstrip().splitlines()]
        self.logger.log(self.level, ("\n" if self._as_json else "||").join(lines))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _LogStream:
        self._redirect = self._redirector()(self)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._redirect.__exit__(*exc)

    def _redirector(self) -> Any:
        raise NotImplementedError


class StdoutLogStream(_LogStream):
    """Inside the block, ``print`` becomes INFO records of the logger ``STDOUT``."""

    name = "STDOUT"

    def _redirector(self) -> Any:
        return redirect_stdout


class StderrLogStream(_LogStream):
    """Inside the block, writes to stderr become INFO records of the logger ``STDERR``."""

    name = "STDERR"

    def _redirector(self) -> Any:
        return redirect_stderr
