import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dioptra.contract.mlproject import (
    MLprojectError,
    find_project_dir,
    load_project,
    parse_kwargs,
)
from dioptra.worker.runner import run_command

# The shape of the v0 example tensorflow-mnist-classifier-legacy (shortened).
MNIST_MLPROJECT = """\
name: tensorflow-mnist-classifier

entry_points:
  train:
    parameters:
      data_dir: {type: path, default: "data"}
      image_size: {type: string, default: "28,28,1"}
      epochs: {type: float, default: 30}
      learning_rate: {type: float, default: 0.001}
      register_model_name: {type: string, default: ""}
      seed: {type: float, default: -1}
    command: >
      python train.py
      --data-dir {data_dir}
      --image-size {image_size}
      --epochs {epochs}
      --learning-rate {learning_rate}
      --register-model-name {register_model_name}
      --seed {seed}

  fgm:
    parameters:
      eps: {type: float, default: 0.3}
      norm: {type: string, default: "inf"}
      batch: int
    command: python fgm.py --eps {eps} --norm {norm} --batch {batch}

  infer:
    parameters:
      run_id: {type: string}
      model_uri: {type: uri, default: "models:/mnist/1"}
    command: python infer.py --run-id {run_id} --model {model_uri}
"""


@pytest.fixture
def mnist(tmp_path: Path):
    (tmp_path / "MLproject").write_text(MNIST_MLPROJECT)
    (tmp_path / "data").mkdir()
    return load_project(tmp_path)


# --- parse_kwargs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, {}),
        ("", {}),
        ("   ", {}),
        ("-P a=1", {"a": "1"}),
        ("-P a=1 -P \"b=two words\" -P c='x y'", {"a": "1", "b": "two words", "c": "x y"}),
        ("-Pa=1 -P b=", {"a": "1", "b": ""}),
        ("-P url=http://h/x?y=1", {"url": "http://h/x?y=1"}),
        ("-P 'model=le net' -P x=\"it's\"", {"model": "le net", "x": "it's"}),
    ],
)
def test_parse_kwargs(text: str | None, expected: dict[str, str]) -> None:
    assert parse_kwargs(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=1", "expected -P name=value, got 'a=1'"),
        ("-P a=1 stray", "got 'stray'"),
        ("--param-list a=1", "got '--param-list'"),
        ("-P novalue", "-P 'novalue' is not of the form name=value"),
        ("-P =x", "-P '=x' is not of the form name=value"),
        ("-P a=1 -P", "end with -P"),
        ("-P a=1 -P a=2", "parameter 'a' is given twice"),
        ("-P 'a=1", "cannot be parsed"),
    ],
)
def test_parse_kwargs_errors(text: str, message: str) -> None:
    with pytest.raises(MLprojectError, match=message.replace("?", r"\?")):
        parse_kwargs(text)


# --- find / load ----------------------------------------------------------------------------


def test_find_project_dir_root_and_nested(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text("name: x\n")
    assert find_project_dir(tmp_path) == tmp_path

    nested = tmp_path / "n"
    (nested / "a" / "src").mkdir(parents=True)
    (nested / "a" / "src" / "MLproject").write_text("name: x\n")
    (nested / "other").mkdir()
    assert find_project_dir(nested) == nested / "a" / "src"

    one = tmp_path / "one"
    (one / "src").mkdir(parents=True)
    (one / "src" / "mlproject").write_text("name: x\n")  # case-insensitive, as MLflow
    assert find_project_dir(one) == one / "src"


def test_find_project_dir_errors(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "MLproject").write_text("name: too deep\n")
    with pytest.raises(MLprojectError, match="no MLproject file"):
        find_project_dir(tmp_path)
    for folder in ("x", "y/z"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "MLproject").write_text("name: x\n")
    with pytest.raises(MLprojectError, match=r"several MLproject files \(in x, y/z\)"):
        find_project_dir(tmp_path)


def test_load_project(mnist) -> None:
    assert mnist.name == "tensorflow-mnist-classifier"
    assert sorted(mnist.entry_points) == ["fgm", "infer", "train"]
    train = mnist.entry_points["train"]
    assert train.parameters["epochs"].default == "30"
    assert train.parameters["learning_rate"].default == "0.001"
    assert train.parameters["register_model_name"].default == ""
    assert mnist.entry_points["fgm"].parameters["batch"].type == "int"
    assert mnist.entry_points["fgm"].parameters["batch"].required
    assert mnist.entry_points["infer"].parameters["run_id"].required


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a YAML mapping"),
        ("entry_points: [a]\n", "'entry_points' must be a mapping"),
        ("entry_points:\n  main: 3\n", "entry point 'main' in MLproject must be a mapping"),
        ("entry_points:\n  main:\n    parameters:\n      a: [1]\n", "parameter 'a'"),
        ("name: [unclosed\n", "not readable YAML"),
    ],
)
def test_load_project_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "MLproject").write_text(text)
    with pytest.raises(MLprojectError, match=message):
        load_project(tmp_path)


# --- validate -------------------------------------------------------------------------------


def test_validate_fills_defaults_in_order(mnist) -> None:
    final = mnist.validate("train", {"extra": "e", "epochs": "2"})
    assert final == {
        "data_dir": "data",
        "image_size": "28,28,1",
        "epochs": "2",
        "learning_rate": "0.001",
        "register_model_name": "",
        "seed": "-1",
        "extra": "e",
    }
    assert list(final) == [*mnist.entry_points["train"].parameters, "extra"]


@pytest.mark.parametrize(
    ("entry_point", "params", "message"),
    [
        ("trian", {}, "entry point 'trian' is not in MLproject (entry points: fgm, infer, train)"),
        (
            "fgm",
            {"eps": "abc", "batch": "1"},
            "parameter 'eps' of entry point 'fgm' must be a float, got 'abc'",
        ),
        (
            "fgm",
            {"batch": "1.5"},
            "parameter 'batch' of entry point 'fgm' must be an integer, got '1.5'",
        ),
        ("fgm", {}, "entry point 'fgm' requires parameter 'batch'"),
        ("infer", {}, "entry point 'infer' requires parameter 'run_id'"),
        (
            "infer",
            {"run_id": "r", "model_uri": "no-scheme"},
            "parameter 'model_uri' of entry "
            "point 'infer' must be a URI with a scheme, got 'no-scheme'",
        ),
    ],
)
def test_validate_errors(mnist, entry_point: str, params: dict[str, str], message: str) -> None:
    with pytest.raises(MLprojectError) as info:
        mnist.validate(entry_point, params)
    assert str(info.value) == message


def test_missing_path_fails_when_the_command_is_built(mnist, tmp_path: Path) -> None:
    # validate() runs on the server at submission, which need not hold the data.
    assert mnist.validate("train", {"data_dir": "missing"})["data_dir"] == "missing"
    with pytest.raises(MLprojectError) as info:
        mnist.command("train", {"data_dir": "missing"}, tmp_path)
    assert str(info.value) == (
        "parameter 'data_dir' of entry point 'train' is a path, but 'missing' does not "
        "exist on the worker"
    )


def test_validate_several_missing(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters: {a: string, b: float}\n    command: x {a} {b}\n"
    )
    with pytest.raises(MLprojectError, match="requires parameters 'a', 'b'$"):
        load_project(tmp_path).validate("main", {})


# --- command --------------------------------------------------------------------------------


def test_command_quotes_and_resolves(mnist, tmp_path: Path) -> None:
    command = mnist.command("train", {"register_model_name": "my model", "more": "a b"}, tmp_path)
    data = tmp_path / "data"
    assert command == (
        f"python train.py --data-dir {data} --image-size 28,28,1 --epochs 30 "
        "--learning-rate 0.001 --register-model-name 'my model' --seed -1 --more 'a b'"
    )


def test_command_absolute_and_file_uri_paths(mnist, tmp_path: Path) -> None:
    other = tmp_path / "with space"
    other.mkdir()
    command = mnist.command("train", {"data_dir": other.as_uri()}, tmp_path)
    assert f"--data-dir {shlex.quote(str(other))} " in command
    command = mnist.command("train", {"data_dir": str(other)}, tmp_path)
    assert f"--data-dir {shlex.quote(str(other))} " in command


def test_command_empty_default_and_uri(mnist, tmp_path: Path) -> None:
    assert "--register-model-name '' " in mnist.command("train", {}, tmp_path)
    command = mnist.command("infer", {"run_id": "abc"}, tmp_path)
    assert command == "python infer.py --run-id abc --model models:/mnist/1"


def test_command_injection_is_quoted(mnist, tmp_path: Path) -> None:
    command = mnist.command(
        "fgm", {"batch": "1", "norm": "inf; rm -rf /", "x;y": "$(id)"}, tmp_path
    )
    assert command == ("python fgm.py --eps 0.3 --norm 'inf; rm -rf /' --batch 1 --'x;y' '$(id)'")


def test_script_entry_points(mnist, tmp_path: Path) -> None:
    assert mnist.command("run.py", {"a": "1 2"}, tmp_path) == "python run.py --a '1 2'"
    shell = os.environ.get("SHELL", "bash")
    assert mnist.command("go.sh", {}, tmp_path) == f"{shell} go.sh"
    with pytest.raises(MLprojectError, match="'go.txt' is not in MLproject"):
        mnist.command("go.txt", {}, tmp_path)


def test_command_template_errors(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text(
        "entry_points:\n"
        "  bad:\n    command: echo {nope}\n"
        "  none:\n    parameters: {a: string}\n"
        "  braces:\n    command: echo {}\n"
    )
    project = load_project(tmp_path)
    with pytest.raises(MLprojectError, match=r"uses \{nope\}, which is not one of its parameters"):
        project.command("bad", {}, tmp_path)
    with pytest.raises(MLprojectError, match="has no command"):
        project.command("none", {"a": "1"}, tmp_path)
    with pytest.raises(MLprojectError, match="not a valid template"):
        project.command("braces", {}, tmp_path)


def test_folded_command_with_extras_stays_one_command(mnist, tmp_path: Path) -> None:
    # MLflow appends the extras after the folded command's trailing newline, so bash runs
    # them as a command of their own ("--more: command not found"); we keep one line.
    command = mnist.command("train", {"more": "1"}, tmp_path)
    assert "\n" not in command
    assert command.endswith("--seed -1 --more 1")


# --- same arguments as `mlflow run` ---------------------------------------------------------

SHOW_ARGS = """\
import json, os, sys
with open(os.environ["ARGS_OUT"], "w") as out:
    json.dump({"argv": sys.argv[1:], "run_id": os.environ.get("MLFLOW_RUN_ID")}, out)
"""

COMPARE_MLPROJECT = """\
name: compare
entry_points:
  main:
    parameters:
      words: {type: string, default: "two words"}
      rate: {type: float, default: 0.5}
      empty: {type: string, default: ""}
      data: {type: path, default: "data dir"}
      given: string
      uri: {type: uri, default: "s3://bucket/key with space"}
    command: "python show_args.py --words {words} --rate {rate} --empty {empty} --data {data} --given {given} --uri {uri}"
"""  # noqa: E501


def test_same_arguments_as_mlflow_run(tmp_path: Path) -> None:
    project_dir = tmp_path / "archive" / "src"
    (project_dir / "data dir").mkdir(parents=True)
    (project_dir / "MLproject").write_text(COMPARE_MLPROJECT)
    (project_dir / "show_args.py").write_text(SHOW_ARGS)
    params = {"given": 'it\'s "quoted" & $HOME', "rate": "1e-3", "undeclared": "x y", "n": "3"}
    kwargs = " ".join(f"-P {shlex.quote(f'{k}={v}')}" for k, v in params.items())
    assert parse_kwargs(kwargs) == params

    # The interpreter running the tests must be the one "python" means for both runs.
    bindir = str(Path(sys.executable).parent)
    base_env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}

    # Ours: find + load + command + runner, MLflow's run env var set as execute.py does.
    ours_out = tmp_path / "ours.json"
    project = load_project(find_project_dir(tmp_path / "archive"))
    command = project.command("main", parse_kwargs(kwargs), tmp_path / "storage")
    output: list[str] = []
    result = run_command(
        command,
        project_dir,
        {**base_env, "ARGS_OUT": str(ours_out), "MLFLOW_RUN_ID": "our-run"},
        60,
        output.append,
        lambda: False,
    )
    assert result.returncode == 0, "".join(output)
    ours = json.loads(ours_out.read_text())

    # MLflow: the real CLI of the venv, local env manager, a throwaway sqlite store.
    theirs_out = tmp_path / "theirs.json"
    mlflow_cli = [sys.executable, "-m", "mlflow", "run", "--env-manager", "local", "-e", "main"]
    for key, value in params.items():
        mlflow_cli += ["-P", f"{key}={value}"]
    completed = subprocess.run(
        [*mlflow_cli, str(project_dir)],
        cwd=project_dir,  # MLflow resolves relative 'path' values against its cwd
        env={
            **base_env,
            "ARGS_OUT": str(theirs_out),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    theirs = json.loads(theirs_out.read_text())

    assert ours["argv"] == theirs["argv"]
    assert ours["argv"] == [
        "--words", "two words",
        "--rate", "1e-3",
        "--empty", "",
        "--data", str(project_dir / "data dir"),
        "--given", "it's \"quoted\" & $HOME",
        "--uri", "s3://bucket/key with space",
        "--undeclared", "x y",
        "--n", "3",
    ]  # fmt: skip
    assert ours["run_id"] == "our-run"
    assert theirs["run_id"] and len(theirs["run_id"]) == 32
