"""The `dioptra` command explains itself and refuses bad invocations clearly."""

import subprocess
import sys


def dioptra(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dioptra.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_help_texts():
    top = dioptra("--help")
    assert top.returncode == 0
    assert "server" in top.stdout and "worker" in top.stdout
    server = dioptra("server", "--help")
    assert server.returncode == 0
    for flag in ("--data-dir", "--database-uri", "--redis-url", "--storage-url",
                 "--mlflow-tracking-uri", "--workers", "--token-file", "--insecure"):
        assert flag in server.stdout
    assert "DIOPTRA_DATA_DIR" in server.stdout
    worker = dioptra("worker", "--help")
    assert worker.returncode == 0
    assert "--server" in worker.stdout and "--queue" in worker.stdout


def test_bad_invocations():
    no_command = dioptra()
    assert no_command.returncode == 2 and "COMMAND" in no_command.stderr
    no_server = dioptra("worker")
    assert no_server.returncode == 2 and "--server" in no_server.stderr
    rq_without_queue = dioptra("worker", "--server", "http://127.0.0.1:9",
                               "--redis-url", "redis://127.0.0.1:6379/15")
    assert rq_without_queue.returncode == 2
    assert "--queue" in rq_without_queue.stderr



def test_embedded_workers_log_at_the_servers_level(start_server):
    import time

    from dioptra.client import DioptraClient

    server = start_server("--log-level", "warning", workers=1,
                          env={"DIOPTRA_WARM_MODULES": "json"})
    client = DioptraClient(server.url)
    deadline = time.monotonic() + 60
    while not client.list_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.list_workers(), "the embedded worker never reported"
    server.stop()
    # A worker at INFO says at least "jobs: sandbox ..." and "pulling jobs ..." at start.
    assert " INFO " not in server.log(), server.log()


def test_json_logs_are_one_object_per_line(start_server):
    import json

    server = start_server("--log-format", "json", "--log-level", "info")
    server.stop()
    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert any("startup complete" in e["message"] for e in entries), server.log()
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)


def test_log_level_flag_wins_only_when_given(monkeypatch):
    from dioptra.cli import build_parser, server_settings

    monkeypatch.setenv("DIOPTRA_LOG_LEVEL", "DEBUG")
    assert server_settings(build_parser().parse_args(["server"])).log_level == "debug"
    flagged = build_parser().parse_args(["server", "--log-level", "error"])
    assert server_settings(flagged).log_level == "error"
    monkeypatch.delenv("DIOPTRA_LOG_LEVEL")
    assert server_settings(build_parser().parse_args(["server"])).log_level == "info"


def test_both_worker_commands_take_the_same_options(monkeypatch, tmp_path):
    from dioptra.cli import build_parser
    from dioptra.worker import main as worker_main

    top = build_parser()
    sub = top._subparsers._group_actions[0].choices["worker"]  # `dioptra worker`
    direct = worker_main.build_parser()  # `python -m dioptra.worker`

    def options(parser):
        return {flag for action in parser._actions for flag in action.option_strings}

    assert options(sub) == options(direct)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    monkeypatch.setenv("DIOPTRA_LOG_LEVEL", "warning")
    argv = ["--server", "http://h:5000", "--queue", "a", "--queue", "b",
            "--token-file", str(token_file), "--work-dir", str(tmp_path), "--once"]
    ours = worker_main.resolve(top.parse_args(["worker", *argv]), sub)
    theirs = worker_main.resolve(direct.parse_args(argv), direct)
    del ours.func, ours.command
    assert vars(ours) == vars(theirs)
    assert theirs.token == "s3cret" and theirs.queues == ["a", "b"]
    assert theirs.log_level == "warning"  # from DIOPTRA_LOG_LEVEL: no flag given
    flagged = worker_main.resolve(direct.parse_args([*argv, "--log-level", "DEBUG"]), direct)
    assert flagged.log_level == "debug"
