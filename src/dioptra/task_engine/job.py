"""Run a ``/job/newTaskEngine`` job inside the worker's MLflow run.

``python -m dioptra.task_engine.job experiment.yml parameters.json`` is the command of
the archive the server builds for such a job (``services/task_engine_jobs.py``). As
v0's worker did, it logs the description (``experiment.yaml``) and the global
parameters as given, then runs the experiment; an exception fails the job (exit 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from dioptra.task_engine import task_engine
from dioptra.task_engine.run_experiment import _setup_logging


def main(argv: list[str] | None = None) -> int:
    desc_file, params_file = (argv if argv is not None else sys.argv[1:])[:2]
    desc = yaml.safe_load(Path(desc_file).read_text(encoding="utf-8"))
    params = json.loads(Path(params_file).read_text(encoding="utf-8"))
    _setup_logging("info")

    import mlflow

    with mlflow.start_run():  # resumes the worker's run (MLFLOW_RUN_ID)
        mlflow.log_dict(desc, "experiment.yaml")
        if params:
            mlflow.log_params(dict(params))  # as given (v0: before defaults are added)
        task_engine.run_experiment(desc, params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
