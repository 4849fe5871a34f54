"""The v0 job environment: $DIOPTRA_PLUGIN_DIR laid out as v0 did, and its variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dioptra.worker.v0_environment import (
    builtins_source,
    lay_out_plugin_dir,
    python_path,
    v0_variables,
)


def test_plugin_dir_alone_makes_both_collections_importable(tmp_path):
    plugin_dir = tmp_path / "job" / "plugins"
    custom = plugin_dir / "dioptra_custom" / "mine"
    custom.mkdir(parents=True)
    (custom / "__init__.py").write_text("")
    (custom / "tasks.py").write_text(
        "from dioptra import pyplugs\n\n@pyplugs.register\ndef hello():\n    return 'hi'\n"
    )
    lay_out_plugin_dir(plugin_dir)
    assert (plugin_dir / "dioptra_builtins" / "random" / "rng.py").is_file()
    assert not (plugin_dir / "dioptra_custom" / "__init__.py").exists()  # namespace, as v0
    # As a v0 command line does it: PYTHONPATH *replaced* by the plugin folder.
    code = (
        "import dioptra_builtins.random.rng as r, dioptra_custom.mine.tasks as t\n"
        "from dioptra import pyplugs\n"
        "print(r.__file__)\n"
        "print(pyplugs.call('dioptra_custom.mine', 'tasks', 'hello'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(plugin_dir)}, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    where, said = done.stdout.splitlines()
    assert Path(where).is_relative_to(plugin_dir) and said == "hi"


def test_the_copy_is_the_job_s_own(tmp_path):
    plugin_dir = tmp_path / "plugins"
    lay_out_plugin_dir(plugin_dir)
    copied = plugin_dir / "dioptra_builtins" / "random" / "rng.py"
    copied.write_text("# changed by a job\n")
    assert (builtins_source() / "random" / "rng.py").read_text() != "# changed by a job\n"


def test_variables(tmp_path):
    plugin_dir = tmp_path / "job" / "plugins"
    env = {"DIOPTRA_JOB_LOG_LEVEL": "DEBUG", "PYTHONPATH": "/elsewhere"}
    variables = v0_variables(plugin_dir, tmp_path, env)
    assert variables["DIOPTRA_PLUGIN_DIR"] == str(plugin_dir)
    assert variables["DIOPTRA_WORKDIR"] == str(tmp_path)
    assert variables["DIOPTRA_PLUGINS_S3_URI"] == "s3://plugins/dioptra_builtins"
    assert variables["DIOPTRA_CUSTOM_PLUGINS_S3_URI"] == "s3://plugins/dioptra_custom"
    assert variables["DIOPTRA_JOB_LOG_LEVEL"] == "DEBUG"
    assert "DIOPTRA_JOB_LOG_AS_JSON" not in variables
    assert variables["PREFECT__CONTEXT__RAISE_ON_EXCEPTION"] == "true"
    assert python_path(plugin_dir, env) == f"{plugin_dir}{os.pathsep}/elsewhere"


def test_the_worker_gives_the_entry_point_v0_s_environment(tmp_path, monkeypatch):
    from dioptra.contract.messages import JobSpec
    from dioptra.worker.execute import _Job

    monkeypatch.setenv("PYTHONPATH", "/from/the/worker")
    spec = JobSpec(job_id="4eb2305e-57c3-4867-a59f-1a1ecd2033d4", experiment_id=3,
                   queue="q", entry_point="main", timeout="1h", timeout_seconds=3600,
                   workflow_uri="s3://workflow/x/wf.tar.gz", workflow_filename="wf.tar.gz",
                   mlflow_tracking_uri="http://127.0.0.1:9")
    job = _Job(None, spec, "w1", tmp_path, lambda: False)  # type: ignore[arg-type]
    job.run_id = "run123"
    plugin_dir = tmp_path / "job-x" / "plugins"
    env = job._environment(plugin_dir)
    assert env["DIOPTRA_PLUGIN_DIR"] == str(plugin_dir)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(plugin_dir), "/from/the/worker"]
    assert env["DIOPTRA_WORKDIR"] == str(tmp_path)
    assert env["DIOPTRA_RQ_JOB_ID"] == spec.job_id
    assert (env["MLFLOW_RUN_ID"], env["MLFLOW_EXPERIMENT_ID"]) == ("run123", "3")
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9"
