"""Dependencies point one way: the contract imports neither side of the wire, the
server's rules never import the worker, the worker never imports the server."""

import json
import subprocess
import sys


def imported_by(module: str) -> set[str]:
    code = (f"import json, sys, {module}; "
            "print(json.dumps([m for m in sys.modules if m.startswith('dioptra')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return set(json.loads(out.stdout))


def under(modules: set[str], *packages: str) -> set[str]:
    return {m for m in modules if m.split(".")[:2] in [p.split(".") for p in packages]}


def test_the_contract_imports_neither_side():
    for module in ("dioptra.contract.status", "dioptra.contract.messages",
                   "dioptra.contract.mlproject"):
        found = imported_by(module)
        assert under(found, "dioptra.services", "dioptra.worker", "dioptra.restapi",
                     "dioptra.db", "dioptra.dispatch") == set(), module


def test_server_and_worker_meet_only_in_the_contract():
    assert under(imported_by("dioptra.server"), "dioptra.worker") == set()
    worker = imported_by("dioptra.worker.main") | imported_by("dioptra.worker.execute")
    assert under(worker, "dioptra.services", "dioptra.restapi", "dioptra.db",
                 "dioptra.dispatch") == set()


def test_rq_finds_the_task_under_the_new_path_and_the_old_one():
    """Jobs enqueued by an older server name dioptra.dispatch.rq_tasks.run_job."""
    from rq.utils import import_attribute

    from dioptra.dispatch.rq import TASK
    from dioptra.worker.rq_task import run_job

    assert import_attribute(TASK) is run_job
    old = import_attribute("dioptra.dispatch.rq_tasks.run_job")
    assert callable(old) and old.__name__ == "run_job"
