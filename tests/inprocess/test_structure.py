"""Dependencies point one way: the contract imports neither side of the wire, the
server's rules never import the worker, the worker never imports the server."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dioptra"


def imports_of(package: str) -> dict[str, set[str]]:
    """Module -> the dioptra modules it imports anywhere (lazy imports included)."""
    found = {}
    for path in sorted((SRC / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(SRC))] = {n for n in names if n.startswith("dioptra.")}
    return found


def offending(package: str, *forbidden: str) -> dict[str, set[str]]:
    bad = {}
    for module, names in imports_of(package).items():
        hits = {n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)}
        if hits:
            bad[module] = hits
    return bad


def test_the_contract_imports_neither_side():
    assert offending("contract", "dioptra.services", "dioptra.worker", "dioptra.restapi",
                     "dioptra.db", "dioptra.dispatch", "dioptra.server") == {}


def test_server_and_worker_meet_only_in_the_contract():
    for server_side in ("services", "restapi", "db"):
        assert offending(server_side, "dioptra.worker") == {}, server_side
    assert offending("worker", "dioptra.services", "dioptra.restapi", "dioptra.db",
                     "dioptra.dispatch", "dioptra.server") == {}
    # dispatch/ keeps only the server's side; rq_tasks.py is the alias RQ jobs enqueued by
    # an older server still name (it runs in work horses, on worker machines).
    assert offending("dispatch", "dioptra.worker") == {
        "dispatch/rq_tasks.py": {"dioptra.worker.rq_task"}}


def test_rq_finds_the_task_under_the_new_path_and_the_old_one():
    """Jobs enqueued by an older server name dioptra.dispatch.rq_tasks.run_job."""
    from rq.utils import import_attribute

    from dioptra.dispatch.rq import TASK
    from dioptra.worker.rq_task import run_job

    assert import_attribute(TASK) is run_job
    old = import_attribute("dioptra.dispatch.rq_tasks.run_job")
    assert callable(old) and old.__name__ == "run_job"
