"""The served OpenAPI document is valid and describes every v0 route; /docs is HTML.

Needs openapi-spec-validator (a dev dependency).
"""

from __future__ import annotations

import pytest
import requests

openapi_spec_validator = pytest.importorskip("openapi_spec_validator")

# Every path and method of the reference v0 API that the client and the examples use
# (§3 of the reference). Not listed: the reference's login/user routes (replaced here by
# bearer tokens) and POST /api/v0/job/newTaskEngine (not used by the v0 client).
V0_ROUTES = {
    "/api/v0/experiment/": {"get", "post"},
    "/api/v0/experiment/{experimentId}": {"get", "put", "delete"},
    "/api/v0/experiment/name/{experimentName}": {"get", "delete"},
    "/api/v0/queue/": {"get", "post"},
    "/api/v0/queue/{queueId}": {"get", "put", "delete"},
    "/api/v0/queue/{queueId}/lock": {"put", "delete"},
    "/api/v0/queue/name/{queueName}": {"get", "delete"},
    "/api/v0/queue/name/{queueName}/lock": {"put", "delete"},
    "/api/v0/job/": {"get", "post"},
    "/api/v0/job/{jobId}": {"get", "put"},
    "/api/v0/taskPlugin/": {"get", "post"},
    "/api/v0/taskPlugin/dioptra_builtins": {"get"},
    "/api/v0/taskPlugin/dioptra_builtins/{taskPluginName}": {"get"},
    "/api/v0/taskPlugin/dioptra_custom": {"get"},
    "/api/v0/taskPlugin/dioptra_custom/{taskPluginName}": {"get", "delete"},
}
INTEGER_PARAMETERS = {"experimentId", "queueId"}
STRING_PARAMETERS = {"experimentName", "queueName", "jobId", "taskPluginName"}
MULTIPART_FIELDS = {
    "/api/v0/job/": {"experimentName", "queue", "entryPoint", "entryPointKwargs",
                     "dependsOn", "timeout", "workflow"},
    "/api/v0/taskPlugin/": {"taskPluginName", "collection", "taskPluginFile"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, mlflow_uri):
    """One server for the module: this file only reads its documentation."""
    from testbed import ServerProcess, free_port, running

    with running(ServerProcess(tmp_path_factory.mktemp("openapi") / "data", free_port(),
                               ["--mlflow-tracking-uri", mlflow_uri, "--workers", "0"])
                 ) as server:
        yield server


@pytest.fixture(scope="module")
def spec(served) -> dict:
    answer = requests.get(f"{served.url}/openapi.json", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    return answer.json()


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_the_document_is_valid_openapi(spec):
    openapi_spec_validator.validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Dioptra REST API"
    operation_ids = [op["operationId"] for item in spec["paths"].values()
                     for method, op in item.items() if method in HTTP_METHODS]
    assert len(operation_ids) == len(set(operation_ids))


def test_every_v0_route_is_documented(spec):
    paths = spec["paths"]
    missing = {path: methods - set(paths.get(path, {})) for path, methods in V0_ROUTES.items()}
    assert {p: m for p, m in missing.items() if m} == {}
    for path, methods in V0_ROUTES.items():
        for method in methods:
            operation = paths[path][method]
            assert operation.get("summary") or operation.get("description"), (method, path)
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":
                    continue
                kind = resolve(spec, parameter["schema"]).get("type")
                if parameter["name"] in INTEGER_PARAMETERS:
                    assert kind == "integer", (method, path, parameter)
                elif parameter["name"] in STRING_PARAMETERS:
                    assert kind == "string", (method, path, parameter)
            path_names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert path_names == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}


def test_uploads_are_documented_as_multipart_forms(spec):
    for path, fields in MULTIPART_FIELDS.items():
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert list(content) == ["multipart/form-data"], path
        schema = resolve(spec, content["multipart/form-data"]["schema"])
        assert set(schema["properties"]) == fields, path
    for path in ("/api/v0/experiment/", "/api/v0/queue/"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        schema = resolve(spec, content["application/json"]["schema"])
        assert "name" in schema["properties"] and "name" in schema.get("required", [])


def test_error_answers_are_documented_with_the_message_shape(spec):
    """Every operation documents the errors it can answer, never FastAPI's 422 (this
    server answers 400), each with the {"message"} schema."""
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    message = spec["components"]["schemas"]["Message"]
    assert message["properties"]["message"]["type"] == "string"
    assert message["required"] == ["message"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            expected = {"500"}
            if operation.get("parameters") or "requestBody" in operation:
                expected.add("400")
            if "{" in path:
                expected.add("404")
            if "requestBody" in operation:
                expected |= {"408", "413"}
            if method != "get":
                expected |= {"503", "507"}
            assert expected <= set(responses), (method, path, sorted(responses))
            for code, response in responses.items():
                if code >= "400":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Message"}, (method, path)
    paths = spec["paths"]
    assert {"403", "404", "507"} <= set(paths["/api/v0/job/"]["post"]["responses"])
    assert "403" in paths["/api/v0/worker/heartbeat"]["post"]["responses"]
    for route in ("report", "heartbeat", "log"):
        assert "409" in paths[f"/api/v0/worker/jobs/{{jobId}}/{route}"]["post"]["responses"]
    claim = paths["/api/v0/worker/claim"]["post"]["responses"]
    assert "204" in claim and "jobId" in resolve(
        spec, claim["200"]["content"]["application/json"]["schema"])["properties"]


def test_binary_downloads_and_the_raw_log_body_are_documented_as_such(spec):
    paths = spec["paths"]
    workflow = paths["/api/v0/worker/jobs/{jobId}/workflow"]["get"]["responses"]["200"]
    plugin = paths["/api/v0/worker/plugins/{name}"]["get"]["responses"]["200"]
    for answer, media in ((workflow, "application/octet-stream"), (plugin, "application/gzip")):
        assert list(answer["content"]) == [media]
        assert answer["content"][media]["schema"] == {"type": "string", "format": "binary"}
    log = paths["/api/v0/worker/jobs/{jobId}/log"]["post"]
    assert list(log["requestBody"]["content"]) == ["text/plain"]
    assert any(p["name"] == "X-Dioptra-Worker-Id" and p["in"] == "header"
               for p in log["parameters"])


def test_405_names_every_method_of_the_path(served):
    for path, allowed in (("/api/v0/experiment/", "GET, POST"),
                          ("/api/v0/queue/name/x/lock", "DELETE, PUT")):
        answer = requests.patch(served.url + path, timeout=30)
        assert answer.status_code == 405
        assert answer.headers["allow"] == allowed
        assert answer.json() == {"message": "The method is not allowed for the requested URL."}


def test_docs_page_is_html(served):
    answer = requests.get(f"{served.url}/docs", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "<html" in page.lower() and "swagger" in page.lower()
    assert "/openapi.json" in page
    # The root is the web interface, which links to the docs.
    root = requests.get(served.url + "/", timeout=30, allow_redirects=False)
    assert root.status_code == 200 and 'href="/docs"' in root.text
