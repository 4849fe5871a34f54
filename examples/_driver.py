"""What every example's ``run.py`` does on the client side, written once.

* :func:`build_workflow` packs an example folder into the workflow archive that jobs
  run: ``MLproject`` and the entry-point scripts at the archive root, plus the helpers
  of ``examples/common/`` (and any extra scripts an example borrows from another one);
* :func:`ensure_experiment` / :func:`ensure_queue` register what is missing, as the
  original's notebooks did (``get_*_by_name`` first, ``register_*`` on "Not Found");
* :func:`run_pipeline` submits the example's ``pipeline.yaml`` with that archive and
  follows it (one line per change of a stage's counts): the server runs the jobs and
  hands each the run ids it needs; it returns the server's report table, the report the
  last stage printed into its log, and the log tails of failed jobs;
* :func:`finish_pipeline` prints the report and where the HTML report is.

``run.py`` files add ``examples/`` to ``sys.path`` and ``import _driver``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dioptra.client import DioptraClient

EXAMPLES_DIR = Path(__file__).resolve().parent
COMMON_DIR = EXAMPLES_DIR / "common"
DEFAULT_QUEUE = "pytorch_cpu"
# The report entry points print their Markdown between these two lines (see
# examples/common/reporting.py, which ships in every workflow archive).
REPORT_BEGIN = "----- report -----"
REPORT_END = "----- end of report -----"

Printer = Callable[[str], None]


def default_address() -> str:
    return os.environ.get("DIOPTRA_RESTAPI_URI") or "http://127.0.0.1:5000"


def argument_parser(description: str, experiment: str) -> argparse.ArgumentParser:
    """The options every ``run.py`` takes; examples add their own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--address", default=default_address(),
                        help="the testbed's REST API (default: $DIOPTRA_RESTAPI_URI or "
                             "http://127.0.0.1:5000)")
    parser.add_argument("--queue", default=DEFAULT_QUEUE,
                        help=f"queue to submit the jobs to (default: {DEFAULT_QUEUE})")
    parser.add_argument("--experiment", default=experiment,
                        help=f"experiment to record the runs in (default: {experiment})")
    parser.add_argument("--timeout", default="1h", help="timeout of each job (default: 1h)")
    return parser


# -- the workflow archive -------------------------------------------------------------------

def workflow_files(example_dir: Path, extra_files: Iterable[Path] = ()) -> list[Path]:
    """The files of an example's workflow: its MLproject and entry-point scripts (not
    ``run.py``, which runs on the client), the helpers in ``examples/common/`` and
    ``extra_files``; all of them go to the archive root, so names must not clash."""
    example_dir = Path(example_dir)
    files = [example_dir / "MLproject"]
    files += sorted(p for p in example_dir.glob("*.py") if p.name != "run.py")
    files += sorted(COMMON_DIR.glob("*.py"))
    files += [Path(p) for p in extra_files]
    names = [p.name for p in files]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"two workflow files are called {', '.join(clashes)}")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"workflow files not found: {', '.join(missing)}")
    return files


def build_workflow(
    example_dir: Path, dest: Path, extra_files: Iterable[Path] = ()
) -> Path:
    """Write ``dest`` (a ``.tar.gz``) with the example's workflow files at its root."""
    dest = Path(dest)
    with tarfile.open(dest, "w:gz") as archive:
        for path in workflow_files(example_dir, extra_files):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(path.stat().st_mtime)
            archive.addfile(info, io.BytesIO(data))
    return dest


# -- experiment and queue ---------------------------------------------------------------

def _missing(answer: Any) -> bool:
    return answer is None or "Not Found" in str(answer.get("message", ""))


def ensure_experiment(client: DioptraClient, name: str) -> dict:
    """The experiment called ``name``, registered first if it does not exist."""
    found = client.get_experiment_by_name(name)
    if _missing(found):
        found = client.register_experiment(name)
    if "experimentId" not in found:
        raise RuntimeError(f"experiment {name!r}: {found.get('message', found)}")
    return found


def ensure_queue(client: DioptraClient, name: str) -> dict:
    """The queue called ``name``, registered first if it does not exist."""
    found = client.get_queue_by_name(name)
    if _missing(found):
        found = client.register_queue(name)
    if "queueId" not in found:
        raise RuntimeError(f"queue {name!r}: {found.get('message', found)}")
    return found


# -- jobs ---------------------------------------------------------------------------------

def job_log(client: DioptraClient, job_id: str) -> str:
    page = client.get_job_log(job_id)
    return page.get("log", "") if isinstance(page, dict) else ""


# -- pipelines --------------------------------------------------------------------------------

@dataclass
class PipelineOutcome:
    """What a pipeline ``run.py`` returns: the pipeline's final state, the server's report
    (its table of runs), the report its last stage printed, success."""

    state: dict
    report: dict
    text: str | None
    ok: bool
    experiment_id: int

    def rows(self, stage: str) -> list[dict]:
        return [r for r in self.report["rows"] if r["stage"] == stage]

    def metrics(self, stage: str) -> dict[str, float]:
        """The final metrics of the one job of ``stage``."""
        (row,) = self.rows(stage)
        return row["metrics"]

    def run_id(self, stage: str) -> str:
        (row,) = self.rows(stage)
        return row["runId"]


def load_pipeline(example_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((Path(example_dir) / "pipeline.yaml").read_text())


class StageProgress:
    """One line per change of a stage's counts: ``attack: 3/8 finished, 2 running``."""

    def __init__(self, out: Printer) -> None:
        self.out = out
        self.seen: dict[str, str] = {}

    def __call__(self, state: dict) -> None:
        for stage in state["stages"]:
            counts = stage["counts"]
            line = (f"{stage['name']}: {counts.get('finished', 0)}/{stage['total']} finished"
                    + "".join(f", {counts[k]} {k}" for k in ("started", "failed")
                              if counts.get(k)))
            if self.seen.get(stage["name"]) != line:
                self.seen[stage["name"]] = line
                self.out(line)


def run_pipeline(
    example_dir: Path,
    address: str,
    queue: str,
    experiment: str,
    timeout: str = "1h",
    change: Callable[[dict], None] | None = None,
    extra_files: Iterable[Path] = (),
    out: Printer = print,
) -> PipelineOutcome:
    """Submit the example's ``pipeline.yaml`` (its experiment, queue and timeout replaced,
    then ``change`` applied) with its workflow, and follow it to the end: the server does
    the rest (fan-out, fan-in, run ids handed from job to job)."""
    client = DioptraClient(address)
    found = ensure_experiment(client, experiment)
    ensure_queue(client, queue)
    definition = load_pipeline(example_dir)
    definition.update(experiment=experiment, queue=queue, timeout=timeout)
    if change is not None:
        change(definition)
    out(f"{Path(example_dir).name}: experiment {experiment!r} (id {found['experimentId']}), "
        f"queue {queue!r}, testbed {address}")
    with tempfile.TemporaryDirectory(prefix="dioptra-example-") as tmp:
        workflow = build_workflow(example_dir, Path(tmp) / "workflows.tar.gz",
                                  extra_files=extra_files)
        state = client.submit_pipeline(definition, workflow)
    if "pipelineId" not in state:
        problems = "\n".join(f"  - {p}" for p in state.get("problems", []))
        raise RuntimeError(f"{state.get('message', state)}\n{problems}".rstrip())
    out(f"pipeline {state['pipelineId']}: {len(state['jobs'])} jobs in "
        f"{len(state['stages'])} stages")
    state = client.wait_for_pipeline(state["pipelineId"], poll_s=0.25,
                                     on_state=StageProgress(out))
    report = client.get_pipeline_report(state["pipelineId"])
    last = [j for j in state["jobs"] if j["stage"] == state["stages"][-1]["name"]]
    text = None
    if len(last) == 1 and last[0]["status"] == "finished":
        log = job_log(client, last[0]["jobId"])
        begin, end = log.rfind(REPORT_BEGIN), log.rfind(REPORT_END)
        if 0 <= begin < end:
            text = log[begin + len(REPORT_BEGIN):end].strip("\n")
    ok = state["status"] == "finished"
    if not ok:
        for job in state["jobs"]:
            if job["status"] == "failed" and job["mlflowRunId"]:
                tail = job_log(client, job["jobId"]).splitlines()[-15:]
                out(f"\n{job['stage']} {job['varying'] or ''} failed; its log ends with:")
                for line in tail:
                    out(f"  {line}")
    return PipelineOutcome(state, report, text, ok, found["experimentId"])


def finish_pipeline(outcome: PipelineOutcome, address: str, out: Printer = print) -> int:
    """Print the report (or why there is none); the exit status of a ``run.py``."""
    if outcome.text:
        out("")
        out(outcome.text)
    for warning in outcome.report.get("warnings", []):
        out(f"warning: {warning}")
    pipeline_id = outcome.state["pipelineId"]
    out(f"\nthe pipeline's report (table, charts, definition): "
        f"{address}/api/v0/pipeline/{pipeline_id}/report.html, also artifact report.html "
        f"of MLflow run {outcome.state['mlflowRunId']}")
    if not outcome.ok:
        failed = [j for j in outcome.state["jobs"] if j["status"] != "finished"]
        out(f"\n{len(failed)} job(s) did not finish ({outcome.state.get('reason')})")
        return 1
    return 0


def main_guard(main: Callable[[], int]) -> None:
    """Run a ``run.py`` main: Ctrl-C and connection errors end with a message, not a trace."""
    import requests

    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted (the jobs already submitted keep running on the testbed)")
        sys.exit(130)
    except requests.ConnectionError as exc:
        print(f"cannot reach the testbed: {exc}\n(start one with `make serve`, or pass "
              "--address)", file=sys.stderr)
        sys.exit(2)
