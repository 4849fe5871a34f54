import os
import time
from pathlib import Path

import pytest

from dioptra.worker.runner import RunResult, run_command


def _run(
    command: str,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    timeout_s: float | None = 30,
    should_cancel=lambda: False,
    grace_s: float = 1.0,
    on_start=None,
) -> tuple[RunResult, str]:
    out: list[str] = []
    result = run_command(
        command,
        cwd,
        env if env is not None else dict(os.environ),
        timeout_s,
        out.append,
        should_cancel,
        on_start=on_start,
        grace_s=grace_s,
    )
    return result, "".join(out)


def _alive(pid: int) -> bool:
    """A pid counts as alive unless it is gone or a zombie waiting for pid 1 to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def _wait_dead(pids: list[int], within_s: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _read_pids(path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists():
            pids = [int(p) for p in path.read_text().split()]
            if len(pids) >= count:
                return pids
        time.sleep(0.02)
    raise AssertionError(f"{path} did not get {count} pids")


@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_codes(tmp_path: Path, code: int) -> None:
    result, _ = _run(f"exit {code}", tmp_path)
    assert result.reason == "exited"
    assert result.returncode == code


def test_killed_by_own_signal_is_an_exit(tmp_path: Path) -> None:
    result, _ = _run("kill -KILL $$", tmp_path)
    assert result.reason == "exited"
    assert result.returncode == -9


def test_output_is_merged_in_order(tmp_path: Path) -> None:
    command = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; printf tail"
    result, output = _run(command, tmp_path)
    assert result.returncode == 0
    expected = "".join(f"out{i}\nerr{i}\n" for i in range(1, 6)) + "tail"
    assert output == expected


def test_large_output_is_complete(tmp_path: Path) -> None:
    result, output = _run("seq 1 200000", tmp_path)
    assert result.returncode == 0
    assert output == "".join(f"{i}\n" for i in range(1, 200001))


def test_invalid_utf8_is_replaced_and_split_characters_survive(tmp_path: Path) -> None:
    # "é" written as its two bytes in separate writes must still decode as one character.
    command = r"printf '\xc3'; sleep 0.3; printf '\xa9 ok \xff\n'"
    result, output = _run(command, tmp_path)
    assert result.returncode == 0
    assert output == "é ok \ufffd\n"


def test_output_is_streamed_promptly(tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    start = time.monotonic()
    result = run_command(
        "echo first; sleep 1.5; echo second",
        tmp_path,
        dict(os.environ),
        None,
        lambda text: seen.append((time.monotonic() - start, text)),
        lambda: False,
    )
    assert result.returncode == 0
    first = next(t for t, text in seen if "first" in text)
    second = next(t for t, text in seen if "second" in text)
    assert first < 0.5
    assert second >= 1.4
    assert second - 1.5 < 0.5


def test_env_and_cwd_are_used(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "DIOPTRA_TEST_VALUE": "a b 'c'"}
    result, output = _run(
        'echo "$DIOPTRA_TEST_VALUE"; pwd; echo "${HOME-unset}"', tmp_path, env=env
    )
    assert result.returncode == 0
    assert output.splitlines() == ["a b 'c'", str(tmp_path), "unset"]


def test_on_start_gets_the_pid(tmp_path: Path) -> None:
    pids: list[int] = []
    result, output = _run("echo $$", tmp_path, on_start=pids.append)
    assert result.returncode == 0
    assert pids == [int(output.strip())]


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    command = f"sleep 100 & echo $! >> {pidfile}; sleep 100 & echo $! >> {pidfile}; wait"
    result, _ = _run(command, tmp_path, timeout_s=0.7)
    assert result.reason == "timeout"
    assert result.returncode is None
    assert 0.6 < result.duration_s < 5
    pids = _read_pids(pidfile, 2)
    assert _wait_dead(pids) == []


def test_sigterm_ignored_gets_sigkill(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    command = f"trap '' TERM; sleep 100 & echo $! > {pidfile}; wait"
    result, _ = _run(command, tmp_path, timeout_s=0.3, grace_s=0.5)
    assert result.reason == "timeout"
    assert result.duration_s < 5
    assert _wait_dead(_read_pids(pidfile, 1)) == []


def test_cancellation(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    start = time.monotonic()
    command = f"python3 -c 'import time; time.sleep(100)' & echo $! > {pidfile}; wait"
    result, _ = _run(command, tmp_path, should_cancel=lambda: time.monotonic() - start > 0.5)
    assert result.reason == "cancelled"
    assert result.returncode is None
    assert result.duration_s < 5
    assert _wait_dead(_read_pids(pidfile, 1)) == []


def test_background_children_do_not_outlive_a_normal_exit(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    result, output = _run(f"sleep 100 & echo $! > {pidfile}; echo done", tmp_path)
    assert result.reason == "exited"
    assert result.returncode == 0
    assert output == "done\n"
    assert result.duration_s < 5
    assert _wait_dead(_read_pids(pidfile, 1)) == []


def test_exception_in_callback_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"

    def explode() -> bool:
        if pidfile.exists() and pidfile.read_text().strip():
            raise RuntimeError("boom")
        return False

    with pytest.raises(RuntimeError, match="boom"):
        _run(f"sleep 100 & echo $! > {pidfile}; wait", tmp_path, should_cancel=explode)
    assert _wait_dead(_read_pids(pidfile, 1)) == []
