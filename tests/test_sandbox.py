"""Jobs cannot reach what the server can, and MLflow answers only with the token.

One server for the module (a token, its own MLflow behind /mlflow, two embedded workers,
small job limits): a workflow tries each escape a hostile entry point would try and
prints what it found; another breaks a limit. The rules of the sandbox's arguments and
of the job tokens are checked in-process below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import mlflow
import pytest
import requests
from testbed import ServerProcess, free_port, need, processes_with, running, unique
from workflows import echo_workflow, write_tar

from dioptra.client import DioptraClient
from dioptra.services import job_tokens
from dioptra.worker import sandbox

TOKEN = "sandbox-test-" + uuid.uuid4().hex
CLOUD_SECRET = "cloud-" + uuid.uuid4().hex

ESCAPE_MLPROJECT = """\
name: escapes
entry_points:
  escape: &escape
    parameters:
      data_dir: string
      work_root: string
      api: string
      other_job: string
      marker: string
    command: "python escape.py {data_dir} {work_root} {api} {other_job} {marker}"
  escape_cold:
    <<: *escape
    warm_start: false
  limits:
    command: "python limits.py"
  limits_cold:
    command: "python limits.py"
    warm_start: false
"""

# Each attempt records what it got; the test judges. Nothing here may raise.
ESCAPE_SCRIPT = r"""
import json, os, subprocess, sys, urllib.request
from pathlib import Path
data_dir, work_root, api, other_job, marker = sys.argv[1:6]
token = os.environ.get("MLFLOW_TRACKING_TOKEN", "")
found = {"env": sorted(os.environ), "job_token": token}

# The server's environment through /proc: every environ we can read.
readable = {}
for entry in Path("/proc").iterdir():
    if entry.name.isdigit():
        try:
            readable[entry.name] = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            pass
found["pids"] = sorted(int(p) for p in readable)
found["proc_environ"] = "\n".join(readable.values())

# The database and the object store: the known place, and walking up from here.
try:
    found["data_dir"] = sorted(os.listdir(data_dir))
except OSError as exc:
    found["data_dir"] = repr(exc)
dbs = []
for parent in [Path.cwd(), *Path.cwd().parents]:
    try:
        dbs += [str(p) for pattern in ("dioptra.db", "*/dioptra.db") for p in parent.glob(pattern)]
    except OSError:
        pass
found["databases"] = dbs
try:
    found["work_root"] = sorted(os.listdir(work_root))
except OSError as exc:
    found["work_root"] = repr(exc)
found["own_folder"] = str(Path.cwd().parent)

# The API: with no token, and with the job's MLflow token.
def call(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method, data=body)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body:
        req.add_header("Content-Type", "application/json")
    try:
        return urllib.request.urlopen(req, timeout=20).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception as exc:
        return repr(exc)
put = json.dumps({"status": "started"}).encode()
found["api_put"] = call("PUT", f"{api}/api/v0/job/{other_job}", None, put)
found["api_put_job_token"] = call("PUT", f"{api}/api/v0/job/{other_job}", token, put)
found["api_get_job_token"] = call("GET", f"{api}/api/v0/queue/", token)
search = f"{api}/mlflow/api/2.0/mlflow/experiments/search?max_results=1"
found["mlflow_job_token"] = call("GET", search, token)

# Writing outside its folder.
writes = {}
for target in ["/etc/dioptra-escape", "/usr/dioptra-escape", sys.prefix + "/dioptra-escape",
               data_dir + "/dioptra-escape", work_root + "/dioptra-escape",
               str(Path.cwd().parent.parent) + "/dioptra-escape"]:
    try:
        Path(target).write_text("x")
        writes[target] = "written"
    except OSError as exc:
        writes[target] = type(exc).__name__
found["writes"] = writes
Path("/tmp/" + marker).write_text("private")  # must not show on the host
Path("output.txt").write_text("mine")  # its own folder is writable

# A daemon that leaves the job's session.
subprocess.Popen(["setsid", sys.executable, "-c", "import time; time.sleep(600)", marker],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

import mlflow  # the job's token works for MLflow: log to its run
mlflow.log_metric("escapes_tried", 8)
print("ESCAPES " + json.dumps(found), flush=True)
"""

LIMITS_SCRIPT = r"""
import os, subprocess, sys, json
result = {}
try:
    hog = bytearray(3 << 30)
    result["memory"] = "allocated"
except MemoryError:
    result["memory"] = "MemoryError"
children = []
try:
    for _ in range(400):
        children.append(subprocess.Popen(["sleep", "30"]))
    result["processes"] = len(children)
except OSError as exc:
    result["processes"] = f"{len(children)} then {type(exc).__name__}"
for child in children:
    child.kill()
print("LIMITS " + json.dumps(result), flush=True)
with open("big.bin", "wb") as fh:
    for _ in range(64):
        fh.write(b"\0" * (1 << 20))
        fh.flush()
print("wrote 64 MiB", flush=True)

"""


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    need(sandbox.probe() is None, f"no sandbox on this machine: {sandbox.probe()}")
    root = tmp_path_factory.mktemp("sandbox")
    env = {"DIOPTRA_API_TOKEN": TOKEN, "AWS_SECRET_ACCESS_KEY": CLOUD_SECRET,
           "DIOPTRA_JOB_MAX_MEMORY": "2G", "DIOPTRA_JOB_MAX_PROCESSES": "200",
           "DIOPTRA_JOB_MAX_FILE_SIZE": "16M", "DIOPTRA_SANDBOX": "require"}
    with running(ServerProcess(root / "data", free_port(), ["--workers", "2"], env),
                 timeout_s=180) as server:
        yield server


def _client(server) -> DioptraClient:
    os.environ["DIOPTRA_API_TOKEN"] = TOKEN  # the client reads it
    try:
        return DioptraClient(server.url)
    finally:
        del os.environ["DIOPTRA_API_TOKEN"]


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_mlflow_answers_only_with_the_token(guarded):
    search = f"{guarded.url}/mlflow/api/2.0/mlflow/experiments/search?max_results=5"
    assert requests.get(search, timeout=30).status_code == 401
    assert requests.get(search, headers=_bearer("wrong"), timeout=30).status_code == 401
    answer = requests.get(search, headers=_bearer(TOKEN), timeout=30)
    assert answer.status_code == 200 and "experiments" in answer.json()
    ui = f"{guarded.url}/mlflow/"
    assert requests.get(ui, timeout=30).status_code == 401
    page = requests.get(ui, headers=_bearer(TOKEN), timeout=30)
    assert page.status_code == 200 and "<title>MLflow</title>" in page.text
    bare = requests.get(f"{guarded.url}/mlflow", headers=_bearer(TOKEN), timeout=30)
    assert bare.status_code == 200 and bare.url == ui
    # The server says where the UI is, and that address works.
    assert f"MLflow UI at {guarded.url}/mlflow/" in guarded.log()
    # A forged job token is refused.
    forged = job_tokens.issue("not-the-secret", str(uuid.uuid4()))
    assert requests.get(search, headers=_bearer(forged), timeout=30).status_code == 401


def test_escapes_fail_and_jobs_still_report(guarded, tmp_path):
    client = _client(guarded)
    experiment = client.register_experiment(unique("sandbox"))["name"]
    queue = client.register_queue(unique("sandbox"))["name"]
    # A normal job first: it logs to MLflow through the proxy, with its own token.
    other = client.submit_job(echo_workflow(tmp_path), experiment, "main", queue=queue,
                              entry_point_kwargs="-P x=4")
    done = client.wait_for_job(other["jobId"], timeout_s=180)
    assert done["status"] == "finished", client.get_job_log(other["jobId"])["log"]
    tracking = mlflow.MlflowClient(f"{guarded.url}/mlflow")
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    try:
        assert tracking.get_run(done["mlflowRunId"]).data.metrics["x_squared"] == 16.0
    finally:
        del os.environ["MLFLOW_TRACKING_TOKEN"]

    archive = write_tar(tmp_path / "escapes.tar.gz", {
        "MLproject": ESCAPE_MLPROJECT, "escape.py": ESCAPE_SCRIPT, "limits.py": LIMITS_SCRIPT})
    # Forked from the fork server (warm start, jail.py) and started cold (bubblewrap
    # alone): the same escapes fail, the same limits hold.
    for warm in (True, False):
        _escapes_fail(guarded, client, archive, experiment, queue, other, warm)
        _limits_hold(client, archive, experiment, queue, warm)


def _escapes_fail(guarded, client, archive, experiment, queue, other, warm):
    marker = f"dioptra-escape-{uuid.uuid4().hex}"
    data_dir = guarded.data_dir
    kwargs = (f"-P data_dir={data_dir} -P work_root={data_dir / 'work'} -P api={guarded.url} "
              f"-P other_job={other['jobId']} -P marker={marker}")
    job = client.submit_job(archive, experiment, "escape" if warm else "escape_cold",
                            queue=queue, entry_point_kwargs=kwargs)
    escaped = client.wait_for_job(job["jobId"], timeout_s=180)
    log = client.get_job_log(job["jobId"])["log"]
    assert escaped["status"] == "finished", log
    assert "sandbox: bubblewrap" in log
    assert ("(in a warm interpreter)" in log) == warm, log
    found = json.loads(log.split("ESCAPES ", 1)[1].splitlines()[0])

    # No secret in its environment, nor in any environment it can read.
    assert "DIOPTRA_API_TOKEN" not in found["env"] and "AWS_SECRET_ACCESS_KEY" not in found["env"]
    assert TOKEN not in found["proc_environ"] and CLOUD_SECRET not in found["proc_environ"]
    assert max(found["pids"]) < 10  # its own PID namespace: no host process to read
    job_token = found["job_token"]
    assert job_token.startswith(job_tokens.PREFIX) and TOKEN not in job_token
    # No database, no data dir, no other job's folder.
    assert found["databases"] == []
    assert found["data_dir"] == ["work"] or "Error" in found["data_dir"]  # the way in only
    assert found["work_root"] in ([], [Path(found["own_folder"]).name]) or \
        "Error" in found["work_root"]
    # The API refuses it, with and without its token; MLflow takes its token.
    assert found["api_put"] == 401 and found["api_put_job_token"] == 401
    assert found["api_get_job_token"] == 401 and found["mlflow_job_token"] == 200
    assert client.get_job_by_id(other["jobId"])["status"] == "finished"
    # Nothing written outside its folder; its private /tmp is not the host's.
    assert set(found["writes"].values()) <= {"PermissionError", "OSError",
                                             "FileNotFoundError"}, found["writes"]
    assert not Path("/tmp", marker).exists()
    # Its daemon died with it.
    time.sleep(1.0)
    assert not processes_with(marker)
    # Its run was logged through its token; the token died with the job.
    run = requests.get(f"{guarded.url}/mlflow/api/2.0/mlflow/runs/get",
                       params={"run_id": escaped["mlflowRunId"]}, headers=_bearer(TOKEN),
                       timeout=30).json()["run"]
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]}["escapes_tried"] == 8
    assert run["info"]["status"] == "FINISHED"
    time.sleep(2.5)  # the server caches a job's liveness for 2 s
    search = f"{guarded.url}/mlflow/api/2.0/mlflow/experiments/search?max_results=1"
    assert requests.get(search, headers=_bearer(job_token), timeout=30).status_code == 401



def _limits_hold(client, archive, experiment, queue, warm):
    """Memory refused, processes capped, a big file kills it; reported as such."""
    limits = client.submit_job(archive, experiment, "limits" if warm else "limits_cold",
                               queue=queue)
    limited = client.wait_for_job(limits["jobId"], timeout_s=180)
    log = client.get_job_log(limits["jobId"])["log"]
    assert limited["status"] == "failed", log
    assert ("(in a warm interpreter)" in log) == warm, log
    result = json.loads(log.split("LIMITS ", 1)[1].splitlines()[0])
    assert result["memory"] == "MemoryError"
    assert "then" in str(result["processes"]) and int(result["processes"].split()[0]) < 200
    # Python turns SIGXFSZ into an error (a shell command would be killed by it).
    assert "wrote 64 MiB" not in log and "File too large" in log


# -- in-process rules --------------------------------------------------------------------


def test_job_tokens_name_their_job_and_cannot_be_forged():
    job_id = str(uuid.uuid4())
    token = job_tokens.issue("secret", job_id)
    assert job_tokens.job_id_of("secret", token) == job_id
    assert job_tokens.job_id_of("other", token) is None
    assert job_tokens.job_id_of("secret", token[:-1] + "0") in (None, job_id) and \
        job_tokens.job_id_of("secret", token.replace(job_id, str(uuid.uuid4()))) is None
    assert job_tokens.job_id_of("secret", "secret") is None


def test_job_environment_keeps_no_secret(tmp_path):
    worker = {"DIOPTRA_API_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": "k", "DATABASE_URL": "d",
              "LANG": "C.UTF-8", "OMP_NUM_THREADS": "2", "PATH": "/somewhere",
              "MY_DATA_KEY": "v", "DIOPTRA_JOB_ENV_PASS": "MY_DATA_KEY"}
    env = sandbox.job_environment(worker, tmp_path)
    assert set(env) == {"LANG", "OMP_NUM_THREADS", "PATH", "HOME", "MY_DATA_KEY"}
    assert env["HOME"] == str(tmp_path) and "/somewhere" not in env["PATH"]


def test_settings_and_exit_reasons(monkeypatch):
    assert sandbox.parse_size("8G") == 8 << 30 and sandbox.parse_size("512 MiB") == 512 << 20
    with pytest.raises(ValueError):
        sandbox.parse_size("lots")
    limits = sandbox.Limits.from_env({"DIOPTRA_JOB_MAX_PROCESSES": "0"})
    assert "--nproc=0" not in limits.prlimit_args() and limits.memory_bytes == 8 << 30
    off = sandbox.from_environment({"DIOPTRA_SANDBOX": "off"})
    assert not off.enabled and "NO SANDBOX" in off.describe()
    with pytest.raises(ValueError):
        sandbox.from_environment({"DIOPTRA_SANDBOX": "maybe"})
    assert "SIGXFSZ" in sandbox.exit_reason(128 + 25)
    assert sandbox.exit_reason(3) == "entry point exited with code 3"
    assert "SIGKILL" in sandbox.exit_reason(-9)


def test_without_a_sandbox_it_says_so(monkeypatch):
    sandbox.probe.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap, prlimit or setpriv here
    try:
        auto = sandbox.from_environment({})
        assert not auto.enabled and "bwrap" in auto.why and "NO SANDBOX" in auto.describe()
        with pytest.raises(sandbox.SandboxUnavailable):
            sandbox.from_environment({"DIOPTRA_SANDBOX": "require"})
        ok, said = sandbox.announcement({"DIOPTRA_SANDBOX": "require"})
        assert not ok and "every job will fail" in said
    finally:
        monkeypatch.undo()
        sandbox.probe.cache_clear()


def test_switched_off_the_server_and_each_job_log_say_so(start_server, tmp_path):
    server = start_server(workers=1, env={"DIOPTRA_SANDBOX": "off"})
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("nosandbox"))["name"]
    queue = client.register_queue(unique("nosandbox"))["name"]
    job = client.submit_job(echo_workflow(tmp_path), experiment, "fail", queue=queue)
    done = client.wait_for_job(job["jobId"], timeout_s=180)
    log = client.get_job_log(job["jobId"])["log"]
    assert done["status"] == "failed" and "exited with code 3" in log
    assert "NO SANDBOX: switched off (DIOPTRA_SANDBOX=off)" in log
    assert "NO SANDBOX" in server.log()


_RUN_IN_SANDBOX = """
import subprocess, sys
from pathlib import Path
from dioptra.worker import sandbox
box = sandbox.from_environment({"DIOPTRA_SANDBOX": "require"})
job = Path(sys.argv[1])
argv = box.wrap("python -c 'import sys, dioptra; print(sys.prefix)'", job, job, job.parent, None)
done = subprocess.run(argv, capture_output=True, text=True)
print(done.returncode, done.stdout.strip(), done.stderr.strip()[-500:])
"""


# The same for a job forked from the fork server: it imports a module the server did not,
# and starts the worker's python.
_FORK_IN_SANDBOX = """
import sys
from pathlib import Path
from dioptra.worker import forks, warm
from dioptra.worker.execute import entry_point_environment
from dioptra.worker.runner import run_command
from dioptra.worker.sandbox import from_environment
root = Path(sys.argv[1])
box = from_environment({"DIOPTRA_SANDBOX": "require"})
pool = forks.ForkPool(root, box, lambda p, h: entry_point_environment(p, h, root, {}),
                      preload=["json"])
try:
    pool.prepare()
    ticket = pool.take()
    assert isinstance(ticket, forks.ForkTicket)
    project = ticket.folder / "workflow"
    project.mkdir()
    (project / "look.py").write_text(
        "import subprocess, sys, email.mime.text\\n"
        "print(subprocess.run([sys.executable, '-c', 'import sys; print(sys.prefix)'],"
        " capture_output=True, text=True).stdout.strip())\\n")
    box.give(ticket.uid, [project])
    env = entry_point_environment(ticket.folder / "plugins", ticket.folder / "home", root, {})
    out = []
    process = ticket.start(warm.plain_python("python look.py"), env, project)
    result = run_command("python look.py", project, env, 60, out.append, lambda: False,
                         process=process)
    print(result.returncode, "".join(out).strip())
finally:
    pool.close()
"""


def test_a_worker_python_under_tmp_still_runs_in_the_sandbox(tmp_path):
    """The job's private /tmp must not hide a worker whose venv lives under /tmp (a
    checkout in /tmp, as CI may make)."""
    need(sandbox.probe() is None, f"no sandbox here: {sandbox.probe()}")
    venv = tmp_path / "venv"
    assert str(venv).startswith("/tmp/"), "pytest's base temp is expected under /tmp"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The new venv sees this environment's packages, like a venv made under /tmp would.
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n"
                                    + str(Path(__file__).parents[1] / "src") + "\n"
                                    + str(Path(__file__).parents[1] / "task-plugins") + "\n")
    job = tmp_path / "work" / "job-1"
    job.mkdir(parents=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-c", _RUN_IN_SANDBOX, str(job)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"})
    code, _, rest = done.stdout.strip().partition(" ")
    assert code == "0", done.stdout + done.stderr
    assert rest.split()[0] == str(venv)
    forked = subprocess.run([str(venv / "bin" / "python"), "-c", _FORK_IN_SANDBOX,
                             str(tmp_path / "work")], capture_output=True, text=True,
                            timeout=120, env={**os.environ,
                                              "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"})
    assert forked.stdout.strip().splitlines()[-1:] == [f"0 {venv}"], \
        forked.stdout + forked.stderr
