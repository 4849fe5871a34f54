"""The pipeline format in-process: parsing, grids, ordering, references, every problem."""

from __future__ import annotations

import json

import pytest
from workflows import ECHO_MLPROJECT

from dioptra.contract.mlproject import load_project
from dioptra.contract.pipeline import PipelineError, parse, resolve

EVASION = """
name: evasion
experiment: exp
queue: q
stages:
  report:
    entryPoint: report
    afterAll: infer
    params: {runs: "${infer.runIds}"}
  train:
    entryPoint: train
    params: {epochs: 10}
  attack:
    entryPoint: [fgm, pgd]
    after: train
    params: {model_run_id: "${train.runId}"}
    grid: {eps: [0.05, 0.1, 0.2, 0.3]}
  infer:
    entryPoint: infer
    after: attack
    params: {model_run_id: "${train.runId}", adv_run_id: "${attack.runId}",
             eps: "${attack.params.eps}"}
"""


def test_grid_fan_out_fan_in_order_and_counts():
    pipeline = parse(EVASION)
    assert list(pipeline.stages) == ["train", "attack", "infer", "report"]
    assert pipeline.job_counts() == {"train": 1, "attack": 8, "infer": 8, "report": 1}
    points = pipeline.stages["attack"].points()
    assert [(p.entry_point, p.params["eps"]) for p in points[:5]] == [
        ("fgm", "0.05"), ("fgm", "0.1"), ("fgm", "0.2"), ("fgm", "0.3"), ("pgd", "0.05")]
    assert points[0].varying == {"entryPoint": "fgm", "eps": "0.05"}
    assert points[0].params["model_run_id"] == "${train.runId}"
    assert pipeline.stages["train"].params == {"epochs": "10"}
    # JSON reads the same as YAML
    assert parse(json.dumps(pipeline.source)).job_counts() == pipeline.job_counts()


def test_zip_varies_lists_together_and_crosses_the_grid():
    pipeline = parse({"name": "z", "experiment": "e", "queue": "q", "stages": {"s": {
        "entryPoint": "main", "grid": {"word": ["a", "b"]},
        "zip": {"x": [1, 2, 3], "y": [0.5, True, "c"]}}}})
    points = pipeline.stages["s"].points()
    assert len(points) == 6
    assert [(p.params["word"], p.params["x"], p.params["y"]) for p in points[:3]] == [
        ("a", "1", "0.5"), ("a", "2", "true"), ("a", "3", "c")]


def test_every_problem_is_listed_at_once():
    with pytest.raises(PipelineError) as caught:
        parse({
            "name": "bad name!", "experiment": "e", "colour": "red",
            "stages": {
                "a": {"entryPoint": "main", "after": "b", "params": {"x": [1, 2]}},
                "b": {"entryPoint": "main", "after": "a", "queue": "q"},
                "c": {"entryPoint": "main", "after": "nowhere", "queue": "q"},
                "d": {"entryPoint": 3, "zip": {"x": [1], "y": [1, 2]}, "queue": "q",
                      "grid": {"z": []}, "bogus": 1},
            }})
    problems = caught.value.problems
    text = "\n".join(problems)
    for expected in ("unknown top-level field(s) colour", "'name' 'bad name!'",
                     "stage 'a': no 'queue'", "parameter 'x' must be a string, number or "
                     "boolean (put lists under 'grid' or 'zip')",
                     "stage 'c' comes after 'nowhere'", "stage 'd': 'entryPoint' must be",
                     "'zip' must have one length", "'grid.z' must be a non-empty list",
                     "unknown field(s) bogus"):
        assert expected in text, text
    assert len(problems) >= 9


def test_cycles_and_references_are_checked():
    with pytest.raises(PipelineError, match="come after each other in a cycle"):
        parse({"name": "c", "experiment": "e", "queue": "q", "stages": {
            "a": {"entryPoint": "m", "after": "b"}, "b": {"entryPoint": "m", "after": "a"}}})
    with pytest.raises(PipelineError) as caught:
        parse({"name": "r", "experiment": "e", "queue": "q", "stages": {
            "a": {"entryPoint": "m", "grid": {"x": [1, 2]}},
            "b": {"entryPoint": "m", "after": "a", "params": {
                "p": "${a.runId}", "q": "${c.runId}", "r": "${a.params.nope}", "s": "${a.foo}"}},
            "c": {"entryPoint": "m", "params": {"u": "${b.runId}"}},
            "d": {"entryPoint": "m", "afterAll": "a", "params": {"v": "${a.runId}",
                                                                 "w": "${a.runIds}"}}}})
    text = "\n".join(caught.value.problems)
    assert "${c.runId} names a stage that does not come before 'b'" in text
    assert "${b.runId} names a stage that does not come before 'c'" in text
    assert "stage 'a' sets no parameter 'nope'" in text
    assert "${a.foo} is not a reference" in text
    assert "comes after several jobs of 'a'; use ${a.runIds}" in text
    assert "'w'" not in text  # runIds over a fan-in is fine
    assert "parameter 'p'" not in text  # fan-out: one job of a per job of b


def test_grid_points_are_checked_against_the_mlproject(tmp_path):
    (tmp_path / "MLproject").write_text(ECHO_MLPROJECT)
    project = load_project(tmp_path)
    with pytest.raises(PipelineError) as caught:
        parse({"name": "t", "experiment": "e", "queue": "q", "stages": {
            "a": {"entryPoint": ["main", "nope"], "grid": {"x": [1, "big", 2.5]}},
            "b": {"entryPoint": "needs", "after": "a"},
            "c": {"entryPoint": "main", "after": "a", "params": {"x": "${a.params.x}"}}}},
              project)
    text = "\n".join(caught.value.problems)
    assert "stage 'a': parameter 'x' of entry point 'main' must be a float, got 'big'" in text
    assert "stage 'a': entry point 'nope' is not in MLproject" in text
    assert text.count("'nope'") == 1  # one problem per distinct reason
    assert "stage 'b': entry point 'needs' requires parameter 'run_id'" in text
    assert "stage 'c'" not in text  # a reference passes for a float until resolved
    # a stage of several entry points must not give one of them a parameter it lacks
    with pytest.raises(PipelineError, match="entry point 'sleep' does not declare 'x'"):
        parse({"name": "t", "experiment": "e", "queue": "q", "stages": {
            "a": {"entryPoint": ["main", "sleep"], "params": {"x": 1}}}}, project)
    parse({"name": "t", "experiment": "e", "queue": "q", "stages": {  # one: as in MLflow
        "a": {"entryPoint": "sleep", "params": {"x": 1}}}}, project)
    # a declared default can be referred to
    parse({"name": "t", "experiment": "e", "queue": "q", "stages": {
        "a": {"entryPoint": "main"},
        "b": {"entryPoint": "needs", "after": "a", "params": {"run_id": "${a.params.word}"}}}},
          project)


def test_resolve_replaces_each_reference():
    seen = []

    def lookup(ref):
        seen.append((ref.stage, ref.what, ref.param))
        return {"runId": "R1", "runIds": "R1,R2"}.get(ref.what, "P")

    assert resolve("run ${a.runId} of ${ b.runIds } eps=${a.params.eps}", lookup) == \
        "run R1 of R1,R2 eps=P"
    assert seen == [("a", "runId", None), ("b", "runIds", None), ("a", "param", "eps")]


def test_bad_text_is_one_clear_problem():
    with pytest.raises(PipelineError, match="not valid YAML"):
        parse("stages: [unclosed")
    with pytest.raises(PipelineError, match="must be a mapping"):
        parse("- a\n- b\n")
