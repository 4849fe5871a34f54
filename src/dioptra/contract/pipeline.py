"""The pipeline format: parse, check and expand a pipeline definition.

A pipeline is a named set of stages, each one entry point (or a list of them) of ONE
workflow archive. The definition reads the same as YAML (for a person) or JSON (for the
API)::

    name: digits-evasion
    experiment: digits-evasion
    queue: pytorch_cpu
    timeout: 1h                         # default of every stage (24h if absent)
    stages:
      train:
        entryPoint: train
        params: {epochs: 10}
      attack:
        entryPoint: [fgm, pgd]          # a list is a grid axis
        after: train                    # fan-out: once per job of `train`
        params: {model_run_id: "${train.runId}"}
        grid: {eps: [0.05, 0.1, 0.2, 0.3]}      # cross product of the lists
      infer:
        entryPoint: infer
        after: attack
        params: {model_run_id: "${train.runId}", adv_run_id: "${attack.runId}"}
      report:
        entryPoint: report
        afterAll: infer                 # fan-in: once, after every `infer` job
        params: {runs: "${infer.runIds}"}

``zip: {a: [...], b: [...]}`` varies lists of one length together (one axis, crossed
with the grid). References, resolved by the server when a job is released:
``${STAGE.runId}`` and ``${STAGE.jobId}`` (the one job of an upstream stage this job
descends from), ``${STAGE.params.NAME}`` (a parameter of that job), ``${STAGE.runIds}``
(the comma-separated run ids of all the upstream stage's jobs it descends from).

This module knows no server and no database: the services and the client both use it.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from dioptra.contract.mlproject import MLprojectError, Project

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
REFERENCE = re.compile(r"\$\{([^}]*)\}")
_REFERENCE_BODY = re.compile(
    r"^\s*(?P<stage>[A-Za-z_][A-Za-z0-9_-]*)\.(?P<what>runId|runIds|jobId|params\.(?P<param>[^\s}]+))\s*$"
)
TOP_KEYS = {"name", "description", "experiment", "queue", "timeout", "stages"}
STAGE_KEYS = {"entryPoint", "params", "grid", "zip", "after", "afterAll", "queue", "timeout",
              "description"}
MAX_JOBS = 1000  # a typo in a grid should not flood the queues


class PipelineError(ValueError):
    """The definition is not usable; ``problems`` lists every reason, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Reference:
    text: str  # as written, "${train.runId}"
    stage: str
    what: str  # "runId", "runIds", "jobId" or "param"
    param: str | None = None


@dataclass(frozen=True)
class Point:
    """One job of a stage before it has parents: its entry point and its parameters."""

    entry_point: str
    params: dict[str, str]  # values are strings, possibly with ${...} references
    varying: dict[str, str]  # the grid/zip values (and the entry point if a list) of this point


@dataclass(frozen=True)
class Stage:
    name: str
    entry_points: tuple[str, ...]
    params: dict[str, str] = field(default_factory=dict)
    grid: dict[str, tuple[str, ...]] = field(default_factory=dict)
    zipped: dict[str, tuple[str, ...]] = field(default_factory=dict)
    after: str | None = None  # fan-out parent stage
    after_all: tuple[str, ...] = ()  # fan-in parent stages
    queue: str | None = None
    timeout: str | None = None

    @property
    def parents(self) -> tuple[str, ...]:
        return (self.after,) if self.after else self.after_all

    def points(self) -> list[Point]:
        """The cross product of entry points, grid lists and the zipped lists."""
        axes: list[list[dict[str, str]]] = []
        if len(self.entry_points) > 1:
            axes.append([{"entryPoint": ep} for ep in self.entry_points])
        for key, values in self.grid.items():
            axes.append([{key: v} for v in values])
        if self.zipped:
            length = len(next(iter(self.zipped.values())))
            axes.append([{k: vs[i] for k, vs in self.zipped.items()} for i in range(length)])
        points = []
        for combo in itertools.product(*axes):
            varying: dict[str, str] = {}
            for part in combo:
                varying.update(part)
            entry_point = varying.get("entryPoint", self.entry_points[0])
            params = dict(self.params)
            params.update({k: v for k, v in varying.items() if k != "entryPoint"})
            points.append(Point(entry_point, params, varying))
        return points


@dataclass(frozen=True)
class Pipeline:
    name: str
    experiment: str
    queue: str | None
    timeout: str
    stages: dict[str, Stage]  # in an order where parents come first
    description: str = ""
    source: dict = field(default_factory=dict)  # the definition as given (for reports)

    def job_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for stage in self.stages.values():
            n = len(stage.points())
            counts[stage.name] = n * counts[stage.after] if stage.after else n
        return counts

    def ancestors(self, name: str) -> dict[str, bool]:
        """Upstream stages of ``name``, each with whether it is reached through fan-out
        edges only (then a job descends from exactly one job of it)."""
        found: dict[str, bool] = {}
        frontier = [(name, True)]
        while frontier:
            current, single = frontier.pop()
            stage = self.stages[current]
            for parent in stage.parents:
                one = single and stage.after == parent
                if found.get(parent) is not True:
                    found[parent] = one or found.get(parent, False)
                frontier.append((parent, one))
        return found

    def queue_of(self, stage: Stage) -> str | None:
        return stage.queue or self.queue

    def timeout_of(self, stage: Stage) -> str:
        return stage.timeout or self.timeout


# -- values ---------------------------------------------------------------------------------

def format_value(value: Any) -> str:
    """A parameter value as the entry point gets it (MLflow passes strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def references(value: str) -> tuple[list[Reference], list[str]]:
    """The references in ``value``, and the problems of those that are malformed."""
    found, problems = [], []
    for match in REFERENCE.finditer(value):
        body = _REFERENCE_BODY.match(match.group(1))
        if body is None:
            problems.append(
                f"{match.group(0)} is not a reference (write ${{STAGE.runId}}, "
                "${STAGE.runIds}, ${STAGE.jobId} or ${STAGE.params.NAME})")
            continue
        what = body.group("what")
        param = body.group("param")
        found.append(Reference(match.group(0), body.group("stage"),
                               "param" if param else what, param))
    return found, problems


def resolve(value: str, lookup: Callable[[Reference], str]) -> str:
    """``value`` with each reference replaced by ``lookup(reference)``."""
    def replace(match: re.Match) -> str:
        refs, _ = references(match.group(0))
        return lookup(refs[0])

    return REFERENCE.sub(replace, value)


# -- parsing --------------------------------------------------------------------------------

def load(text: str | bytes | Mapping) -> dict:
    """A definition from YAML or JSON text (or an already parsed mapping)."""
    if isinstance(text, Mapping):
        return dict(text)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise PipelineError(["the pipeline definition is not UTF-8 text"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError([f"the pipeline definition is not valid YAML or JSON: {exc}"]
                            ) from None
    if not isinstance(data, dict):
        raise PipelineError(["the pipeline definition must be a mapping with 'name', "
                             "'experiment' and 'stages'"])
    return data


def parse(definition: str | bytes | Mapping, project: Project | None = None) -> Pipeline:
    """Check the whole definition (and, given the workflow's MLproject, every grid point
    against its entry point); raise PipelineError listing every problem."""
    data = load(definition)
    problems: list[str] = []
    unknown = sorted(set(map(str, data)) - TOP_KEYS)
    if unknown:
        problems.append(f"unknown top-level field(s) {', '.join(unknown)} "
                        f"(allowed: {', '.join(sorted(TOP_KEYS))})")
    name = _text(data, "name", "", problems, required=True)
    if name and not NAME.match(name):
        problems.append(f"'name' {name!r} must be letters, digits, '_' or '-' (at most 64)")
    experiment = _text(data, "experiment", "", problems, required=True)
    queue = _text(data, "queue", "", problems) or None
    timeout = _text(data, "timeout", "", problems) or "24h"
    description = _text(data, "description", "", problems)

    raw_stages = data.get("stages")
    stages: dict[str, Stage] = {}
    if not isinstance(raw_stages, dict) or not raw_stages:
        problems.append("'stages' must be a non-empty mapping of stage name to stage")
        raw_stages = {}
    for stage_name, raw in raw_stages.items():
        stage = _parse_stage(str(stage_name), raw, problems)
        if stage is not None:
            stages[stage.name] = stage
    for stage in stages.values():
        if not (stage.queue or queue):
            problems.append(f"stage {stage.name!r}: no 'queue' (give one for the pipeline "
                            "or for the stage)")

    ordered = _order(stages, problems)
    pipeline = Pipeline(name, experiment, queue, timeout, ordered, description, dict(data))
    if ordered:
        _check_references(pipeline, project, problems)
        counts = pipeline.job_counts()
        total = sum(counts.values())
        if total > MAX_JOBS:
            problems.append(f"the pipeline would make {total} jobs, more than {MAX_JOBS}")
    if project is not None:  # stage by stage: needs no order
        _check_against(stages.values(), project, problems)
    if problems:
        raise PipelineError(problems)
    return pipeline


def _text(data: Mapping, key: str, where: str, problems: list[str], required: bool = False
          ) -> str:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(f"{where}'{key}' is required")
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        problems.append(f"{where}'{key}' must be a string")
        return ""
    return str(value)


def _parse_stage(name: str, raw: Any, problems: list[str]) -> Stage | None:
    where = f"stage {name!r}: "
    if not NAME.match(name):
        problems.append(f"{where}a stage name must be letters, digits, '_' or '-'")
    if not isinstance(raw, dict):
        problems.append(f"{where}must be a mapping with at least 'entryPoint'")
        return None
    unknown = sorted(set(map(str, raw)) - STAGE_KEYS)
    if unknown:
        problems.append(f"{where}unknown field(s) {', '.join(unknown)} "
                        f"(allowed: {', '.join(sorted(STAGE_KEYS))})")
    raw_eps = raw.get("entryPoint")
    eps = raw_eps if isinstance(raw_eps, list) else [raw_eps]
    if raw_eps is None or not eps or not all(isinstance(e, str) and e for e in eps):
        problems.append(f"{where}'entryPoint' must be an entry point name or a non-empty "
                        "list of them")
        eps = []
    elif len(set(eps)) != len(eps):
        problems.append(f"{where}'entryPoint' lists an entry point twice")

    params: dict[str, str] = {}
    raw_params = raw.get("params") or {}
    if not isinstance(raw_params, dict):
        problems.append(f"{where}'params' must be a mapping of name to value")
        raw_params = {}
    for key, value in raw_params.items():
        if not _scalar(value):
            hint = " (put lists under 'grid' or 'zip')" if isinstance(value, list) else ""
            problems.append(f"{where}parameter {key!r} must be a string, number or "
                            f"boolean{hint}")
            continue
        params[str(key)] = format_value(value)

    grid = _lists(raw, "grid", where, problems)
    zipped = _lists(raw, "zip", where, problems)
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        problems.append(f"{where}the lists under 'zip' must have one length "
                        f"(got {', '.join(str(n) for n in sorted(lengths))})")
        zipped = {}
    clash = (set(grid) & set(zipped)) | ((set(grid) | set(zipped)) & set(params))
    for key in sorted(clash):
        problems.append(f"{where}parameter {key!r} is given in more than one of "
                        "'params', 'grid' and 'zip'")

    after = raw.get("after")
    after_all = raw.get("afterAll")
    if after is not None and after_all is not None:
        problems.append(f"{where}give 'after' (once per job of a stage) or 'afterAll' "
                        "(once after all of them), not both")
    if after is not None and not isinstance(after, str):
        problems.append(f"{where}'after' must be one stage name")
        after = None
    if after_all is not None:
        after_all = [after_all] if isinstance(after_all, str) else after_all
        if not isinstance(after_all, list) or not all(isinstance(s, str) for s in after_all):
            problems.append(f"{where}'afterAll' must be a stage name or a list of them")
            after_all = None
    queue = _text(raw, "queue", where, problems) or None
    timeout = _text(raw, "timeout", where, problems) or None
    return Stage(name, tuple(eps), params, grid, zipped, after, tuple(after_all or ()),
                 queue, timeout)


def _lists(raw: dict, key: str, where: str, problems: list[str]) -> dict[str, tuple[str, ...]]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        problems.append(f"{where}'{key}' must be a mapping of parameter name to a list")
        return {}
    found = {}
    for name, values in value.items():
        if not isinstance(values, list) or not values:
            problems.append(f"{where}'{key}.{name}' must be a non-empty list of values")
            continue
        if not all(_scalar(v) for v in values):
            problems.append(f"{where}'{key}.{name}' must list strings, numbers or booleans")
            continue
        found[str(name)] = tuple(format_value(v) for v in values)
    return found


def _order(stages: dict[str, Stage], problems: list[str]) -> dict[str, Stage]:
    """The stages with parents first; problems for unknown parents and cycles."""
    ok = True
    for stage in stages.values():
        for parent in stage.parents:
            if parent not in stages:
                problems.append(f"stage {stage.name!r} comes after {parent!r}, which is not "
                                "a stage of this pipeline")
                ok = False
            elif parent == stage.name:
                problems.append(f"stage {stage.name!r} comes after itself")
                ok = False
    if not ok:
        return {}
    ordered: dict[str, Stage] = {}
    remaining = dict(stages)
    while remaining:
        ready = [s for s in remaining.values() if all(p in ordered for p in s.parents)]
        if not ready:
            cycle = ", ".join(sorted(remaining))
            problems.append(f"the stages {cycle} come after each other in a cycle")
            return {}
        for stage in ready:
            ordered[stage.name] = remaining.pop(stage.name)
    return ordered


def _check_references(pipeline: Pipeline, project: Project | None, problems: list[str]
                      ) -> None:
    counts = pipeline.job_counts()
    for stage in pipeline.stages.values():
        upstream = pipeline.ancestors(stage.name)
        for key, value in _all_values(stage):
            refs, bad = references(value)
            problems.extend(f"stage {stage.name!r}, parameter {key!r}: {b}" for b in bad)
            for ref in refs:
                where = f"stage {stage.name!r}, parameter {key!r}: {ref.text}"
                if ref.stage not in pipeline.stages:
                    problems.append(f"{where} names no stage of this pipeline")
                elif ref.stage not in upstream:
                    problems.append(f"{where} names a stage that does not come before "
                                    f"{stage.name!r} (add it to 'after' or 'afterAll')")
                elif ref.what != "runIds" and not upstream[ref.stage] and counts[ref.stage] != 1:
                    problems.append(f"{where}: a job of {stage.name!r} comes after several "
                                    f"jobs of {ref.stage!r}; use ${{{ref.stage}.runIds}}")
                elif ref.what == "param":
                    referred = pipeline.stages[ref.stage]
                    if not any(ref.param in p.params
                               or ref.param in _declared(project, p.entry_point)
                               for p in referred.points()):
                        problems.append(f"{where}: stage {ref.stage!r} sets no parameter "
                                        f"{ref.param!r}")


def _declared(project: Project | None, entry_point: str) -> set[str]:
    if project is None:
        return set()
    try:
        return set(project.entry_point(entry_point).parameters)
    except MLprojectError:
        return set()


def defaults(project: Project, entry_point: str) -> dict[str, str]:
    """The default values of an entry point's parameters (those that have one)."""
    try:
        declared = project.entry_point(entry_point).parameters.values()
    except MLprojectError:
        return {}
    return {p.name: p.default for p in declared if p.default is not None}


def _placeholder(kind: str) -> str:
    """A value of the right type standing for a reference not resolved yet."""
    return {"float": "0", "int": "0", "integer": "0", "uri": "ref://pending"}.get(
        kind.lower(), "pending")


def _all_values(stage: Stage):
    yield from stage.params.items()
    for key, values in [*stage.grid.items(), *stage.zipped.items()]:
        for value in values:
            yield key, value


def _check_against(stages, project: Project, problems: list[str]) -> None:
    """Every point of every stage against its entry point in the MLproject. A value with
    a reference is checked once resolved, on release; only its presence counts here.

    A stage of several entry points gives each of them every parameter: one that an entry
    point does not declare would reach its script as an unknown option, so it is refused
    (a single entry point may take undeclared ones, as in MLflow)."""
    for stage in stages:
        seen: set[str] = set()
        for point in stage.points():
            try:
                entry_point = project.entry_point(point.entry_point)
                undeclared = sorted(set(point.params) - set(entry_point.parameters))
                if len(stage.entry_points) > 1 and entry_point.parameters and undeclared:
                    raise MLprojectError(
                        f"entry point {point.entry_point!r} does not declare "
                        f"{', '.join(map(repr, undeclared))}, which the stage gives each of "
                        "its entry points (split the stage, or declare it)")
                concrete = {}
                for key, value in point.params.items():
                    param = entry_point.parameters.get(key)
                    if REFERENCE.search(value):
                        value = _placeholder(param.type if param else "string")
                    concrete[key] = value
                project.validate(point.entry_point, concrete)
            except MLprojectError as exc:
                message = f"stage {stage.name!r}: {exc}"
                if message not in seen:
                    seen.add(message)
                    problems.append(message)


def to_json(pipeline: Pipeline) -> str:
    return json.dumps(pipeline.source, sort_keys=False)
