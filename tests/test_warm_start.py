"""Warm interpreters: an entry point run in one behaves as in a fresh ``python``.

In-process first: the same scripts run cold (``bash -c "python ..."`` in the sandbox, as
the worker always did) and warm (a prepared interpreter in its own sandboxed folder),
and what they saw and how they ended must match, the job folders aside. Then one server:
the same seeded entry point run warm and (opted out in its MLproject) cold must give the
same MLflow metrics, params, artifacts and log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import mlflow
import pytest
from testbed import processes_with, unique
from workflows import write_tar

from dioptra.client import DioptraClient
from dioptra.contract.mlproject import MLprojectError, load_project
from dioptra.worker import forks, warm
from dioptra.worker import main as worker_main
from dioptra.worker.execute import entry_point_environment
from dioptra.worker.runner import RunResult, run_command
from dioptra.worker.sandbox import Limits, Sandbox, from_environment
from dioptra.worker.v0_environment import lay_out_plugin_dir

JOB_VARS = {"MLFLOW_RUN_ID": "run-" + uuid.uuid4().hex, "MLFLOW_TRACKING_URI": "file:///nowhere",
            "DIOPTRA_JOB_ID": "job-1"}

PROBE = r"""
import json, os, sys
out = {
    "argv": sys.argv, "orig_argv": sys.orig_argv, "path": sys.path, "name": __name__,
    "file": __file__, "spec": repr(__spec__), "cwd": os.getcwd(), "env": dict(os.environ),
    "stdin": sys.stdin.read(), "executable": sys.executable, "main": repr(sys.modules["__main__"]),
    "main_is_us": sys.modules["__main__"].__dict__ is globals(),
}
print(json.dumps(out))
print("to stderr", file=sys.stderr)
"""
MODULE = r"""
import json, os, sys
print(json.dumps({"argv": sys.argv, "path": sys.path, "name": __name__, "cwd": os.getcwd(),
                  "spec": __spec__.name, "file": __file__}))
"""
SCRIPTS = {
    "probe.py": PROBE,
    "code.py": "import sys\nprint('before')\nsys.exit(3)\n",
    "message.py": "import sys\nsys.exit('goodbye')\n",
    "raises.py": "def f():\n    raise ValueError('boom')\n\nprint('x', flush=True)\nf()\n",
    "signal.py": "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
    "atexit_thread.py": (
        "import atexit, threading, time\natexit.register(lambda: print('atexit ran'))\n"
        "t = threading.Thread(target=lambda: (time.sleep(0.3), print('thread done')))\n"
        "t.start()\nprint('main done')\n"
    ),
    "finalised.py": (
        "import sys\nclass A:\n    def __del__(self):\n        print('finalised')\n"
        "a = A()\nlog = open('left-open.txt', 'w')\nlog.write('kept')\n"
        "import atexit\natexit.register(lambda: print('atexit', open('left-open.txt').read()))\n"
        "sys.exit(259)\n"
    ),
    "pkg/__init__.py": "",
    "pkg/tool.py": MODULE,
}
CASES = [
    "python probe.py a 'b c' --flag=1",
    "python code.py",
    "python message.py",
    "python raises.py",
    "python signal.py",
    "python atexit_thread.py",
    "python finalised.py",
    "python -m pkg.tool x y",
]


@pytest.fixture(scope="module")
def sandbox():
    return from_environment()


# Both ways of warm start: a fork of the worker's fork server (the default where the
# sandbox allows it), and one interpreter prepared per job.
@pytest.fixture(params=["fork", "prepared"])
def pool_class(request, sandbox):
    if request.param == "fork":
        if not forks.forking(sandbox):
            pytest.skip("this worker cannot fork jobs (bubblewrap without root)")
        return forks.ForkPool
    return warm.WarmPool


def _workflow(folder: Path, scripts: dict[str, str]) -> Path:
    project = folder / "workflow"
    for name, text in scripts.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    return project


def _cold(sandbox, root: Path, command: str, scripts: dict[str, str], job_vars: dict,
          timeout_s: float | None = 60, cancel=lambda: False) -> tuple[RunResult, str, Path]:
    """As execute.py runs a job without warm start."""
    folder = Path(tempfile.mkdtemp(prefix="job-cold-", dir=root))
    folder.chmod(0o755)
    lay_out_plugin_dir(folder / "plugins")
    env = entry_point_environment(folder / "plugins", folder / "home", root, job_vars)
    project = _workflow(folder, scripts)
    (folder / "storage").mkdir()
    uid = sandbox.job_uid(folder.name)
    sandbox.give(uid, [project, folder / "storage", folder / "home"])
    argv = sandbox.wrap(command, folder, project, root, uid)
    out: list[str] = []
    result = run_command(command, project, env, timeout_s, out.append, cancel, argv=argv)
    return result, "".join(out), folder


def _warm(pool_class, sandbox, root: Path, command: str, scripts: dict[str, str],
          job_vars: dict, preload=("json",), spawn_env: dict | None = None,
          timeout_s: float | None = 60, cancel=lambda: False) -> tuple[RunResult, str, Path]:
    """As execute.py runs a job in a prepared interpreter."""

    def environment(plugins: Path, home: Path) -> dict[str, str]:
        return {**entry_point_environment(plugins, home, root, {}), **(spawn_env or {})}

    pool = pool_class(root, sandbox, environment, preload=list(preload))
    pool.prepare()
    interpreter = pool.take()
    assert interpreter is not None
    try:
        folder = interpreter.folder
        env = entry_point_environment(folder / "plugins", folder / "home", root, job_vars)
        project = _workflow(folder, scripts)
        sandbox.give(interpreter.uid, [project])
        call = warm.plain_python(command)
        assert call is not None
        process = interpreter.start(call, env, project)
        out: list[str] = []
        result = run_command(command, project, env, timeout_s, out.append, cancel,
                             process=process)
        return result, "".join(out), folder
    finally:
        interpreter.discard()
        pool.close()


def _same(text: str, folder: Path) -> str:
    return text.replace(str(folder), "<job>")


def test_plain_python_commands_and_the_rest():
    call = warm.plain_python("python train.py --epochs 3 --name 'a b'\n")
    assert call == warm.PythonCall("script", "train.py", ("--epochs", "3", "--name", "a b"),
                                   ("python", "train.py", "--epochs", "3", "--name", "a b"))
    assert warm.plain_python("python -m pkg.mod x").kind == "module"
    assert warm.plain_python("python 'odd;name.py' 'x|y' \"z\"").target == "odd;name.py"
    for command in [
        "python a.py && python b.py", "python a.py; echo", "python a.py | tee x",
        "python a.py > out", "python a.py $HOME", 'python a.py "$HOME"', "python a.py *.csv",
        "FOO=1 python a.py", "python3 a.py", "/usr/bin/python a.py", "bash run.sh",
        "python -u a.py", "python -c 'print(1)'", "python", "python -m", "python a.py &",
        "python a.py\necho two", "python a.py `id`", "python a.py ~/x", "python 'unclosed",
        "python a.py # comment",
    ]:
        assert warm.plain_python(command) is None, command


def test_warm_runs_like_a_fresh_python(pool_class, sandbox, tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    for command in CASES:
        cold, cold_out, cold_dir = _cold(sandbox, root, command, SCRIPTS, JOB_VARS)
        hot, hot_out, hot_dir = _warm(pool_class, sandbox, root, command, SCRIPTS, JOB_VARS)
        assert (hot.reason, hot.returncode) == (cold.reason, cold.returncode), (command, hot_out)
        if command.startswith("python probe.py"):
            seen_cold = json.loads(_same(cold_out.splitlines()[0], cold_dir))
            seen_warm = json.loads(_same(hot_out.splitlines()[0], hot_dir))
            for env in (seen_cold["env"], seen_warm["env"]):
                assert env.pop("HOME") == "<job>/home"
            assert set(seen_warm["env"].items()) ^ set(seen_cold["env"].items()) == set()
            assert seen_warm == seen_cold
            assert seen_warm["env"]["MLFLOW_RUN_ID"] == JOB_VARS["MLFLOW_RUN_ID"]
            assert seen_warm["argv"] == ["probe.py", "a", "b c", "--flag=1"]
            assert seen_warm["main_is_us"] and seen_warm["path"][0] == "<job>/workflow"
            assert sorted(cold_out.splitlines()[1:]) == sorted(hot_out.splitlines()[1:])
        else:
            assert _same(hot_out, hot_dir) == _same(cold_out, cold_dir), command


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_timeout_and_cancel_kill_everything_the_job_started(pool_class, sandbox, tmp_path,
                                                            how):
    marker = "warm-child-" + uuid.uuid4().hex
    scripts = {"spawn.py": (
        "import subprocess, sys, time\n"
        f"subprocess.Popen(['sleep', '300', '{marker}'])\n"
        f"subprocess.Popen(['bash', '-c', 'setsid sleep 300 {marker} &'])\n"
        "print('started', flush=True)\ntime.sleep(300)\n"
    )}
    begun = time.monotonic()
    if how == "timeout":
        result, out, _ = _warm(pool_class, sandbox, tmp_path, "python spawn.py", scripts, JOB_VARS,
                               timeout_s=3)
    else:
        result, out, _ = _warm(pool_class, sandbox, tmp_path, "python spawn.py", scripts, JOB_VARS,
                               cancel=lambda: time.monotonic() - begun > 3)
    assert result.reason == ("timeout" if how == "timeout" else "cancelled")
    assert "started" in out
    deadline = time.monotonic() + 20
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker) == []


def test_job_time_environment_wins_over_what_the_modules_saw_at_import(pool_class, sandbox,
                                                                      tmp_path):
    # mlflow and torch are imported before the job's variables exist: they must still
    # follow them, as after a fresh import.
    script = {"show.py": (
        "import json, os, mlflow, torch\n"
        "print(json.dumps({'uri': mlflow.get_tracking_uri(), 'threads': torch.get_num_threads(),"
        " 'preloaded': 'torch' in __import__('sys').modules}))\n"
    )}
    job_vars = {**JOB_VARS, "OMP_NUM_THREADS": "1",
                "MLFLOW_TRACKING_URI": "http://127.0.0.1:9/job-only"}
    result, out, _ = _warm(pool_class, sandbox, tmp_path, "python show.py", script, job_vars,
                           preload=("mlflow", "torch"), spawn_env={"OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, out
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen == {"uri": "http://127.0.0.1:9/job-only", "threads": 1, "preloaded": True}


def test_a_ready_interpreter_states_its_memory():
    rss_kb, seconds = warm.measure_ready_memory(["json"])
    assert 1_000 < rss_kb < 200_000 and seconds > 0


def test_opt_outs(tmp_path, monkeypatch):
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  a: {command: python a.py}\n"
        "  b: {command: python a.py, warm_start: false}\n"
        "  c: {command: python a.py, warm_start: maybe}\n"
    )
    with pytest.raises(MLprojectError, match="warm_start of entry point 'c'"):
        load_project(tmp_path)
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  a: {command: python a.py}\n"
        "  b: {command: python a.py, warm_start: false}\n"
    )
    project = load_project(tmp_path)
    assert project.entry_point("a").warm_start and not project.entry_point("b").warm_start
    monkeypatch.setenv(warm.ENV_WARM, "1")  # restored after the test, whatever resolve sets
    assert warm.enabled()
    parser = worker_main.build_parser()
    worker_main.resolve(parser.parse_args(["--server", "http://x", "--no-warm-start"]), parser)
    assert os.environ[warm.ENV_WARM] == "0" and not warm.enabled()
    assert worker_main.warm_pool(tmp_path) is None


SEEDED = """
import json, random, sys
from pathlib import Path
import mlflow
random.seed(int(sys.argv[1]))
values = [random.random() for _ in range(5)]
for step, value in enumerate(values):
    mlflow.log_metric("value", value, step=step)
mlflow.log_param("seed", sys.argv[1])
Path("result.json").write_text(json.dumps(values))
mlflow.log_artifact("result.json")
print("values", values)
"""


def test_same_entry_point_warm_and_cold_same_results(start_server, tmp_path, mlflow_uri):
    server = start_server(workers=1, env={"DIOPTRA_WARM_MODULES": "mlflow"})
    archive = write_tar(tmp_path / "seeded.tar.gz", {
        "MLproject": (
            "entry_points:\n"
            "  warm: {parameters: {seed: {type: float, default: 7}},"
            " command: 'python seeded.py {seed}'}\n"
            "  cold: {parameters: {seed: {type: float, default: 7}},"
            " command: 'python seeded.py {seed}', warm_start: false}\n"
        ),
        "seeded.py": SEEDED,
    })
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("warm"))["name"]
    queue = client.register_queue(unique("warm"))["name"]
    seen = {}
    for entry_point in ("warm", "cold"):  # warm first: after an opted-out job none is ready
        job = client.submit_job(archive, experiment, entry_point, queue=queue)
        done = client.wait_for_job(job["jobId"], timeout_s=240)
        log = client.get_job_log(job["jobId"])["log"]
        assert done["status"] == "finished", log
        assert ("(in a warm interpreter)" in log) == (entry_point == "warm"), log
        run = mlflow.MlflowClient(mlflow_uri).get_run(done["mlflowRunId"])
        metrics = [(m.step, m.value) for m in
                   mlflow.MlflowClient(mlflow_uri).get_metric_history(run.info.run_id, "value")]
        folder = tmp_path / entry_point
        folder.mkdir()
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(folder),
                                            tracking_uri=mlflow_uri)
        artifacts = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                           if p.is_file() and p.name != "job.log")
        seen[entry_point] = {
            "metrics": metrics,
            "params": run.data.params,
            "artifacts": artifacts,
            "result": (folder / "result.json").read_text(),
            # The entry point's own output; the run's id and random name are its own.
            "log": [line.replace(run.info.run_id, "<run>").replace(run.info.run_name, "<name>")
                    for line in log.splitlines() if not line.startswith("[dioptra")],
        }
        shutil.rmtree(folder)
    assert seen["warm"] == seen["cold"]
    assert len(seen["warm"]["metrics"]) == 5
    assert any(line.startswith("values [") for line in seen["warm"]["log"])


def test_unused_interpreters_go_away(sandbox, tmp_path):
    pool = warm.WarmPool(tmp_path, sandbox, lambda p, h: entry_point_environment(
        p, h, tmp_path, {}), preload=["json"])
    pool.prepare()
    interpreter = pool.take()
    pool.prepare()
    assert interpreter is not None and pool._next is not None
    pid = interpreter.process.pid
    interpreter.remove()
    pool.close()
    # A job whose command cannot use one: none is prepared until one that could comes.
    pool.note(False)
    assert pool._next is None
    pool.prepare()
    assert pool._next is None
    pool.note(True)
    assert pool._next is not None
    pool.close()
    assert not interpreter.folder.exists() and list(tmp_path.iterdir()) == []
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0


def test_forked_without_a_sandbox_runs_like_a_fresh_python(tmp_path):
    bare = Sandbox(False, "switched off for this test", Limits())
    root = tmp_path / "work"
    root.mkdir()
    for command in ("python probe.py a 'b c'", "python code.py", "python raises.py",
                    "python signal.py", "python -m pkg.tool x y"):
        cold, cold_out, cold_dir = _cold(bare, root, command, SCRIPTS, JOB_VARS)
        hot, hot_out, hot_dir = _warm(forks.ForkPool, bare, root, command, SCRIPTS, JOB_VARS)
        assert (hot.reason, hot.returncode) == (cold.reason, cold.returncode), (command, hot_out)
        if command.startswith("python probe.py"):
            seen_cold = json.loads(_same(cold_out.splitlines()[0], cold_dir))
            seen_warm = json.loads(_same(hot_out.splitlines()[0], hot_dir))
            assert seen_warm == seen_cold
        else:
            assert _same(hot_out, hot_dir) == _same(cold_out, cold_dir), command


THREAD_AT_IMPORT = "import threading, time\nthreading.Thread(target=time.sleep, args=(600,), " \
    "daemon=True).start()\n"


def test_a_server_with_threads_is_never_forked(sandbox, tmp_path):
    # A module that starts a thread when imported: forking then could deadlock, so the
    # pool says so and prepares one interpreter per job instead; the job runs all the same.
    root = tmp_path / "work"
    modules = root / "modules"  # where the fork server's sandbox shows it
    modules.mkdir(parents=True)
    (modules / "threaded_at_import.py").write_text(THREAD_AT_IMPORT)
    pool = forks.ForkPool(root, sandbox, lambda p, h: {
        **entry_point_environment(p, h, root, {}), "PYTHONPATH": str(modules)},
        preload=["threaded_at_import"])
    try:
        pool.prepare()
        pool.wait_ready(120, lambda: False)
        assert pool.server is not None and pool.server.state().startswith("unforkable 2")
        interpreter = pool.take()  # notices, and prepares an interpreter of its own instead
        assert isinstance(interpreter, warm.WarmInterpreter) and pool.server is None
        try:
            project = _workflow(interpreter.folder, SCRIPTS)
            sandbox.give(interpreter.uid, [project])
            env = entry_point_environment(interpreter.folder / "plugins",
                                          interpreter.folder / "home", root, JOB_VARS)
            process = interpreter.start(warm.plain_python("python code.py"), env, project)
            out: list[str] = []
            result = run_command("python code.py", project, env, 60, out.append,
                                 lambda: False, process=process)
            assert (result.reason, result.returncode) == ("exited", 3)
            assert "".join(out) == "before\n"
        finally:
            interpreter.remove()
    finally:
        pool.close()


def test_the_fork_server_goes_with_its_pool(sandbox, tmp_path):
    pool = forks.ForkPool(tmp_path, sandbox, lambda p, h: entry_point_environment(
        p, h, tmp_path, {}), preload=["json"])
    pool.prepare()
    pool.wait_ready(60, lambda: False)
    assert pool.server is not None and pool.server.ready_rss_kb() > 1_000
    ticket = pool.take()
    assert ticket is not None and ticket.folder.is_dir()
    ticket.remove()
    # One that died (killed, out of memory) is replaced when the next job is prepared.
    os.killpg(pool.server.process.pid, signal.SIGKILL)
    pool.server.process.wait()
    assert not pool.server.alive()
    pool.prepare()
    pool.wait_ready(60, lambda: False)
    assert pool.server.alive() and pool.server.ready_rss_kb() > 1_000
    pid = pool.server.process.pid
    pool.close()
    assert list(tmp_path.iterdir()) == []
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0


SLEEPER = "import sys, time\nprint('started', flush=True)\ntime.sleep(float(sys.argv[1]))\n"


def _forked_job(pool, root: Path, command: str, scripts: dict[str, str]):
    """A job of ``pool`` (a shared fork server's), started: its ForkedProcess and folder."""
    ticket = pool.take()
    assert isinstance(ticket, forks.ForkTicket), ticket
    project = _workflow(ticket.folder, scripts)
    pool.sandbox.give(ticket.uid, [project])
    env = entry_point_environment(ticket.folder / "plugins", ticket.folder / "home", root,
                                  JOB_VARS)
    return ticket.start(warm.plain_python(command), env, project), ticket


def test_workers_share_one_fork_server(sandbox, tmp_path):
    if not forks.forking(sandbox):
        pytest.skip("this worker cannot fork jobs (bubblewrap without root)")
    # A work dir deeper than an AF_UNIX address may be long (108 bytes).
    root = tmp_path / ("deep-" * 20) / "work"
    root.mkdir(parents=True)
    socket_path = root / "fork-server-test.sock"
    assert len(str(socket_path)) > 108

    def environment(plugins: Path, home: Path) -> dict[str, str]:
        return entry_point_environment(plugins, home, root, {})

    listener = forks.listen(socket_path)
    server = forks.ForkServer(root, sandbox, environment, ["json"], listener)
    first, second = (forks.ForkPool(root, sandbox, environment, preload=["json"],
                                    shared=socket_path) for _ in range(2))
    try:
        assert server.state(60).startswith("ready")
        for pool in (first, second):
            pool.prepare()
            pool.wait_ready(60, lambda: False)
            assert isinstance(pool.server, forks.SharedForkServer)
            assert pool.server.ready_rss_kb() > 1_000  # what the one server said
        scripts = {**SCRIPTS, "sleeper.py": SLEEPER}
        long_job, long_ticket = _forked_job(first, root, "python sleeper.py 120", scripts)
        assert long_job.stdout.readline() == b"started\n"
        # Meanwhile the other worker's jobs run, each as a fresh python would.
        for _ in range(2):
            quick, ticket = _forked_job(second, root, "python code.py", scripts)
            assert quick.stdout.read() == b"before\n" and quick.wait(30) == 3
            ticket.remove()
        assert long_job.poll() is None
        # A worker that goes takes its jobs with it, and only its own.
        first.close()
        assert long_job.wait(30) == -signal.SIGKILL
        long_ticket.remove()
        still, ticket = _forked_job(second, root, "python code.py", scripts)
        assert still.wait(30) == 3
        ticket.remove()
        # The fork server ends with its owner; a worker notices, and its jobs start cold.
        server.close()
        listener.close()  # as fork_host.py does while it has no server
        assert second.take() is None and second.server is None
    finally:
        first.close()
        second.close()
        server.close()
        listener.close()
    assert subprocess.run(["kill", "-0", str(server.process.pid)],
                          capture_output=True).returncode != 0


def _fork_servers_in(folder: Path) -> list[int]:
    """The fork server processes working in ``folder`` (their cwd is their own folder),
    not the jobs forked from them (which have the same command line)."""
    booted = set(processes_with("warm_boot.py"))
    found = []
    for pid in booted:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent not in booted and os.readlink(f"/proc/{pid}/cwd").startswith(str(folder)):
                found.append(pid)
        except OSError:
            continue
    return found


def test_embedded_workers_fork_their_jobs_from_one_server(start_server, tmp_path):
    if not forks.forking(from_environment()):
        pytest.skip("this worker cannot fork jobs (bubblewrap without root)")
    server = start_server(workers=2, env={"DIOPTRA_WARM_MODULES": "json"})
    archive = write_tar(tmp_path / "sleepy.tar.gz", {
        "MLproject": "entry_points:\n  main: {parameters: {s: {type: float, default: 4}},"
                     " command: 'python sleeper.py {s}'}\n",
        "sleeper.py": SLEEPER,
    })
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("shared"))["name"]
    queue = client.register_queue(unique("shared"))["name"]

    def run_two() -> None:
        jobs = [client.submit_job(archive, experiment, "main", queue=queue)["jobId"]
                for _ in range(2)]
        deadline = time.monotonic() + 120
        while not all(client.get_job_by_id(j)["status"] == "started" for j in jobs):
            assert time.monotonic() < deadline, "two jobs never ran at once"
            time.sleep(0.1)
        assert len(_fork_servers_in(server.data_dir)) == 1  # both workers', one server
        for job_id in jobs:
            done = client.wait_for_job(job_id, timeout_s=120)
            log = client.get_job_log(job_id)["log"]
            assert done["status"] == "finished", log
            assert "(in a warm interpreter)" in log and "started\n" in log, log

    run_two()
    # Should it die, its keeper starts another, and the workers fork from that one.
    (pid,) = _fork_servers_in(server.data_dir)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while _fork_servers_in(server.data_dir) in ([], [pid]):
        assert time.monotonic() < deadline, "no new fork server"
        time.sleep(0.2)
    run_two()


def test_the_keeper_of_the_shared_fork_server_outlives_its_failures(sandbox, tmp_path,
                                                                    monkeypatch, caplog):
    if not forks.forking(sandbox):
        pytest.skip("this worker cannot fork jobs (bubblewrap without root)")
    import threading

    from dioptra.worker import fork_host

    monkeypatch.setenv("DIOPTRA_WARM_MODULES", "json")
    root = tmp_path / "work"
    root.mkdir()
    socket_path = root / "not-yet" / "fork.sock"  # its folder is missing: cannot listen
    stop = threading.Event()
    keeper = threading.Thread(target=fork_host.serve, args=(socket_path, root, stop))
    keeper.start()
    try:
        deadline = time.monotonic() + 30
        while "could not start" not in caplog.text:
            assert time.monotonic() < deadline and keeper.is_alive(), caplog.text
            time.sleep(0.05)
        socket_path.parent.mkdir()  # the next try (1 s later) succeeds
        pool = forks.ForkPool(root, sandbox, lambda p, h: entry_point_environment(
            p, h, root, {}), preload=["json"], shared=socket_path)
        try:
            pool.wait_ready(30, lambda: False)
            job, ticket = _forked_job(pool, root, "python code.py", SCRIPTS)
            assert job.stdout.read() == b"before\n" and job.wait(30) == 3
            ticket.remove()
        finally:
            pool.close()
    finally:
        stop.set()
        keeper.join(30)
    assert not keeper.is_alive() and not socket_path.exists()


def test_a_shared_fork_server_serves_only_its_own_uid(sandbox, tmp_path):
    if os.geteuid() != 0 or not forks.forking(sandbox):
        pytest.skip("needs root (to connect as another uid) and forking")
    import socket

    root = tmp_path / "work"
    root.mkdir()
    folder = Path(tempfile.mkdtemp(prefix="fork-uid-"))
    folder.chmod(0o755)
    path = folder / "fork.sock"
    listener = forks.listen(path)
    path.chmod(0o666)  # the file would stop another uid; here the server itself must
    server = forks.ForkServer(root, sandbox, lambda p, h: entry_point_environment(
        p, h, root, {}), ["json"], listener)
    try:
        assert server.state(60).startswith("ready")
        child = os.fork()
        if child == 0:  # connects as nobody: accepted by the kernel, closed by the server
            try:
                os.setgroups([])
                os.setresgid(65534, 65534, 65534)
                os.setresuid(65534, 65534, 65534)
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                conn.connect(str(path))
                conn.settimeout(30)
                os._exit(0 if conn.recv(100) == b"" else 1)
            except BaseException:  # noqa: BLE001
                os._exit(2)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        ours = forks.SharedForkServer(path, root, sandbox)  # the same uid is served
        assert ours.state(30).startswith("ready")
        ours.close()
    finally:
        server.close()
        listener.close()
        shutil.rmtree(folder)
