"""The `dioptra` command's everyday verbs: pipelines, jobs, queues, experiments, plugins.

Each talks to a server through DioptraClient: ``--address`` (or DIOPTRA_RESTAPI_URI,
else http://127.0.0.1:5000) and the token from DIOPTRA_API_TOKEN. ``--json`` prints what
the API answered, for scripts. Exit codes: 0 done, 1 a job or pipeline failed or the
server refused, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_ADDRESS = "http://127.0.0.1:5000"


class Refused(Exception):
    """The server answered with an error message."""


def _client(args: argparse.Namespace):
    from dioptra.client import DioptraClient

    return DioptraClient(args.address or os.environ.get("DIOPTRA_RESTAPI_URI")
                         or DEFAULT_ADDRESS)


def _checked(answer: Any) -> Any:
    if isinstance(answer, dict) and "message" in answer and len(answer) <= 3:
        problems = answer.get("problems") or []
        raise Refused("\n".join([answer["message"].split(": ", 1)[0] if problems
                                 else answer["message"], *(f"  - {p}" for p in problems)]))
    return answer


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table, columns as wide as their widest cell."""
    cells = [header, *rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


# -- pipelines ------------------------------------------------------------------------------

def report_table(report: dict, max_metrics: int = 6) -> str:
    params = report["columns"]["params"]
    metrics = report["columns"]["metrics"][:max_metrics]
    rows = [[r["stage"], r["status"], *(r["params"].get(p, "") for p in params),
             *(_fmt(r["metrics"].get(m)) for m in metrics)] for r in report["rows"]]
    return table(rows, ["stage", "status", *params, *metrics])


class _Bars:
    """One progress bar per stage: jobs ended out of the stage's jobs."""

    def __init__(self, state: dict, enabled: bool) -> None:
        self.bars = {}
        if not enabled:
            return
        from tqdm import tqdm

        width = max(len(s["name"]) for s in state["stages"])
        for position, stage in enumerate(state["stages"]):
            self.bars[stage["name"]] = tqdm(total=stage["total"], position=position,
                                            desc=stage["name"].ljust(width), unit="job",
                                            file=sys.stderr, leave=True, dynamic_ncols=True)

    def update(self, state: dict) -> None:
        for stage in state["stages"]:
            bar = self.bars.get(stage["name"])
            if bar is None:
                continue
            counts = stage["counts"]
            ended = counts.get("finished", 0) + counts.get("failed", 0)
            running = counts.get("started", 0)
            bar.set_postfix_str(f"running {running}, failed {counts.get('failed', 0)}",
                                refresh=False)
            bar.update(ended - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _pipeline_run(args: argparse.Namespace) -> int:
    client = _client(args)
    state = _checked(client.submit_pipeline(Path(args.file), args.workflow))
    if not args.json:
        print(f"pipeline {state['name']} ({state['pipelineId']}): "
              f"{sum(s['total'] for s in state['stages'])} jobs", file=sys.stderr)
    if args.no_wait:
        _print_json(state) if args.json else print(state["pipelineId"])
        return 0
    bars = _Bars(state, enabled=not args.json and not args.quiet)
    try:
        state = client.wait_for_pipeline(state["pipelineId"], timeout_s=args.timeout,
                                         poll_s=1.0, on_state=bars.update)
    except KeyboardInterrupt:
        bars.close()
        print(f"\nstopped watching; the pipeline goes on (cancel it with `dioptra pipeline "
              f"cancel {state['pipelineId']}`)", file=sys.stderr)
        return 130
    finally:
        bars.close()
    report = _checked(client.get_pipeline_report(state["pipelineId"]))
    if args.json:
        _print_json({"pipeline": state, "report": report})
    else:
        print(report_table(report))
        for warning in report["warnings"]:
            print(f"warning: {warning}")
        url = client._url("pipeline", state["pipelineId"], "report.html")
        print(f"\npipeline {state['status']}"
              f"{' (' + state['reason'] + ')' if state.get('reason') else ''}")
        print(f"HTML report: {url}\n  and artifact report.html of MLflow run "
              f"{state['mlflowRunId']}")
    if args.html:
        Path(args.html).write_text(client.get_pipeline_report(state["pipelineId"], "html"))
        if not args.json:
            print(f"  saved to {args.html}")
    return 0 if state["status"] == "finished" else 1


def _pipeline_status(args: argparse.Namespace) -> int:
    state = _checked(_client(args).get_pipeline(args.id))
    if args.json:
        _print_json(state)
    else:
        print(f"{state['name']} ({state['pipelineId']}): {state['status']}")
        print(table([[s["name"], str(s["total"]), ", ".join(
            f"{k} {v}" for k, v in sorted(s["counts"].items()))] for s in state["stages"]],
            ["stage", "jobs", "by status"]))
    return 0


def _pipeline_list(args: argparse.Namespace) -> int:
    found = _checked(_client(args).list_pipelines())
    if args.json:
        _print_json(found)
    else:
        print(table([[p["pipelineId"], p["name"], p["status"], p["createdOn"]]
                     for p in found], ["id", "name", "status", "created"]))
    return 0


def _pipeline_cancel(args: argparse.Namespace) -> int:
    state = _checked(_client(args).cancel_pipeline(args.id))
    _print_json(state) if args.json else print(f"cancelled {args.id}")
    return 0


def _pipeline_report(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.format == "json" or args.json:
        report = _checked(client.get_pipeline_report(args.id))
        _print_json(report) if (args.json or args.format == "json") else None
        return 0
    try:
        text = client.get_pipeline_report(args.id, args.format)
    except RuntimeError as exc:
        raise Refused(str(exc)) from None
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


# -- jobs -----------------------------------------------------------------------------------

def _job_submit(args: argparse.Namespace) -> int:
    kwargs = " ".join(f"-P {shlex.quote(p)}" for p in args.param) or None
    job = _checked(_client(args).submit_job(
        args.workflow, args.experiment, args.entry_point, kwargs, args.depends_on,
        args.queue, args.timeout))
    _print_json(job) if args.json else print(job["jobId"])
    return 0


def _jobs_table(jobs: list[dict]) -> str:
    return table([[j["jobId"], j["status"], j["entryPoint"] or "", str(j["experimentId"]),
                   j["createdOn"], j.get("mlflowRunId") or ""] for j in jobs],
                 ["job", "status", "entry point", "experiment", "created", "MLflow run"])


def _job_list(args: argparse.Namespace) -> int:
    client = _client(args)
    while True:
        jobs = _checked(client.find_jobs(args.status, args.experiment_id, args.queue,
                                         args.limit))
        if args.json:
            _print_json(jobs)
            return 0
        if args.watch and sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[J")
        print(_jobs_table(jobs))
        if not args.watch:
            return 0
        if all(j["status"] in ("finished", "failed") for j in jobs):
            return 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 130


def _job_log(args: argparse.Namespace) -> int:
    client = _client(args)
    if not args.follow:
        page = _checked(client.get_job_log(args.id))
        sys.stdout.write(page["log"])
        return 0
    try:
        for text in client.follow_job_log(args.id):
            sys.stdout.write(text)
            sys.stdout.flush()
    except RuntimeError as exc:
        raise Refused(str(exc)) from None
    except KeyboardInterrupt:
        return 130
    return 0 if client.get_job_by_id(args.id)["status"] == "finished" else 1


def _job_cancel(args: argparse.Namespace) -> int:
    job = _checked(_client(args).cancel_job(args.id))
    _print_json(job) if args.json else print(f"{job['jobId']}: {job['status']}")
    return 0


def _job_show(args: argparse.Namespace) -> int:
    job = _checked(_client(args).get_job_by_id(args.id))
    _print_json(job) if args.json else print(_jobs_table([job]))
    return 0


# -- queues, experiments, plugins -----------------------------------------------------------

def _simple(call, render):
    def run(args: argparse.Namespace) -> int:
        answer = _checked(call(_client(args), args))
        _print_json(answer) if args.json else print(render(answer, args))
        return 0
    return run


def _names(items: list[dict], key: str, id_key: str) -> str:
    return table([[str(i[id_key]), i[key]] for i in items], ["id", "name"])


def add_commands(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", help="the API's address (DIOPTRA_RESTAPI_URI; "
                        f"default {DEFAULT_ADDRESS}); the token comes from DIOPTRA_API_TOKEN")
    common.add_argument("--json", action="store_true", help="print the API's JSON answer")

    def group(name: str, help_text: str) -> argparse._SubParsersAction:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="VERB")

    def verb(verbs, name, func, help_text):
        parser = verbs.add_parser(name, help=help_text, description=help_text,
                                  parents=[common])
        parser.set_defaults(func=lambda a, f=func: run_command(f, a))
        return parser

    pipeline = group("pipeline", "run pipelines of jobs and read their reports")
    run = verb(pipeline, "run", _pipeline_run, "submit a pipeline file (YAML or JSON), show "
               "a progress bar per stage until it ends, print its report; exit 1 if a job "
               "failed")
    run.add_argument("file", help="the pipeline definition")
    run.add_argument("--workflow", required=True, help="tar or zip archive with the MLproject")
    run.add_argument("--no-wait", action="store_true", help="print the id and return")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--html", help="also save the HTML report to this file")
    run.add_argument("--timeout", type=float, default=24 * 3600,
                     help="give up watching after this many seconds")
    verb(pipeline, "status", _pipeline_status, "a pipeline's jobs by stage and status"
         ).add_argument("id")
    verb(pipeline, "list", _pipeline_list, "every pipeline")
    verb(pipeline, "cancel", _pipeline_cancel, "cancel a pipeline's jobs").add_argument("id")
    report = verb(pipeline, "report", _pipeline_report, "a pipeline's report")
    report.add_argument("id")
    report.add_argument("--format", choices=["json", "csv", "html"], default="json")
    report.add_argument("--output", "-o", help="write to this file instead of stdout")

    job = group("job", "submit, list, watch, follow and cancel jobs")
    submit = verb(job, "submit", _job_submit, "submit one job; prints its id")
    submit.add_argument("workflow", help="tar or zip archive with the MLproject")
    submit.add_argument("--experiment", required=True)
    submit.add_argument("--entry-point", required=True)
    submit.add_argument("--queue", required=True)
    submit.add_argument("-P", dest="param", action="append", default=[],
                        metavar="NAME=VALUE", help="an entry point parameter (repeatable)")
    submit.add_argument("--depends-on", help="a job that must finish first")
    submit.add_argument("--timeout", default="24h")
    listing = verb(job, "list", _job_list, "jobs, oldest first")
    listing.add_argument("--status", choices=["queued", "started", "deferred", "finished",
                                              "failed"])
    listing.add_argument("--experiment-id", type=int)
    listing.add_argument("--queue")
    listing.add_argument("--limit", type=int)
    listing.add_argument("--watch", "-w", action="store_true",
                         help="a live table, until every listed job has ended")
    listing.add_argument("--interval", type=float, default=2.0)
    verb(job, "show", _job_show, "one job").add_argument("id")
    log = verb(job, "log", _job_log, "a job's log")
    log.add_argument("id")
    log.add_argument("--follow", "-f", action="store_true",
                     help="keep printing until the job ends; exit 1 if it failed")
    verb(job, "cancel", _job_cancel, "cancel a job").add_argument("id")

    queue = group("queue", "register, list, lock and unlock queues")
    verb(queue, "list", _simple(lambda c, a: c.list_queues(),
                                lambda r, a: _names(r, "name", "queueId")), "queues")
    verb(queue, "register", _simple(lambda c, a: c.register_queue(a.name),
                                    lambda r, a: f"queue {r['name']}: {r['queueId']}"),
         "register a queue").add_argument("name")
    verb(queue, "lock", _simple(lambda c, a: c.lock_queue(a.name),
                                lambda r, a: f"locked {a.name}"),
         "lock a queue: no job can be submitted to it").add_argument("name")
    verb(queue, "unlock", _simple(lambda c, a: c.unlock_queue(a.name),
                                  lambda r, a: f"unlocked {a.name}"),
         "unlock a queue").add_argument("name")

    experiment = group("experiment", "register and list experiments")
    verb(experiment, "list", _simple(lambda c, a: c.list_experiments(),
                                     lambda r, a: _names(r, "name", "experimentId")),
         "experiments")
    verb(experiment, "register", _simple(
        lambda c, a: c.register_experiment(a.name),
        lambda r, a: f"experiment {r['name']}: {r['experimentId']}"),
        "register an experiment").add_argument("name")

    plugin = group("plugin", "upload and list task plugins")
    verb(plugin, "list", _simple(
        lambda c, a: c.list_all_task_plugins(),
        lambda r, a: table([[p["collection"], p["taskPluginName"], str(len(p["modules"]))]
                            for p in r], ["collection", "name", "modules"])),
        "builtin and custom task plugins")
    upload = verb(plugin, "upload", _simple(
        lambda c, a: c.upload_custom_plugin_package(a.name, a.file),
        lambda r, a: f"uploaded {r['taskPluginName']} ({len(r['modules'])} modules)"),
        "upload a custom task plugin package (tar or zip)")
    upload.add_argument("name")
    upload.add_argument("file")


def run_command(func, args: argparse.Namespace) -> int:
    """Run a verb; the server's refusals and unreachable servers are one line, exit 1."""
    import requests

    try:
        return func(args)
    except Refused as exc:
        print(f"dioptra: {exc}", file=sys.stderr)
        return 1
    except requests.ConnectionError as exc:
        print(f"dioptra: cannot reach the server: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"dioptra: {exc}", file=sys.stderr)
        return 2
