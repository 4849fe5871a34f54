"""How DioptraClient builds its URLs (reference §5.1-5.2): endpoint properties, the
DIOPTRA_RESTAPI_URI fallback, the KeyError without an address, the exact HTTP call of
every method (seen by a recording HTTP server), and an address ending in '/' against a
real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from testbed import unique
from workflows import echo_workflow, plugin_archive

from dioptra.client import DioptraClient


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch):
    for name in ("DIOPTRA_RESTAPI_URI", "DIOPTRA_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


# --- endpoint properties ------------------------------------------------------------------


def test_endpoint_properties():
    client = DioptraClient("http://h:5000")
    assert client.experiment_endpoint == "http://h:5000/api/v0/experiment/"
    assert client.job_endpoint == "http://h:5000/api/v0/job/"
    assert client.queue_endpoint == "http://h:5000/api/v0/queue/"
    assert client.task_plugin_endpoint == "http://h:5000/api/v0/taskPlugin/"
    assert client.task_plugin_builtins_endpoint == (
        "http://h:5000/api/v0/taskPlugin/dioptra_builtins")
    assert client.task_plugin_custom_endpoint == "http://h:5000/api/v0/taskPlugin/dioptra_custom"


def test_address_forms():
    assert DioptraClient("http://h:5000/prefix").queue_endpoint == (
        "http://h:5000/prefix/api/v0/queue/")
    assert DioptraClient("https://h").job_endpoint == "https://h/api/v0/job/"
    assert DioptraClient("http://h:5000", api_version="v1").queue_endpoint == (
        "http://h:5000/api/v1/queue/")
    # No trailing-slash normalisation, as in the original: the path gets a double slash.
    assert DioptraClient("http://h:5000/").queue_endpoint == "http://h:5000//api/v0/queue/"


def test_address_from_the_environment(monkeypatch):
    monkeypatch.setenv("DIOPTRA_RESTAPI_URI", "http://from-env:8080")
    assert DioptraClient().experiment_endpoint == "http://from-env:8080/api/v0/experiment/"
    assert DioptraClient(None).queue_endpoint == "http://from-env:8080/api/v0/queue/"
    assert DioptraClient("").job_endpoint == "http://from-env:8080/api/v0/job/"  # falsy
    assert DioptraClient(api_version="v1").job_endpoint == "http://from-env:8080/api/v1/job/"
    # An explicit address wins over the variable.
    assert DioptraClient("http://given:1").job_endpoint == "http://given:1/api/v0/job/"


def test_no_address_anywhere_is_a_key_error():
    with pytest.raises(KeyError) as missing:
        DioptraClient()
    assert "DIOPTRA_RESTAPI_URI" in str(missing.value)
    with pytest.raises(KeyError, match="DIOPTRA_RESTAPI_URI"):
        DioptraClient("")


# --- the HTTP call of every method ------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with JSON `{}` and records what was asked."""

    seen: list[dict] = []

    def _record(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({"method": self.command, "path": self.path,
                          "content_type": self.headers.get("content-type", ""),
                          "authorization": self.headers.get("authorization"), "body": body})
        payload = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _record

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict]]]:
    seen: list[dict] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def form_fields(record: dict) -> dict[str, str | tuple[str, bytes]]:
    """The parts of a multipart/form-data body: text, or (filename, bytes) for files."""
    head = f"content-type: {record['content_type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + record["body"])
    fields: dict[str, str | tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        data = part.get_payload(decode=True)
        fields[name] = (filename, data) if filename else data.decode()
    return fields


def test_every_method_calls_the_v0_route(recorder, tmp_path):
    address, seen = recorder
    client = DioptraClient(address)
    calls = [
        (lambda: client.delete_custom_task_plugin("evaluation"),
         "DELETE", "/api/v0/taskPlugin/dioptra_custom/evaluation"),
        (lambda: client.get_experiment_by_id(10), "GET", "/api/v0/experiment/10"),
        (lambda: client.get_experiment_by_name("mnist"), "GET", "/api/v0/experiment/name/mnist"),
        (lambda: client.get_job_by_id("4eb2305e-57c3-4867-a59f-1a1ecd2033d4"),
         "GET", "/api/v0/job/4eb2305e-57c3-4867-a59f-1a1ecd2033d4"),
        (lambda: client.get_queue_by_id(1), "GET", "/api/v0/queue/1"),
        (lambda: client.get_queue_by_name("tensorflow_cpu"),
         "GET", "/api/v0/queue/name/tensorflow_cpu"),
        (lambda: client.get_builtin_task_plugin("attacks"),
         "GET", "/api/v0/taskPlugin/dioptra_builtins/attacks"),
        (lambda: client.get_custom_task_plugin("evaluation"),
         "GET", "/api/v0/taskPlugin/dioptra_custom/evaluation"),
        (client.list_experiments, "GET", "/api/v0/experiment/"),
        (client.list_jobs, "GET", "/api/v0/job/"),
        (client.list_queues, "GET", "/api/v0/queue/"),
        (client.list_all_task_plugins, "GET", "/api/v0/taskPlugin/"),
        (client.list_builtin_task_plugins, "GET", "/api/v0/taskPlugin/dioptra_builtins"),
        (client.list_custom_task_plugins, "GET", "/api/v0/taskPlugin/dioptra_custom"),
        (lambda: client.lock_queue("tensorflow_cpu"),
         "PUT", "/api/v0/queue/name/tensorflow_cpu/lock"),
        (lambda: client.unlock_queue("tensorflow_cpu"),
         "DELETE", "/api/v0/queue/name/tensorflow_cpu/lock"),
        (lambda: client.register_experiment("mnist"), "POST", "/api/v0/experiment/"),
        (client.register_queue, "POST", "/api/v0/queue/"),
    ]
    for call, method, path in calls:
        seen.clear()
        assert call() == {}
        assert [(r["method"], r["path"]) for r in seen] == [(method, path)]
        assert seen[0]["authorization"] is None

    seen.clear()
    client.register_experiment("mnist")
    client.register_queue()
    client.register_queue("pytorch_gpu")
    assert [json.loads(r["body"]) for r in seen] == [
        {"name": "mnist"}, {"name": "tensorflow_cpu"}, {"name": "pytorch_gpu"}]
    assert all(r["content_type"] == "application/json" for r in seen)
    seen.clear()
    client.lock_queue("q")
    assert seen[0]["body"] == b""

    # Names go into the path unescaped by the client; requests percent-encodes spaces.
    seen.clear()
    client.get_queue_by_name("Pytorch CPU")
    client.get_experiment_by_name("my experiment")
    assert [r["path"] for r in seen] == ["/api/v0/queue/name/Pytorch%20CPU",
                                         "/api/v0/experiment/name/my%20experiment"]


def test_uploads_are_multipart_forms(recorder, tmp_path):
    address, seen = recorder
    client = DioptraClient(address)
    archive = echo_workflow(tmp_path)

    client.submit_job(archive, "mnist", "train")
    client.submit_job(str(archive), "mnist", "train", "-P epochs=3", "abc-123",
                      queue="pytorch_cpu", timeout="1h")
    defaults, full = seen
    assert (defaults["method"], defaults["path"]) == ("POST", "/api/v0/job/")
    assert defaults["content_type"].startswith("multipart/form-data")
    workflow = ("workflows.tar.gz", archive.read_bytes())
    assert form_fields(defaults) == {"experimentName": "mnist", "queue": "tensorflow_cpu",
                                     "timeout": "24h", "entryPoint": "train",
                                     "workflow": workflow}
    assert form_fields(full) == {"experimentName": "mnist", "queue": "pytorch_cpu",
                                 "timeout": "1h", "entryPoint": "train",
                                 "entryPointKwargs": "-P epochs=3", "dependsOn": "abc-123",
                                 "workflow": workflow}

    seen.clear()
    plugin = plugin_archive(tmp_path, "evaluation")
    client.upload_custom_plugin_package("evaluation", plugin)
    (upload,) = seen
    assert (upload["method"], upload["path"]) == ("POST", "/api/v0/taskPlugin/")
    assert form_fields(upload) == {"taskPluginName": "evaluation",
                                   "collection": "dioptra_custom",
                                   "taskPluginFile": (plugin.name, plugin.read_bytes())}


def test_the_token_header_comes_from_the_environment(recorder, monkeypatch):
    address, seen = recorder
    monkeypatch.setenv("DIOPTRA_API_TOKEN", "tok-123")
    DioptraClient(address).list_queues()
    assert seen[-1]["authorization"] == "Bearer tok-123"


# --- a trailing slash against a real server ---------------------------------------------------


def test_an_address_ending_in_a_slash_works(start_server, tmp_path):
    """The client asks for //api/v0/... (see test_address_forms); the server answers."""
    server = start_server()
    if requests.get(f"{server.url}//api/v0/queue/", timeout=30).status_code == 404:
        pytest.xfail("the server does not route //api/v0/... (the original's Werkzeug did): "
                     "repeated slashes in the path should be collapsed (see the report)")
    client = DioptraClient(server.url + "/")
    queue = client.register_queue(unique("slash-q"))
    assert queue["name"].startswith("slash-q"), queue
    assert client.get_queue_by_id(queue["queueId"]) == queue
    assert client.get_queue_by_name(queue["name"]) == queue
    assert queue in client.list_queues()
    assert client.lock_queue(queue["name"])["status"] == "Success"
    assert client.unlock_queue(queue["name"])["status"] == "Success"
    experiment = client.register_experiment(unique("slash-exp"))
    assert client.get_experiment_by_name(experiment["name"]) == experiment
    assert client.get_experiment_by_id(experiment["experimentId"]) == experiment
    assert experiment in client.list_experiments()
    job = client.submit_job(echo_workflow(tmp_path), experiment["name"], "main",
                            queue=queue["name"])
    assert job["status"] == "queued", job
    assert client.get_job_by_id(job["jobId"]) == job
    assert job in client.list_jobs()
    plugin = client.upload_custom_plugin_package("slash_plugin",
                                                 plugin_archive(tmp_path, "slash_plugin"))
    assert plugin["taskPluginName"] == "slash_plugin", plugin
    assert plugin in client.list_custom_task_plugins()
    assert isinstance(client.list_builtin_task_plugins(), list)
    assert client.delete_custom_task_plugin("slash_plugin")["status"] == "Success"
    # The same server through the plain address sees the same data.
    assert DioptraClient(server.url).get_job_by_id(job["jobId"]) == job
