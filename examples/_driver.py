"""What every example's ``run.py`` does on the client side, written once.

* :func:`build_workflow` packs an example folder into the workflow archive that jobs
  run: ``MLproject`` and the entry-point scripts at the archive root, plus the helpers
  of ``examples/common/`` (and any extra scripts an example borrows from another one);
* :func:`ensure_experiment` / :func:`ensure_queue` register what is missing, as the
  original's notebooks did (``get_*_by_name`` first, ``register_*`` on "Not Found");
* :func:`run_steps` submits a chain of jobs (:class:`Step`) and follows it: a job that
  needs the MLflow run id of another job is submitted once that job has one (polling
  ``get_job_by_id`` until ``mlflowRunId`` is set, as in the notebooks), with
  ``dependsOn`` so that the server starts it only when its parent has finished; one
  line is printed per job state change;
* :func:`report_text` reads the report that a ``report`` entry point printed into its
  job log, and :func:`print_failures` shows the log tails of failed jobs.

``run.py`` files add ``examples/`` to ``sys.path`` and ``import _driver``.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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
TERMINAL = ("finished", "failed", "skipped")
NO_WORKER_HINT_S = 60.0

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


# -- chains of jobs -------------------------------------------------------------------------

@dataclass(eq=False)
class Step:
    """One job of a chain.

    ``params`` become ``-P name=value``; a value that is a :class:`Step` stands for that
    step's MLflow run id, a list of steps for their run ids joined by commas. ``after``
    is the job given as ``dependsOn`` (v0 takes one parent): the server holds this job
    back until ``after`` has finished. Other steps named in ``params`` must have finished
    before this one is submitted; the driver waits for them.
    """

    label: str
    entry_point: str
    params: dict[str, Any] = field(default_factory=dict)
    after: Step | None = None
    job_id: str | None = None
    run_id: str | None = None
    status: str = "waiting"  # not submitted yet; then the job's status, or "skipped"
    note: str = ""

    def needs(self) -> list[Step]:
        found: list[Step] = []
        for value in self.params.values():
            items = value if isinstance(value, list | tuple) else [value]
            found += [item for item in items if isinstance(item, Step)]
        return found

    def prerequisites(self) -> list[Step]:
        steps = self.needs()
        if self.after is not None and self.after not in steps:
            steps.append(self.after)
        return steps

    def kwargs(self) -> str:
        """The job's ``entryPointKwargs``."""
        parts = []
        for name, value in self.params.items():
            parts.append(f"-P {shlex.quote(f'{name}={_param_text(value)}')}")
        return " ".join(parts)


def _param_text(value: Any) -> str:
    if isinstance(value, Step):
        assert value.run_id is not None
        return value.run_id
    if isinstance(value, list | tuple):
        return ",".join(_param_text(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _ready(step: Step) -> bool | None:
    """True: can be submitted now; False: not yet; None: never (a prerequisite failed)."""
    for other in step.prerequisites():
        if other.status in ("failed", "skipped"):
            return None
    if step.after is not None and step.after.job_id is None:
        return False
    for other in step.needs():
        if other.run_id is None:
            return False
        if other is not step.after and other.status != "finished":
            return False
    return True


class Progress:
    """Prints one line per job state change, with the time since the chain started."""

    def __init__(self, steps: Sequence[Step], out: Printer) -> None:
        self.start = time.monotonic()
        self.width = max(len(step.label) for step in steps)
        self.out = out

    def __call__(self, step: Step, text: str) -> None:
        elapsed = time.monotonic() - self.start
        self.out(f"  [{elapsed:6.1f}s] {step.label:<{self.width}}  {text}")


def run_steps(
    client: DioptraClient,
    workflow: Path,
    experiment: str,
    queue: str,
    steps: Sequence[Step],
    timeout: str = "1h",
    poll_s: float = 1.0,
    out: Printer = print,
) -> bool:
    """Submit ``steps`` as their prerequisites allow and follow them to the end.

    Returns True when every job finished. A step whose prerequisite failed is not
    submitted (status ``skipped``); jobs the server holds back for a failed ``dependsOn``
    parent fail on the server's side.
    """
    show = Progress(steps, out)
    hinted = False
    while True:
        for step in steps:
            if step.status != "waiting":
                continue
            ready = _ready(step)
            if ready is None:
                step.status = "skipped"
                show(step, "skipped: a job it needs failed")
            elif ready:
                _submit(client, workflow, experiment, queue, step, timeout)
                show(step, f"{step.status:<8} job {step.job_id}")
        for step in steps:
            if step.job_id is None or step.status in TERMINAL:
                continue
            job = client.get_job_by_id(step.job_id)
            if "jobId" not in job:
                raise RuntimeError(f"job {step.job_id}: {job.get('message', job)}")
            run_id, status = job.get("mlflowRunId"), job["status"]
            if run_id and run_id != step.run_id:
                step.run_id = run_id
            if status != step.status:
                step.status = status
                extra = f" run {step.run_id}" if status == "started" and step.run_id else ""
                show(step, f"{status}{extra}")
        if all(step.status in TERMINAL for step in steps):
            return all(step.status == "finished" for step in steps)
        if not hinted and time.monotonic() - show.start > NO_WORKER_HINT_S and all(
            step.status in ("waiting", "queued", "deferred") for step in steps
        ):
            hinted = True
            out(f"  (no job has started after {NO_WORKER_HINT_S:.0f}s: is a worker serving "
                f"queue {queue!r}?)")
        time.sleep(poll_s)


def _submit(client: DioptraClient, workflow: Path, experiment: str, queue: str, step: Step,
            timeout: str) -> None:
    job = client.submit_job(
        str(workflow),
        experiment,
        step.entry_point,
        entry_point_kwargs=step.kwargs() or None,
        depends_on=step.after.job_id if step.after is not None else None,
        queue=queue,
        timeout=timeout,
    )
    if "jobId" not in job:
        raise RuntimeError(
            f"submitting {step.label!r} ({step.entry_point}) failed: {job.get('message', job)}"
        )
    step.job_id = job["jobId"]
    step.status = job.get("status", "queued")
    step.run_id = job.get("mlflowRunId")


# -- results ----------------------------------------------------------------------------

def job_log(client: DioptraClient, job_id: str) -> str:
    page = client.get_job_log(job_id)
    return page.get("log", "") if isinstance(page, dict) else ""


def report_text(client: DioptraClient, step: Step) -> str | None:
    """The report a ``report`` entry point printed (see ``common/reporting.py``)."""
    if step.job_id is None:
        return None
    text = job_log(client, step.job_id)
    begin = text.rfind(REPORT_BEGIN)
    end = text.find(REPORT_END, begin)
    if begin < 0 or end < 0:
        return None
    return text[begin + len(REPORT_BEGIN) : end].strip("\n")


def print_failures(client: DioptraClient, steps: Iterable[Step], out: Printer = print,
                   lines: int = 25) -> None:
    """The last ``lines`` lines of the log of every failed job."""
    for step in steps:
        if step.status == "failed" and step.job_id is not None:
            tail = job_log(client, step.job_id).rstrip("\n").splitlines()[-lines:]
            out(f"\n--- {step.label} ({step.entry_point}, job {step.job_id}) failed; "
                f"last lines of its log:")
            out("\n".join(tail) if tail else "(empty log)")
        elif step.status == "skipped":
            out(f"\n--- {step.label} was not submitted: a job it needs failed")


@dataclass
class Outcome:
    """What a ``run.py`` returns: the steps by label, the report, success."""

    steps: dict[str, Step]
    report: str | None
    ok: bool
    experiment_id: int | None = None

    def run_id(self, label: str) -> str | None:
        return self.steps[label].run_id


def run_example(
    example_dir: Path,
    steps: Sequence[Step],
    address: str,
    queue: str,
    experiment: str,
    timeout: str = "1h",
    extra_files: Iterable[Path] = (),
    out: Printer = print,
) -> Outcome:
    """The whole client side of an example: archive, registration, chain, report."""
    labels = [step.label for step in steps]
    if len(set(labels)) != len(labels):
        raise ValueError("step labels must be unique")
    client = DioptraClient(address)
    found = ensure_experiment(client, experiment)
    ensure_queue(client, queue)
    out(f"{Path(example_dir).name}: experiment {experiment!r} (id {found['experimentId']}), "
        f"queue {queue!r}, testbed {address}")
    with tempfile.TemporaryDirectory(prefix="dioptra-example-") as tmp:
        workflow = build_workflow(
            example_dir, Path(tmp) / "workflows.tar.gz", extra_files=extra_files
        )
        out(f"submitting {len(steps)} jobs (workflow {workflow.name}, "
            f"{workflow.stat().st_size} bytes)")
        ok = run_steps(client, workflow, experiment, queue, steps, timeout=timeout, out=out)
    report = report_text(client, steps[-1]) if steps[-1].status == "finished" else None
    if not ok:
        print_failures(client, steps, out=out)
    return Outcome({step.label: step for step in steps}, report, ok, found["experimentId"])


def finish(outcome: Outcome, out: Printer = print) -> int:
    """Print the report (or why there is none); the exit status of a ``run.py``."""
    if outcome.report:
        out("")
        out(outcome.report)
    if not outcome.ok:
        failed = [s.label for s in outcome.steps.values() if s.status != "finished"]
        out(f"\n{len(failed)} job(s) did not finish: {', '.join(failed)}")
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
