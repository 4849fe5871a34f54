"""The environment a Dioptra v0 entry point expects (reference task-engine.md §6).

v0 entry points run ``PYTHONPATH=$DIOPTRA_PLUGIN_DIR validate-experiment ...`` or
``with plugin_dirs(): ...``: the plugin folder must hold both plugin collections,
``dioptra_builtins/<package>`` and ``dioptra_custom/<package>``, so that replacing
PYTHONPATH with it takes nothing away. The folder lives inside the job's own folder
(fresh for every job, as v0 refreshed it before every job, and visible in a sandbox
that shows the job only its folder).

The builtins are copied rather than linked so that a job cannot write into the
installed collection; ``__pycache__`` is copied along (with the sources' times) so the
job does not recompile them. This module imports no plugin code (the worker parent
must not import torch).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

BUILTINS = "dioptra_builtins"
CUSTOM = "dioptra_custom"

# Where v0 workers fetched the collections from; v0 scripts may read or assert them.
_V0_PLUGIN_URIS = {
    "DIOPTRA_PLUGINS_S3_URI": "s3://plugins/dioptra_builtins",
    "DIOPTRA_CUSTOM_PLUGINS_S3_URI": "s3://plugins/dioptra_custom",
}
# Logging choices of v0 entry points, passed on when the worker was given them.
_PASSED_ON = ("DIOPTRA_JOB_LOG_LEVEL", "DIOPTRA_JOB_LOG_AS_JSON")


def builtins_source() -> Path:
    """The installed ``dioptra_builtins`` folder (found without importing it)."""
    spec = importlib.util.find_spec(BUILTINS)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the dioptra_builtins package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def lay_out_plugin_dir(plugin_dir: Path) -> None:
    """Put the builtins beside the custom plugins already under ``plugin_dir``.

    Afterwards ``plugin_dir/dioptra_builtins/<package>/<module>.py`` and
    ``plugin_dir/dioptra_custom/<package>/...`` both exist (``dioptra_custom`` stays a
    namespace package, as in v0, even when the job has no custom plugins).
    """
    (plugin_dir / CUSTOM).mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        builtins_source(),
        plugin_dir / BUILTINS,
        ignore=shutil.ignore_patterns("*.pyo", ".*"),
        copy_function=shutil.copy2,  # keeps mtimes: the copied __pycache__ stays valid
    )


def v0_variables(plugin_dir: Path, work_root: Path, environ: dict[str, str]) -> dict[str, str]:
    """The v0 worker variables an entry point sees, besides MLflow's and the job id.

    ``PREFECT__CONTEXT__RAISE_ON_EXCEPTION`` makes a failing Prefect 1.x task raise out
    of ``flow.run()``: v0 scripts ignore the flow's state, so without it a failed task
    ended the job ``finished`` (reference §8.10).
    """
    variables = {
        "DIOPTRA_PLUGIN_DIR": str(plugin_dir),
        "DIOPTRA_WORKDIR": str(work_root),
        "PREFECT__CONTEXT__RAISE_ON_EXCEPTION": "true",
        **_V0_PLUGIN_URIS,
    }
    for name in _PASSED_ON:
        if environ.get(name):
            variables[name] = environ[name]
    return variables


def python_path(plugin_dir: Path, environ: dict[str, str]) -> str:
    """PYTHONPATH for the job: the plugin folder first, then what the worker had."""
    return os.pathsep.join(filter(None, [str(plugin_dir), environ.get("PYTHONPATH")]))
