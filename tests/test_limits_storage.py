"""Full or read-only storage is answered 507 / 503 with a clear message, and nothing is
half-written (issue 7, item 9). The object store sits on a 2 MiB tmpfs mounted in the
server's own mount namespace, so nothing on the machine is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from testbed import free_port, unique, wait_http
from workflows import ECHO_MLPROJECT, write_tar

MIB = 1 << 20


def _files(root: Path) -> list[str]:
    return sorted(str(Path(d, f).relative_to(root)) for d, _, fs in os.walk(root) for f in fs)


@pytest.fixture
def tiny_store_server(tmp_path, mlflow_uri):
    for tool in ("unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (util-linux) to mount a tiny tmpfs")
    store = tmp_path / "objects"
    store.mkdir()
    # Root may mount in a private mount namespace; others need a user namespace too.
    userns = [] if os.geteuid() == 0 else ["--map-root-user"]
    probe = subprocess.run(["unshare", *userns, "--mount", "--propagation", "private", "sh",
                            "-c", 'mount -t tmpfs -o size=2m tmpfs "$0"', str(store)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace: {probe.stderr}")
    port = free_port()
    log_path = tmp_path / "server.log"
    cmd = ["unshare", *userns, "--mount", "--propagation", "private", "sh", "-c",
           'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"', str(store),
           sys.executable, "-m", "dioptra.cli", "server", "--data-dir", str(tmp_path / "data"),
           "--port", str(port), "--storage-url", str(store), "--workers", "0",
           "--mlflow-tracking-uri", mlflow_uri, "--log-level", "warning"]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, 120, log_path)
        yield f"http://127.0.0.1:{port}", proc, store
    finally:
        proc.kill()  # no children to stop (no workers, an external MLflow): quickest
        proc.wait()


def test_full_and_read_only_storage(tiny_store_server, tmp_path: Path) -> None:
    url, proc, store = tiny_store_server

    def in_namespace(*args: str) -> list[str]:
        return ["nsenter", "--mount", "--target", str(proc.pid), *args]

    experiment = unique("exp")
    assert requests.post(f"{url}/api/v0/experiment/", json={"name": experiment}).ok
    assert requests.post(f"{url}/api/v0/queue/", json={"name": unique("q")}).ok
    queue = requests.get(f"{url}/api/v0/queue/").json()[0]["name"]

    def submit(archive: Path) -> requests.Response:
        with archive.open("rb") as fh:
            return requests.post(f"{url}/api/v0/job/", files={"workflow": ("w.tar.gz", fh)},
                                 data={"experimentName": experiment, "queue": queue,
                                       "entryPoint": "main"}, timeout=60)

    # 3 MiB that do not compress, for a store of 2 MiB.
    big = write_tar(tmp_path / "big.tar.gz",
                    {"MLproject": ECHO_MLPROJECT, "noise.bin": os.urandom(3 * MIB)})
    full = submit(big)
    assert full.status_code == 507, full.text
    assert "storage is full" in full.json()["message"]
    with (tmp_path / "pkg.py").open("wb") as fh:
        fh.write(b"# " + os.urandom(3 * MIB).hex().encode()[: 3 * MIB] + b"\n")
    archive = write_tar(tmp_path / "plugin.tar.gz",
                        {"pkg/__init__.py": "", "pkg/big.py": (tmp_path / "pkg.py").read_bytes()})
    with archive.open("rb") as fh:
        plugin = requests.post(f"{url}/api/v0/taskPlugin/",
                               files={"taskPluginFile": ("p.tar.gz", fh)},
                               data={"taskPluginName": "pkg",
                                     "collection": "dioptra_custom"}, timeout=60)
    assert plugin.status_code == 507, plugin.text
    # Nothing half-written: no object, no job, no plugin.
    listed = subprocess.run(in_namespace("find", str(store), "-type", "f"),
                            capture_output=True, text=True, check=True).stdout.split()
    assert listed == []
    assert requests.get(f"{url}/api/v0/job/").json() == []
    assert requests.get(f"{url}/api/v0/taskPlugin/dioptra_custom").json() == []
    # What fits is stored.
    small = write_tar(tmp_path / "small.tar.gz", {"MLproject": ECHO_MLPROJECT})
    assert submit(small).status_code == 200

    subprocess.run(in_namespace("mount", "-o", "remount,ro", str(store)), check=True)
    read_only = submit(small)
    assert read_only.status_code == 503, read_only.text
    assert "read-only" in read_only.json()["message"]
    assert len(requests.get(f"{url}/api/v0/job/").json()) == 1
