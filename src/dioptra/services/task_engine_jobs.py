"""``POST /api/v0/job/newTaskEngine``: a job from a JSON experiment description.

The description is validated here (400 naming every error, never a job that cannot
run); then the job is an ordinary job whose workflow archive the server writes: the
description, the global parameters and an MLproject whose one entry point runs them
with ``dioptra.task_engine.job``. So it is claimed, sandboxed, timed out, logged and
reported like every other job (v0 ran it inside the RQ worker and could leave it
``queued`` for good).
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dioptra.db.models import Job
from dioptra.services import jobs
from dioptra.services.context import ServiceContext
from dioptra.services.errors import BadRequest
from dioptra.task_engine.issues import IssueSeverity
from dioptra.task_engine.validation import validate

ENTRY_POINT = "task_engine"
_MLPROJECT = f"""\
name: task-engine
entry_points:
  {ENTRY_POINT}:
    command: "python -m dioptra.task_engine.job experiment.yml parameters.json"
"""


@dataclass
class TaskEngineSubmission:
    experiment_name: str
    queue: str
    experiment_description: Any
    global_parameters: Mapping[str, Any] = field(default_factory=dict)
    timeout: str = "24h"
    depends_on: str | None = None


def check_description(desc: Any) -> None:
    """Raise BadRequest naming every error of the description (warnings are fine)."""
    errors = [i for i in validate(desc) if i.severity is IssueSeverity.ERROR]
    if errors:
        listed = " ".join(f"{n}. {issue}" for n, issue in enumerate(errors, 1))
        raise BadRequest(f"The experiment description is invalid! Issues: {listed}")


def _archive(path: Path, desc: Any, params: Mapping[str, Any]) -> None:
    files = {
        "MLproject": _MLPROJECT,
        "experiment.yml": yaml.safe_dump(desc, sort_keys=False),
        "parameters.json": json.dumps(dict(params)),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


def submit(ctx: ServiceContext, sub: TaskEngineSubmission) -> Job:
    check_description(sub.experiment_description)
    try:
        json.dumps(dict(sub.global_parameters))
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"The field 'globalParameters' is invalid: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="task-engine-") as tmp:
        archive = Path(tmp) / "task-engine.tar.gz"
        _archive(archive, sub.experiment_description, sub.global_parameters)
        return jobs.submit(
            ctx,
            jobs.Submission(
                experiment_name=sub.experiment_name,
                queue=sub.queue,
                entry_point=ENTRY_POINT,
                workflow_path=archive,
                workflow_filename=archive.name,
                entry_point_kwargs=None,
                depends_on=sub.depends_on,
                timeout=sub.timeout,
            ),
        )
