"""Task-plugin registry, compatible with ``dioptra.pyplugs`` of Dioptra v0.

A task plugin is a function in a module ``<package>.<plugin>`` decorated with
:func:`register`.  The registry is keyed by *package* (the module path minus its last
part, e.g. ``dioptra_builtins.random``), *plugin* (the last part, e.g. ``rng``) and the
function name.  Plugin modules are imported lazily, the first time something asks for
them, with :func:`importlib.import_module`.

The Prefect helpers of the original (``get_task``/``call_task``) build Prefect 1.x tasks
when Prefect 1.x is installed (the ``[v0]`` extra) and are called inside a flow;
anywhere else (or without Prefect) they call the function directly.
"""

from dioptra.pyplugs._plugins import (
    PluginInfo,
    call,
    call_factory,
    call_task,
    exists,
    exists_factory,
    funcs,
    funcs_factory,
    get,
    get_factory,
    get_task,
    info,
    info_factory,
    names,
    names_factory,
    register,
    task_nout,
)
from dioptra.pyplugs.exceptions import (
    PyPlugsError,
    UnknownPackageError,
    UnknownPluginError,
    UnknownPluginFunctionError,
)

__all__ = [
    "PluginInfo",
    "PyPlugsError",
    "UnknownPackageError",
    "UnknownPluginError",
    "UnknownPluginFunctionError",
    "call",
    "call_factory",
    "call_task",
    "exists",
    "exists_factory",
    "funcs",
    "funcs_factory",
    "get",
    "get_factory",
    "get_task",
    "info",
    "info_factory",
    "names",
    "names_factory",
    "register",
    "task_nout",
]
