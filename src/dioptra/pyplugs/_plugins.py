"""The registry behind :mod:`dioptra.pyplugs`."""

from __future__ import annotations

import functools
import importlib
import pkgutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from dioptra.pyplugs.exceptions import (
    UnknownPackageError,
    UnknownPluginError,
    UnknownPluginFunctionError,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PluginInfo:
    """What the registry knows about one registered function."""

    package_name: str
    plugin_name: str
    func_name: str
    func: Callable[..., Any]
    description: str
    doc: str
    module_doc: str
    sort_value: float


# package -> plugin -> func name -> PluginInfo (insertion order = registration order)
_PLUGINS: dict[str, dict[str, dict[str, PluginInfo]]] = {}
_LOCK = threading.RLock()


def _split_module(module: str) -> tuple[str, str]:
    package, _, plugin = module.rpartition(".")
    return package, plugin


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


@overload
def register(func: F, *, sort_value: float = 0) -> F: ...


@overload
def register(func: None = None, *, sort_value: float = 0) -> Callable[[F], F]: ...


def register(func=None, *, sort_value=0):
    """Register ``func`` as a plugin function and return it unchanged.

    Usable bare (``@register``) or called (``@register()``,
    ``@register(sort_value=2)``).  Functions with a lower ``sort_value`` come first in
    :func:`funcs` and are the default of :func:`get` when no function is named.
    """

    if func is None:
        return functools.partial(register, sort_value=sort_value)

    package, plugin = _split_module(func.__module__)
    module_doc = getattr(sys.modules.get(func.__module__), "__doc__", None) or ""
    doc = func.__doc__ or ""
    record = PluginInfo(
        package_name=package,
        plugin_name=plugin,
        func_name=func.__name__,
        func=func,
        description=_first_line(doc),
        doc=doc,
        module_doc=module_doc,
        sort_value=sort_value,
    )
    with _LOCK:
        _PLUGINS.setdefault(package, {}).setdefault(plugin, {})[func.__name__] = record
    return func


def task_nout(nout: int) -> Callable[[F], F]:
    """Declare how many outputs a task returns (``func._task_nout``)."""

    def decorator(func: F) -> F:
        func._task_nout = nout  # type: ignore[attr-defined]
        return func

    return decorator


def _import_package(package: str):
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as err:
        if err.name is not None and (package == err.name or package.startswith(err.name + ".")):
            raise UnknownPackageError(f"Package {package!r} does not exist") from None
        raise


def _import(package: str, plugin: str) -> None:
    """Import ``package.plugin`` so that its functions register themselves."""

    with _LOCK:
        if plugin in _PLUGINS.get(package, {}):
            return
    if package:
        _import_package(package)
    module_name = f"{package}.{plugin}" if package else plugin  # "" = a top-level module
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            where = f" in package {package!r}" if package else ""
            raise UnknownPluginError(f"Plugin {plugin!r} not found{where}") from None
        raise


def names(package: str) -> list[str]:
    """Names of the plugin modules of ``package`` (importable modules, sorted)."""

    pkg = _import_package(package)
    found = set()
    if hasattr(pkg, "__path__"):
        found.update(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.ispkg)
    with _LOCK:
        found.update(_PLUGINS.get(package, {}))
    return sorted(n for n in found if not n.startswith("_"))


def _records(package: str, plugin: str) -> list[PluginInfo]:
    _import(package, plugin)
    with _LOCK:
        records = list(_PLUGINS.get(package, {}).get(plugin, {}).values())
    return sorted(records, key=lambda r: r.sort_value)  # stable: ties keep order


def funcs(package: str, plugin: str) -> list[str]:
    """Names of the registered functions of a plugin, ordered by ``sort_value``."""

    return [r.func_name for r in _records(package, plugin)]


def info(package: str, plugin: str, func: str | None = None) -> PluginInfo:
    """The :class:`PluginInfo` of a function (the first one when ``func`` is None)."""

    records = _records(package, plugin)
    if func is None:
        if not records:
            raise UnknownPluginFunctionError(
                f"No functions registered in plugin {package}.{plugin}"
            )
        return records[0]
    for record in records:
        if record.func_name == func:
            return record
    raise UnknownPluginFunctionError(
        f"Function {func!r} is not registered in plugin {package}.{plugin}"
    )


def exists(package: str, plugin: str) -> bool:
    """Whether ``package`` has a plugin module called ``plugin``."""

    with _LOCK:
        if plugin in _PLUGINS.get(package, {}):
            return True
    try:
        return plugin in names(package)
    except UnknownPackageError:
        return False


def get(package: str, plugin: str, func: str | None = None) -> Callable[..., Any]:
    """The registered function itself."""

    return info(package, plugin, func).func


def call(package: str, plugin: str, func: str | None = None, /, *args, **kwargs) -> Any:
    """Call a plugin function: ``call(package, plugin, func, *args, **kwargs)``."""

    return get(package, plugin, func)(*args, **kwargs)


def get_task(package: str, plugin: str, func: str | None = None) -> Callable[..., Any]:
    """The plugin as a Prefect 1.x task when Prefect is installed, else the function.

    With Prefect (the ``[v0]`` extra), the task builds a flow node when called inside a
    ``with prefect.Flow(...)`` block, as in v0, and calls the function directly
    anywhere else (v0's Prefect raised there). ``task_nout`` sets the node's ``nout``.
    """

    function = get(package, plugin, func)
    # A flow exists only where the caller imported prefect: spare everyone else its import.
    task_class = _prefect_task_class() if sys.modules.get("prefect") is not None else None
    if task_class is None:
        return function
    return task_class(function, nout=getattr(function, "_task_nout", None))


def call_task(package: str, plugin: str, func: str | None = None, /, *args, **kwargs) -> Any:
    """:func:`get_task` called with the arguments: a flow node inside a Prefect flow."""

    return get_task(package, plugin, func)(*args, **kwargs)


@functools.cache
def _prefect_task_class() -> type | None:
    try:
        import prefect
        from prefect.core.task import Task
        from prefect.tasks.core.function import FunctionTask
    except ImportError:
        return None
    if not prefect.__version__.startswith("1."):
        return None  # Prefect 2+ has no Flow contexts of this kind

    class DioptraFunctionTask(FunctionTask):
        """A FunctionTask that runs the function directly outside a flow context."""

        def __init__(self, fn: Callable[..., Any], nout: int | None = None) -> None:
            super().__init__(fn, name=fn.__name__, nout=nout)
            self._task_nout = nout

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            if prefect.context.get("flow") is None:
                return self.run(*args, **kwargs)
            return Task.__call__(self, *args, **kwargs)

    return DioptraFunctionTask


# Factories: bind the package once, like the original pyplugs.
def names_factory(package: str) -> Callable[[], list[str]]:
    return functools.partial(names, package)


def funcs_factory(package: str) -> Callable[[str], list[str]]:
    return functools.partial(funcs, package)


def info_factory(package: str) -> Callable[..., PluginInfo]:
    return functools.partial(info, package)


def exists_factory(package: str) -> Callable[[str], bool]:
    return functools.partial(exists, package)


def get_factory(package: str) -> Callable[..., Callable[..., Any]]:
    return functools.partial(get, package)


def call_factory(package: str) -> Callable[..., Any]:
    return functools.partial(call, package)
