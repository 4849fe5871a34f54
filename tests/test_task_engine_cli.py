"""validate-experiment and run-experiment: arguments, output and exit codes (§7 items 1-13)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from dioptra.task_engine import run_experiment, validate

OK = """
tasks:
  t: {plugin: a.b, inputs: [{x: integer}]}
graph:
  s: {t: [1]}
"""


def write(tmp_path, text, name="exp.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_1_no_issues(tmp_path, capsys):
    assert validate.main([write(tmp_path, OK)]) == 0
    assert capsys.readouterr().out == "No issues!\n"


def test_2_issues_are_numbered(tmp_path, capsys):
    assert validate.main([write(tmp_path, OK.replace("s: {t:", "s: {fitt:"))]) == 1
    assert capsys.readouterr().out == (
        'Issues:\n\n1. semantic.error: In step "s": unrecognized task plugin: fitt\n\n'
    )


def test_3_warnings_alone_print_but_pass(tmp_path, capsys):
    text = OK + "types:\n  u: {union: [integer, integer]}\n"
    assert validate.main([write(tmp_path, text)]) == 0  # v0: 1, which stopped the run
    assert "1. semantic.warning: " in capsys.readouterr().out


def test_4_quiet(tmp_path, capsys):
    assert validate.main(["-q", write(tmp_path, OK.replace("{t:", "{u:"))]) == 1
    assert capsys.readouterr().out == ""


def test_5_yaml_error_exits_2(tmp_path, capsys):
    bad = write(tmp_path, "tasks: [\n")
    assert validate.main([bad]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert validate.main(["-qq", bad]) == 2
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_6_missing_file_is_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        validate.main([str(tmp_path / "nope.yml")])
    assert exc.value.code == 2


def test_7_8_parameter_parsing():
    params = run_experiment._cmdline_params_to_map(
        ["a=1", "b=x", "c=[1,2]", "d", "e=", "f=1e-3", "g=0.001", "h=a=b", "a=2"]
    )
    assert params == {"a": 2, "b": "x", "c": [1, 2], "d": True, "e": None,
                      "f": "1e-3", "g": 0.001, "h": "a=b"}
    with pytest.raises(ValueError, match="must not be empty: =1"):
        run_experiment._cmdline_params_to_map(["=1"])


PLUGIN = '''
from dioptra import pyplugs

@pyplugs.register
def show(x):
    print("value", repr(x))
    return x

@pyplugs.register
def fail(x):
    raise ValueError("the plugin failed on purpose")
'''

FLOW = """
parameters:
  p: {type: integer}
tasks:
  show: {plugin: MOD.show, inputs: [{x: any}], outputs: {o: any}}
  fail: {plugin: MOD.fail, inputs: [{x: any}]}
graph:
  first: {show: $p}
  second: {STEP: [$first]}
  third: {show: [done], dependencies: second}
"""


def run_cli(tmp_path, step, *args):
    mod = f"cliplug_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{mod}.py").write_text(PLUGIN)
    exp = write(tmp_path, FLOW.replace("MOD", mod).replace("STEP", step))
    return subprocess.run(
        [sys.executable, "-m", "dioptra.task_engine.run_experiment", exp, *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )


def test_9_10_12_13_run_experiment_exit_codes(tmp_path):
    ok = run_cli(tmp_path, "show", "-P", "p=7", "-l", "debug")
    assert ok.returncode == 0, ok.stderr
    assert sorted(ok.stdout.splitlines()) == ["value 'done'", "value 7", "value 7"]
    assert "[    INFO] Running step: first" in ok.stderr
    assert "[   DEBUG] Step order:" in ok.stderr
    failed = run_cli(tmp_path, "fail", "-P", "p=7")
    assert failed.returncode == 1
    assert "ValueError: the plugin failed on purpose" in failed.stderr
    assert "value 'done'" not in failed.stdout
    assert run_cli(tmp_path, "show", "-l", "bogus").returncode == 2
    missing = run_cli(tmp_path, "show")
    assert missing.returncode == 1
    assert "MissingGlobalParametersError: Missing values for global parameters: p" in (
        missing.stderr
    )
    assert run_cli(tmp_path, "show", "-P", "=1").returncode == 1


def test_console_scripts_are_installed(tmp_path):
    bindir = Path(sys.executable).parent
    script = shutil.which("validate-experiment", path=str(bindir))
    assert script, "pip install -e . installs validate-experiment next to python"
    done = subprocess.run([script, write(tmp_path, OK)], capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stdout) == (0, "No issues!\n")
    assert shutil.which("run-experiment", path=str(bindir))


def test_schema_ships_as_package_data():
    from importlib.resources import files

    schema = files("dioptra.task_engine").joinpath("experiment_schema.json")
    assert yaml.safe_load(schema.read_text())["required"] == ["tasks", "graph"]
