"""What a workflow archive offers: its MLproject's entry points and their parameters."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dioptra.archives import ArchiveError, safe_extract
from dioptra.contract.mlproject import MLprojectError, find_project_dir, load_project
from dioptra.services.errors import BadRequest


def entry_points(archive: Path) -> dict:
    """The MLproject of ``archive`` as the submit form needs it (same checks as a job's)."""
    with tempfile.TemporaryDirectory(prefix="dioptra-inspect-") as tmp:
        try:
            safe_extract(archive, Path(tmp))
        except ArchiveError as exc:
            raise BadRequest(f"The workflow archive was rejected: {exc}") from exc
        try:
            project = load_project(find_project_dir(Path(tmp)))
        except MLprojectError as exc:
            raise BadRequest(f"The workflow's MLproject is not usable: {exc}") from exc
    return {
        "name": project.name,
        "entryPoints": [{
            "name": ep.name,
            "command": ep.command,
            "parameters": [{"name": p.name, "type": p.type, "default": p.default,
                            "required": p.required} for p in ep.parameters.values()],
        } for ep in project.entry_points.values()],
    }
