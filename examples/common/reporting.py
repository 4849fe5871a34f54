"""Helpers for the examples' entry points (shipped at the root of every workflow archive).

* :func:`run_info` reads the parameters, metrics and tags of another MLflow run (the
  run ids that jobs pass to each other);
* :func:`markdown_table` formats a small data frame as a Markdown table;
* :func:`publish_report` stores the report as an artifact of the active run and prints
  it to the job log between two marker lines, where the example's ``run.py`` finds it.
"""

from __future__ import annotations

import math
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from dioptra_builtins.artifacts import mlflow as artifacts

REPORT_BEGIN = "----- report -----"  # the same strings as in examples/_driver.py
REPORT_END = "----- end of report -----"


@dataclass
class RunInfo:
    run_id: str
    entry_point: str
    params: dict[str, str]
    metrics: dict[str, float]


def run_info(run_id: str) -> RunInfo:
    """Parameters (unquoted), latest metrics and entry point of MLflow run ``run_id``."""
    run = mlflow.MlflowClient().get_run(run_id)
    # The worker logs the entry point's parameters shell-quoted, as `mlflow run` does.
    params = {}
    for key, value in run.data.params.items():
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value]
        params[key] = words[0] if len(words) == 1 else value
    return RunInfo(
        run_id=run_id,
        entry_point=run.data.tags.get("mlflow.project.entryPoint", ""),
        params=params,
        metrics=dict(run.data.metrics),
    )


def comma_list(text: str) -> list[str]:
    """``"a,b,c"`` (e.g. run ids, as the driver passes them) as ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """``frame`` (its index dropped) as a Markdown table; floats to ``digits`` places."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def publish_report(markdown: str, file_name: str) -> None:
    """Log ``markdown`` as the artifact ``file_name`` and print it for the driver."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file_name
        path.write_text(markdown + "\n", encoding="utf-8")
        artifacts.upload_file_as_artifact(path)
    print(REPORT_BEGIN, markdown, REPORT_END, sep="\n", flush=True)
