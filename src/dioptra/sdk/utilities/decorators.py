"""``require_package``: fail with a named error when an optional package is missing."""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from dioptra.sdk.exceptions.base import BaseOptionalDependencyError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def require_package(
    name: str,
    exc_message: str | None = None,
    exc_type: type[Exception] = BaseOptionalDependencyError,
) -> Callable[[F], F]:
    """Raise ``exc_type`` when the decorated function is *called* without ``name``."""

    def decorator(func: F) -> F:
        message = exc_message or f'The package "{name}" is required to use {func.__name__}'

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as err:
                log.error("%s (%s)", message, err)
                raise exc_type(message) from err
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
