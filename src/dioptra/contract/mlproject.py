"""MLproject files: find, load, validate parameters, build the entry-point command.

The semantics follow MLflow projects (``mlflow run --env-manager local``) so that a v0
workflow archive runs here exactly as it ran under the original worker:

* declared parameters are substituted into the ``{name}`` placeholders of the command,
  each value shell-quoted with ``shlex.quote``; defaults fill what the job did not give;
* parameters the entry point does not declare are appended as `` --key value`` (both
  quoted);
* ``path`` values that are local paths become absolute paths (relative ones are taken
  relative to the project directory) and must exist when the command is built; other
  URIs are downloaded into the storage directory; ``uri`` values must carry a scheme and
  are passed on unchanged;
* an entry point that is not declared but names a ``.py`` / ``.sh`` file runs it with
  ``python`` / ``$SHELL`` (default ``bash``), every parameter appended as `` --key value``.

Two deliberate differences, both stricter than MLflow: values of ``float`` and ``int``
parameters must parse as such (MLflow passes anything through and lets the script fail
later), and the job's ``-P`` string is parsed with shell quoting, so values may contain
spaces (the v0 worker re-split it on whitespace).
"""

from __future__ import annotations

import os
import shlex
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The C parser when PyYAML has it: MLproject files are parsed on every submission.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MLPROJECT_FILE_NAME = "MLproject"
_SEARCH_DEPTH = 2  # sub-folder levels below the archive root searched for an MLproject
# Script entry points run without an MLproject declaration, as in MLflow.
_SCRIPT_RUNNERS = {".py": lambda: "python", ".sh": lambda: os.environ.get("SHELL", "bash")}


class MLprojectError(ValueError):
    """The MLproject, the entry point or its parameters are not usable; message says why."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "string"
    default: str | None = None  # None: the parameter is required

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class EntryPoint:
    name: str
    parameters: dict[str, Parameter] = field(default_factory=dict)
    command: str | None = None
    # ``warm_start: false`` in the MLproject: always a fresh interpreter (our extension;
    # MLflow ignores keys it does not know).
    warm_start: bool = True


@dataclass(frozen=True)
class Project:
    directory: Path
    name: str | None
    entry_points: dict[str, EntryPoint]

    def entry_point(self, name: str) -> EntryPoint:
        """The declared entry point, or a synthetic one for a ``.py``/``.sh`` script name."""
        if name in self.entry_points:
            return self.entry_points[name]
        runner = _SCRIPT_RUNNERS.get(os.path.splitext(name)[1])
        if runner is not None:
            return EntryPoint(name=name, parameters={}, command=f"{runner()} {shlex.quote(name)}")
        names = ", ".join(sorted(self.entry_points)) or "none"
        raise MLprojectError(f"entry point {name!r} is not in MLproject (entry points: {names})")

    def validate(self, entry_point: str, params: Mapping[str, str]) -> dict[str, str]:
        """Check the job's parameters; return every value the entry point will get.

        Declared parameters come first, in MLproject order, defaults filled in; parameters
        the entry point does not declare follow in the order given. Values are the raw
        strings (not yet quoted, paths not yet resolved).
        """
        ep = self.entry_point(entry_point)
        missing = [p.name for p in ep.parameters.values() if p.required and p.name not in params]
        if missing:
            noun = "parameter" if len(missing) == 1 else "parameters"
            listed = ", ".join(repr(name) for name in missing)
            raise MLprojectError(f"entry point {ep.name!r} requires {noun} {listed}")
        final: dict[str, str] = {}
        for param in ep.parameters.values():
            value = params[param.name] if param.name in params else param.default
            assert value is not None  # required parameters were checked above
            value = str(value)
            self._check_value(ep, param, value)
            final[param.name] = value
        for key, value in params.items():
            if key not in final:
                final[key] = str(value)
        return final

    def command(self, entry_point: str, params: Mapping[str, str], storage_dir: Path) -> str:
        """The shell command of the entry point, as ``mlflow run`` would build it.

        ``storage_dir`` receives downloads for ``path`` parameters given as remote URIs.
        """
        ep = self.entry_point(entry_point)
        final = self.validate(entry_point, params)
        substituted: dict[str, str] = {}
        extras: list[str] = []
        for position, (key, value) in enumerate(final.items()):
            param = ep.parameters.get(key)
            if param is None:
                extras.append(f"--{shlex.quote(key)} {shlex.quote(value)}")
                continue
            if param.type == "path":
                value = self._resolve_path(ep, param, value, storage_dir / f"param_{position}")
            substituted[key] = shlex.quote(value)
        if ep.command is None:
            raise MLprojectError(f"entry point {ep.name!r} has no command in MLproject")
        try:
            command = ep.command.format(**substituted)
        except KeyError as exc:
            raise MLprojectError(
                f"the command of entry point {ep.name!r} uses {{{exc.args[0]}}}, "
                "which is not one of its parameters"
            ) from None
        except (AttributeError, IndexError, ValueError) as exc:
            raise MLprojectError(
                f"the command of entry point {ep.name!r} is not a valid template: {exc} "
                "(write literal braces as {{ and }})"
            ) from None
        if extras:
            # A folded YAML command (``command: >``) ends in a newline; MLflow appends the
            # extras after it, so bash would run them as a separate command. Join on one line.
            command = command.rstrip()
        return " ".join([command, *extras])

    def _check_value(self, ep: EntryPoint, param: Parameter, value: str) -> None:
        where = f"parameter {param.name!r} of entry point {ep.name!r}"
        kind = param.type.lower()
        if kind == "float":
            try:
                float(value)
            except ValueError:
                raise MLprojectError(f"{where} must be a float, got {value!r}") from None
        elif kind in ("int", "integer"):
            try:
                int(value)
            except ValueError:
                raise MLprojectError(f"{where} must be an integer, got {value!r}") from None
        elif kind == "uri":
            if not urllib.parse.urlparse(value).scheme:
                raise MLprojectError(f"{where} must be a URI with a scheme, got {value!r}")

    def _resolve_path(
        self, ep: EntryPoint, param: Parameter, value: str, download_dir: Path
    ) -> str:
        # Checked here, on the worker, when the command is built (as MLflow does), not in
        # validate(): the server validates submissions and need not have the data.
        local = _local_path(value)
        if local is not None:
            resolved = os.path.abspath(os.path.join(self.directory, local))
            if not os.path.exists(resolved):
                raise MLprojectError(
                    f"parameter {param.name!r} of entry point {ep.name!r} is a path, but "
                    f"{value!r} does not exist on the worker"
                )
            return resolved
        # A remote URI (s3://...): fetch it, as MLflow does, and pass the local copy.
        import mlflow.artifacts  # lazily: only this rare case needs mlflow here

        download_dir.mkdir(parents=True, exist_ok=True)
        return mlflow.artifacts.download_artifacts(artifact_uri=value, dst_path=str(download_dir))


def _local_path(value: str) -> str | None:
    """The local path for a plain path or a ``file:///`` URI; None for other URIs."""
    parsed = urllib.parse.urlparse(value)
    if not parsed.scheme:
        return urllib.request.url2pathname(value)
    if parsed.scheme == "file" and not parsed.netloc:
        return urllib.request.url2pathname(parsed.path)
    return None


def _find_mlproject_file(directory: Path) -> Path | None:
    # MLflow matches the file name case-insensitively.
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return None
    for entry in entries:
        if entry.name.lower() == MLPROJECT_FILE_NAME.lower() and entry.is_file():
            return entry
    return None


def find_project_dir(root: Path) -> Path:
    """The folder holding the MLproject: ``root`` itself or the only sub-folder (≤ 2 deep)."""
    root = Path(root)
    if _find_mlproject_file(root) is not None:
        return root
    found: list[Path] = []
    level = [root]
    for _ in range(_SEARCH_DEPTH):
        level = [
            child
            for folder in level
            for child in sorted(folder.iterdir())
            if child.is_dir() and not child.is_symlink()
        ]
        found.extend(folder for folder in level if _find_mlproject_file(folder) is not None)
    if not found:
        raise MLprojectError(
            "no MLproject file in the workflow archive (looked at its top level and "
            f"{_SEARCH_DEPTH} folder levels down)"
        )
    if len(found) > 1:
        listed = ", ".join(str(folder.relative_to(root)) for folder in found)
        raise MLprojectError(
            f"the workflow archive holds several MLproject files (in {listed}); "
            "it must hold exactly one"
        )
    return found[0]


def load_project(project_dir: Path) -> Project:
    """Parse the MLproject file of ``project_dir``."""
    project_dir = Path(project_dir)
    path = _find_mlproject_file(project_dir)
    if path is None:
        raise MLprojectError(f"no MLproject file in {project_dir}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MLprojectError(f"MLproject is not readable YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MLprojectError("MLproject must be a YAML mapping (name, entry_points, ...)")
    raw_entry_points = data.get("entry_points") or {}
    if not isinstance(raw_entry_points, dict):
        raise MLprojectError("MLproject 'entry_points' must be a mapping of name to entry point")
    entry_points = {
        str(name): _load_entry_point(str(name), spec) for name, spec in raw_entry_points.items()
    }
    name = data.get("name")
    return Project(
        directory=project_dir,
        name=None if name is None else str(name),
        entry_points=entry_points,
    )


def _load_entry_point(name: str, spec: Any) -> EntryPoint:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise MLprojectError(f"entry point {name!r} in MLproject must be a mapping")
    raw_params = spec.get("parameters") or {}
    if not isinstance(raw_params, dict):
        raise MLprojectError(f"the parameters of entry point {name!r} must be a mapping")
    params: dict[str, Parameter] = {}
    for key, value in raw_params.items():
        key = str(key)
        if isinstance(value, str):  # "name: float" - a type only, so the value is required
            params[key] = Parameter(name=key, type=value)
        elif isinstance(value, dict):
            default = value.get("default")
            params[key] = Parameter(
                name=key,
                type=str(value.get("type", "string")),
                # str() as MLflow does: a YAML 30 gives "30", 0.001 gives "0.001".
                default=None if default is None else str(default),
            )
        else:
            raise MLprojectError(
                f"parameter {key!r} of entry point {name!r} must be a type name or a "
                "mapping with 'type' and 'default'"
            )
    command = spec.get("command")
    if command is not None and not isinstance(command, str):
        raise MLprojectError(f"the command of entry point {name!r} must be a string")
    warm_start = spec.get("warm_start", True)
    if not isinstance(warm_start, bool):
        raise MLprojectError(f"warm_start of entry point {name!r} must be true or false")
    return EntryPoint(name=name, parameters=params, command=command, warm_start=warm_start)


def parse_kwargs(text: str | None) -> dict[str, str]:
    """Parse a job's ``entryPointKwargs``: ``-P a=1 -P "b=two words" -Pc=3``.

    Shell quoting is honoured; each value is split from its name at the first ``=``.
    """
    if text is None or not text.strip():
        return {}
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise MLprojectError(f"entry point kwargs {text!r} cannot be parsed: {exc}") from None
    params: dict[str, str] = {}
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if token == "-P":
            if position == len(tokens):
                raise MLprojectError("entry point kwargs end with -P but no name=value after it")
            pair = tokens[position]
            position += 1
        elif token.startswith("-P"):
            pair = token[2:]
        else:
            raise MLprojectError(
                f"entry point kwargs: expected -P name=value, got {token!r} "
                "(write e.g. -P epochs=10 -P 'model_name=le net')"
            )
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise MLprojectError(f"entry point kwargs: -P {pair!r} is not of the form name=value")
        if name in params:
            raise MLprojectError(f"entry point kwargs: parameter {name!r} is given twice")
        params[name] = value
    return params
