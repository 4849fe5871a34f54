"""``fit_estimator`` and ``estimator_predict``: generic functions, as in v0.

They dispatch on the types of their positional arguments. The fallbacks call
``estimator.fit(x, y, **kwargs)`` / ``estimator.predict(x, **kwargs)``. Overloads are
registered with ``@fit_estimator.register`` on a function whose positional parameters
are annotated with classes; packages ship them as entry points of the groups
``dioptra.generics.fit_estimator`` and ``dioptra.generics.estimator_predict``, which are
loaded (imported) when this module is first imported.

v0 used the ``multimethod`` package; this small dispatcher covers what v0 code does
with it (classes and ``Any`` as annotations, the most specific match wins).
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["estimator_predict", "fit_estimator"]

log = logging.getLogger(__name__)
_GENERICS_ENTRYPOINTS: dict[str, dict[str, Any]] = {}


class Generic:
    """A function dispatched on the classes of its positional arguments."""

    def __init__(self, fallback: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fallback)
        self._overloads: list[tuple[tuple[Any, ...], Callable[..., Any]]] = []
        self.register(fallback)

    def register(self, func: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(func)
        signature: list[Any] = []
        for param in inspect.signature(func).parameters.values():
            if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                break
            if param.default is not param.empty:
                break
            signature.append(hints.get(param.name, Any))
        self._overloads.append((tuple(signature), func))
        return func

    def _resolve(self, args: tuple[Any, ...]) -> Callable[..., Any]:
        best, best_score = None, -1
        for signature, func in self._overloads:
            if len(signature) != len(args):
                continue
            score = 0
            for cls, arg in zip(signature, args, strict=True):
                if cls is Any or cls is object:
                    continue
                if not isinstance(arg, cls):
                    break
                score += 1 + len(type(arg).__mro__) - type(arg).__mro__.index(cls)
            else:
                if score >= best_score:  # later registrations win ties
                    best, best_score = func, score
        if best is None:
            raise TypeError(f"{self.__name__}: no overload for {len(args)} positional args")
        return best

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._resolve(args)(*args, **kwargs)


@Generic
def fit_estimator(estimator: Any, x: Any, y: Any, **kwargs: Any) -> Any:
    """Fit ``estimator`` on ``x`` (and ``y``)."""
    log.debug("fit_estimator: calling %s.fit", type(estimator).__name__)
    try:
        return estimator.fit(x, y, **kwargs)
    except AttributeError:
        log.exception("fit_estimator: %s has no usable fit()", type(estimator).__name__)
        raise


@Generic
def estimator_predict(estimator: Any, x: Any, **kwargs: Any) -> Any:
    """Predict with ``estimator`` on ``x``."""
    log.debug("estimator_predict: calling %s.predict", type(estimator).__name__)
    try:
        return estimator.predict(x, **kwargs)
    except AttributeError:
        log.exception("estimator_predict: %s has no usable predict()", type(estimator).__name__)
        raise


# v0 allowed fit_estimator(estimator, x) for models fed a dataset/iterator with no y.
@fit_estimator.register
def _fit_without_y(estimator: Any, x: Any, **kwargs: Any) -> Any:
    log.debug("fit_estimator: calling %s.fit without y", type(estimator).__name__)
    return estimator.fit(x, **kwargs)


def register_entrypoints() -> None:
    """Import the overload modules named by the ``dioptra.generics.*`` entry points."""
    for generic in ("estimator_predict", "fit_estimator"):
        loaded = _GENERICS_ENTRYPOINTS.setdefault(generic, {})
        for ep in importlib.metadata.entry_points(group=f"dioptra.generics.{generic}"):
            try:
                loaded[ep.name] = ep.load()
            except (AttributeError, ImportError) as exc:
                log.warning("skipping the %s overloads %r: %s", generic, ep.name, exc)


register_entrypoints()
