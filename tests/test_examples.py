"""The examples end to end, and the science they claim.

Each example's ``run.py`` submits its ``pipeline.yaml`` to a real server with two workers;
then the claims of the example's ``expected.json`` are checked against the row of its
report stage in the server's report table (the run's MLflow metrics), and a few
invariants against the other rows.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest
import yaml
from testbed import ServerProcess, free_port, running, unique

from dioptra.client import DioptraClient
from dioptra.contract.mlproject import load_project
from dioptra.contract.pipeline import parse

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import _driver  # noqa: E402


def load_example(name: str):
    """The ``run.py`` module of ``examples/<name>``."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name.replace('-', '_')}", EXAMPLES / name / "run.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- claims ---------------------------------------------------------------------------------

CLAIM_KEYS = {"claim", "metric", "min", "max", "at_most", "at_least", "margin", "decreasing"}


def broken_claims(claims: list[dict], metrics: dict[str, float]) -> list[str]:
    """Why each claim that does not hold fails (an empty list: all hold).

    A claim is ``{"metric": m, "min": a, "max": b}`` (bounds, inclusive),
    ``{"metric": m, "at_most": other, "margin": d}`` (m <= other - d),
    ``{"metric": m, "at_least": other, "margin": d}`` (m >= other + d), or
    ``{"decreasing": [m1, m2, ...]}`` (strictly).
    """
    failures = []
    for claim in claims:
        unknown = set(claim) - CLAIM_KEYS
        if unknown or not ({"metric", "decreasing"} & set(claim)):
            raise ValueError(f"malformed claim {claim}")
        names = claim.get("decreasing") or [claim["metric"]]
        names += [claim[k] for k in ("at_most", "at_least") if k in claim]
        missing = [n for n in names if n not in metrics]
        if missing:
            failures.append(f"{claim['claim']}: no metric {', '.join(missing)}")
            continue
        if "decreasing" in claim:
            values = [metrics[n] for n in claim["decreasing"]]
            if not all(a > b for a, b in zip(values, values[1:], strict=False)):
                failures.append(f"{claim['claim']}: {values} is not decreasing")
            continue
        value, margin = metrics[claim["metric"]], claim.get("margin", 0.0)
        checks = []
        if "min" in claim:
            checks.append((value >= claim["min"], f">= {claim['min']}"))
        if "max" in claim:
            checks.append((value <= claim["max"], f"<= {claim['max']}"))
        if "at_most" in claim:
            other = metrics[claim["at_most"]]
            checks.append((value <= other - margin,
                           f"<= {claim['at_most']} ({other:.4f}) - {margin}"))
        if "at_least" in claim:
            other = metrics[claim["at_least"]]
            checks.append((value >= other + margin,
                           f">= {claim['at_least']} ({other:.4f}) + {margin}"))
        if not checks:
            raise ValueError(f"claim without a bound: {claim}")
        for ok, wanted in checks:
            if not ok:
                failures.append(
                    f"{claim['claim']}: {claim['metric']} = {value:.4f}, wanted {wanted}")
    return failures


def expected(name: str) -> dict:
    return json.loads((EXAMPLES / name / "expected.json").read_text())


def test_claim_checker_catches_what_does_not_hold():
    metrics = {"a": 0.9, "b": 0.5, "c": 0.2}
    assert broken_claims([
        {"claim": "bounds", "metric": "a", "min": 0.9, "max": 1.0},
        {"claim": "less", "metric": "c", "at_most": "b", "margin": 0.3},
        {"claim": "more", "metric": "a", "at_least": "b", "margin": 0.4},
        {"claim": "falls", "decreasing": ["a", "b", "c"]},
    ], metrics) == []
    broken = broken_claims([
        {"claim": "low", "metric": "b", "min": 0.6},
        {"claim": "high", "metric": "b", "max": 0.4},
        {"claim": "less", "metric": "c", "at_most": "b", "margin": 0.31},
        {"claim": "more", "metric": "b", "at_least": "a"},
        {"claim": "falls", "decreasing": ["a", "c", "b"]},
        {"claim": "flat", "decreasing": ["a", "a"]},
        {"claim": "absent", "metric": "z", "min": 0},
    ], metrics)
    assert [line.split(":")[0] for line in broken] == [
        "low", "high", "less", "more", "falls", "flat", "absent"]
    with pytest.raises(ValueError):
        broken_claims([{"claim": "typo", "metric": "a", "minimum": 0.5}], metrics)
    with pytest.raises(ValueError):
        broken_claims([{"claim": "no bound", "metric": "a"}], metrics)


@pytest.mark.parametrize("name", ["digits-evasion", "digits-defenses", "digits-privacy",
                                  "digits-poisoning"])
def test_every_example_is_complete(name):
    folder = EXAMPLES / name
    for file in ("MLproject", "README.md", "expected.json", "run.py", "pipeline.yaml"):
        assert (folder / file).is_file(), f"{name} has no {file}"
    # the pipeline is valid against the example's MLproject (as the server checks it)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(folder / "MLproject", tmp)
        parse((folder / "pipeline.yaml").read_text(), load_project(Path(tmp)))
    assert expected(name)["claims"]
    files = {p.name for p in _driver.workflow_files(
        folder, getattr(load_example(name), "BORROWED", ()))}
    assert "run.py" not in files and {"MLproject", "reporting.py"} <= files
    # every entry point's command names a script that is in the archive
    project = yaml.safe_load((folder / "MLproject").read_text())
    for entry_point in project["entry_points"].values():
        script = entry_point["command"].split()[1]
        assert script in files, f"{name}: {script} is not in the workflow archive"


# -- end to end -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def examples_server(tmp_path_factory, mlflow_uri) -> ServerProcess:
    """One server with two workers for all the example pipelines (each in its own
    experiment): one start and one warm-up of its workers instead of one per test."""
    with running(ServerProcess(tmp_path_factory.mktemp("examples") / "data", free_port(),
                               ["--mlflow-tracking-uri", mlflow_uri, "--workers", "2"])
                 ) as server:
        yield server


def run_pipeline_example(name: str, server: ServerProcess, **kwargs
                         ) -> _driver.PipelineOutcome:
    lines: list[str] = []
    outcome = load_example(name).run(server.url, experiment=unique(name), out=lines.append,
                                     **kwargs)
    assert outcome.ok, "\n".join(lines)
    assert outcome.text, "\n".join(lines)
    return outcome


def check_claims(name: str, metrics: dict[str, float]) -> dict[str, float]:
    broken = broken_claims(expected(name)["claims"], metrics)
    assert not broken, "claims of expected.json that do not hold:\n" + "\n".join(broken)
    return metrics


def artifacts(client, run_id: str) -> set[str]:
    return {item.path for item in client.list_artifacts(run_id)}


@pytest.mark.slow
def test_digits_evasion(examples_server, mlflow_uri):
    outcome = run_pipeline_example("digits-evasion", examples_server)
    client = mlflow.MlflowClient(mlflow_uri)
    # the claims, against the report stage's row of the server's report table ...
    metrics = check_claims("digits-evasion", outcome.metrics("report"))
    # ... which is what MLflow holds for that run
    assert metrics == client.get_run(outcome.run_id("report")).data.metrics

    assert {"robustness.csv", "robustness.md", "accuracy_vs_eps.png"} <= artifacts(
        client, outcome.run_id("report"))
    assert "model" in artifacts(client, outcome.run_id("train"))
    # every adversarial set respects its budget
    attacks = outcome.rows("attack")
    assert sorted((r["params"]["attack"], r["params"]["eps"]) for r in attacks) == sorted(
        (a, e) for a in ("fgm", "pgd") for e in ("0.05", "0.1", "0.2", "0.3"))
    for row in attacks:
        assert "adversarial.npz" in artifacts(client, row["runId"])
        assert row["metrics"]["l_infinity_norm_max"] <= float(row["params"]["eps"]) + 1e-6
    # the report says what the infer runs measured
    for row in outcome.rows("infer"):
        key = f"{row['params']['attack']}_accuracy_eps_{float(row['params']['eps']):g}"
        assert metrics[key] == pytest.approx(row["metrics"]["adversarial_accuracy"])
        assert metrics["clean_accuracy"] == pytest.approx(row["metrics"]["clean_accuracy"])
    assert "| 0.3 |" in outcome.text and "PGD accuracy" in outcome.text
    # the server's report draws accuracy against eps, a line per attack, and finds the
    # results sound
    chart = next(c for c in outcome.report["charts"]
                 if c["title"] == "adversarial_accuracy vs eps (infer)")
    assert set(chart["series"]) == {"fgm", "pgd"}
    assert outcome.report["warnings"] == []


@pytest.mark.slow
def test_digits_defenses(examples_server, mlflow_uri):
    outcome = run_pipeline_example("digits-defenses", examples_server)
    client = mlflow.MlflowClient(mlflow_uri)
    check_claims("digits-defenses", outcome.metrics("report"))
    assert {"defenses.csv", "defenses.md", "accuracy_by_defense.png"} <= artifacts(
        client, outcome.run_id("report"))
    for defense in ("none", "feature_squeezing", "jpeg_compression", "spatial_smoothing",
                    "gaussian_augmentation", "adversarial_training"):
        assert f"| {defense} |" in outcome.text
    # one infer per attack job, the pre-processing defenses only behind the undefended one
    infers = outcome.rows("infer")
    assert len(infers) == 6
    for row in infers:
        behind = [k for k in row["metrics"] if k.startswith("clean_accuracy_")]
        assert len(behind) == (4 if row["params"]["defense"] == "none" else 1), row


@pytest.mark.slow
def test_digits_privacy(examples_server, mlflow_uri):
    outcome = run_pipeline_example("digits-privacy", examples_server)
    client = mlflow.MlflowClient(mlflow_uri)
    check_claims("digits-privacy", outcome.metrics("report"))
    assert {"inverted.npz", "model_inversion.png"} <= artifacts(
        client, outcome.run_id("inversion"))
    for stage in ("membership_overfit", "membership_general"):
        result = outcome.metrics(stage)
        for key in ("attack_accuracy", "member_accuracy", "nonmember_accuracy", "precision"):
            assert 0.0 <= result[key] <= 1.0


@pytest.mark.slow
def test_digits_poisoning(examples_server, mlflow_uri):
    outcome = run_pipeline_example("digits-poisoning", examples_server)
    client = mlflow.MlflowClient(mlflow_uri)
    check_claims("digits-poisoning", outcome.metrics("evaluate"))
    poison = outcome.metrics("poison")
    assert poison["n_poisoned"] == round(0.1 * poison["n_train"])
    assert {"backdoor.csv", "backdoor.md"} <= artifacts(client, outcome.run_id("evaluate"))
    assert "| poisoned |" in outcome.text and "| clean |" in outcome.text


@pytest.mark.slow
def test_a_failed_job_fails_what_needs_it_and_shows_its_log(examples_server):
    server = examples_server

    def change(definition):
        # A script entry point that is not in the archive: `python missing.py` fails at once.
        definition["stages"]["train"]["entryPoint"] = "missing.py"
        definition["stages"]["attack"]["grid"]["eps"] = [0.1]

    lines: list[str] = []
    outcome = _driver.run_pipeline(EXAMPLES / "digits-evasion", server.url, "pytorch_cpu",
                                   unique("failing"), change=change, out=lines.append)
    text = "\n".join(lines)
    assert not outcome.ok and outcome.state["status"] == "failed"
    statuses = {(j["stage"], j["status"]) for j in outcome.state["jobs"]}
    assert statuses == {("train", "failed"), ("attack", "failed"), ("infer", "failed"),
                        ("report", "failed")}, text
    assert "missing.py" in text and "No such file" in text  # the tail of train's log
    assert _driver.finish_pipeline(outcome, server.url, out=lines.append) == 1
    assert "6 job(s) did not finish (6 job(s) failed)" in lines[-1]


# -- warm start changes no result -----------------------------------------------------------

WARM_MARK = "(in a warm interpreter)"  # what the worker writes to a warm job's log
# Metrics that measure the machine, not the model: they differ between any two runs.
WALL_CLOCK_METRICS = {"training_time_in_minutes"}


def results(outcome: _driver.PipelineOutcome, client: mlflow.MlflowClient) -> dict:
    """Every job's MLflow params and metrics, keyed by what the job is (stage, entry point,
    parameters) with each run id replaced by the key of its run, so that two runs of the
    same pipeline compare equal exactly when their numbers do."""
    rows = {r["runId"]: r for r in outcome.report["rows"]}
    runs = {run_id: client.get_run(run_id).data for run_id in rows}
    keys: dict[str, str] = {}

    def unlinked(value: str) -> str | None:
        for run_id in rows:
            if run_id in value:
                if run_id not in keys:
                    return None
                value = value.replace(run_id, f"<{keys[run_id]}>")
        return value

    while len(keys) < len(rows):  # a run's key needs the keys of the runs it names
        progress = False
        for run_id, row in rows.items():
            params = {k: unlinked(v) for k, v in sorted(runs[run_id].params.items())}
            if run_id in keys or None in params.values():
                continue
            keys[run_id] = f"{row['stage']}/{row['entryPoint']}{params}"
            progress = True
        assert progress, f"runs that name each other: {sorted(set(rows) - set(keys))}"
    found = {}
    for run_id, row in rows.items():
        assert row["status"] == "finished", row
        metrics = {k: v for k, v in runs[run_id].metrics.items()
                   if k not in WALL_CLOCK_METRICS}
        report_metrics = {k: v for k, v in row["metrics"].items()
                          if k not in WALL_CLOCK_METRICS}
        assert report_metrics == metrics  # the report says what MLflow holds
        found[keys[run_id]] = {"params": {k: unlinked(v) for k, v in runs[run_id].params.items()},
                               "metrics": metrics}
    return found


@pytest.mark.slow
def test_warm_start_changes_no_number(examples_server, start_server, mlflow_uri):
    """digits-evasion (reduced: 3 epochs, one budget, 6 jobs) on a server with warm start
    and on one without: every job's params and metrics, and the report, are identical."""
    from concurrent.futures import ThreadPoolExecutor

    servers = {"warm": examples_server, "cold": start_server("--no-warm-start", workers=2)}
    example = load_example("digits-evasion")

    def run(mode: str):
        lines: list[str] = []
        outcome = example.run(servers[mode].url, experiment=unique(f"same-{mode}"),
                              eps=(0.1,), epochs=3, out=lines.append)
        assert outcome.ok, "\n".join(lines)
        return outcome

    with ThreadPoolExecutor(2) as pool:  # the two pipelines at once: half the wall time
        outcomes = dict(zip(servers, pool.map(run, servers), strict=True))
    client = mlflow.MlflowClient(mlflow_uri)
    dioptra = {mode: DioptraClient(servers[mode].url) for mode in servers}
    warm_jobs = {mode: sum(WARM_MARK in _driver.job_log(dioptra[mode], job["jobId"])
                           for job in outcomes[mode].state["jobs"]) for mode in servers}
    # the comparison means something only if the warm server's jobs did start warm
    assert warm_jobs["warm"] > 0 and warm_jobs["cold"] == 0, warm_jobs
    found = {mode: results(outcomes[mode], client) for mode in servers}
    assert len(found["warm"]) == 6
    assert found["warm"] == found["cold"]
    assert outcomes["warm"].text == outcomes["cold"].text
    assert "| 0.1 |" in outcomes["warm"].text
