"""The web interface's rules in process: the one door (token or session cookie), the
login page, and the API extras the pages use (bad input is a 4xx naming the field)."""

from __future__ import annotations

import dataclasses
import io
import tarfile

import pytest
from fastapi.testclient import TestClient

from dioptra.dispatch.wakeup import WakeUp
from dioptra.restapi.app import create_app

TOKEN = "in-" + "k" * 30


@pytest.fixture
def guarded(bed):
    """The same testbed behind a token, as a browser without a session sees it."""
    settings = dataclasses.replace(bed.ctx.settings, api_token=TOKEN)
    ctx = dataclasses.replace(bed.ctx, settings=settings)
    with TestClient(create_app(ctx, WakeUp()), base_url="http://127.0.0.1") as browser:
        yield browser


def logged_in(browser: TestClient) -> str:
    answer = browser.post("/login", data={"token": TOKEN, "next": "/queues"},
                          follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/queues"
    cookie = answer.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=strict"):
        assert flag.lower() in cookie.lower(), cookie
    # The test client (plain http) keeps back a Secure cookie; a browser on loopback
    # sends it (tests/test_web_interface.py): hand it over as a plain one.
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    browser.cookies.clear()
    browser.cookies.set("dioptra_session", value)
    return value


def test_pages_send_a_stranger_to_the_login_page_and_scripts_get_401(guarded):
    page = guarded.get("/jobs?status=failed", headers={"accept": "text/html"},
                       follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fjobs%3Fstatus%3Dfailed"
    api = guarded.get("/api/v0/overview/jobs")
    assert api.status_code == 401 and "log in" in api.json()["message"]
    assert guarded.get("/login").status_code == 200
    assert guarded.get("/static/app.js").status_code == 200  # assets hold no data


def test_login_logout_and_the_session_cookie(guarded):
    wrong = guarded.post("/login", data={"token": "nope"})
    assert wrong.status_code == 401 and "not the token" in wrong.text
    assert "dioptra_session" not in guarded.cookies
    session = logged_in(guarded)
    assert guarded.get("/api/v0/queue/").status_code == 200
    assert guarded.get("/queues", headers={"accept": "text/html"}).status_code == 200
    # A write that carries the cookie from another site's page is refused.
    assert guarded.post("/api/v0/queue/", json={"name": "evil"},
                        headers={"origin": "http://evil.example"}).status_code == 401
    assert guarded.post("/api/v0/queue/", json={"name": "mine"},
                        headers={"origin": "http://127.0.0.1"}).status_code == 200
    assert guarded.post("/logout", headers={"origin": "http://127.0.0.1"},
                        follow_redirects=False).status_code == 303
    guarded.cookies.set("dioptra_session", session)  # replayed after logout
    assert guarded.get("/api/v0/queue/").status_code == 401
    # A bearer token still works beside the cookies.
    assert guarded.get("/api/v0/queue/",
                       headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_login_never_redirects_off_site(guarded):
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        answer = guarded.post("/login", data={"token": TOKEN, "next": target},
                              follow_redirects=False)
        assert answer.headers["location"] == "/", target


def test_without_a_token_the_interface_opens_directly(bed):
    page = bed.api.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200 and 'data-page="experiments"' in page.text
    assert "Log out" not in page.text
    assert bed.api.get("/login", follow_redirects=False).status_code == 303
    assert bed.api.get("/static/vendor/plotly.min.js").content.startswith(b"/**")
    assert "text/css" in bed.api.get("/static/vendor/pygments.css").headers["content-type"]


def test_job_summaries_filters_and_paging(bed):
    first = bed.submit("main", entryPointKwargs="-P x=2")["jobId"]
    child = bed.submit("needs", entryPointKwargs="-P run_id=abc", dependsOn=first)["jobId"]
    found = bed.api.get("/api/v0/overview/jobs").json()
    assert found["total"] == 2 and [j["jobId"] for j in found["jobs"]] == [child, first]
    assert found["jobs"][0]["experimentName"] == "exp" and found["jobs"][0]["queueName"] == "cpu"
    by_entry = bed.api.get("/api/v0/overview/jobs", params={"entryPoint": "main"}).json()
    assert [j["jobId"] for j in by_entry["jobs"]] == [first]
    by_text = bed.api.get("/api/v0/overview/jobs", params={"text": "RUN_ID=ABC"}).json()
    assert [j["jobId"] for j in by_text["jobs"]] == [child]
    children = bed.api.get("/api/v0/overview/jobs", params={"dependsOn": first}).json()
    assert [j["jobId"] for j in children["jobs"]] == [child]
    one = bed.api.get("/api/v0/overview/jobs", params={"jobId": child}).json()
    assert one["total"] == 1 and one["jobs"][0]["dependsOn"] == first
    page = bed.api.get("/api/v0/overview/jobs", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [j["jobId"] for j in page["jobs"]] == [first]
    bad = bed.api.get("/api/v0/overview/jobs", params={"status": "done"})
    assert bad.status_code == 400 and "status" in bad.json()["message"]

    stats = bed.api.get("/api/v0/overview/experiments").json()
    assert stats[0]["name"] == "exp" and sum(stats[0]["jobs"].values()) == 2
    queues = bed.api.get("/api/v0/overview/queues").json()
    assert queues[0]["name"] == "cpu" and queues[0]["queued"] == 1
    assert queues[0]["locked"] is False and queues[0]["served"] is False
    bed.api.put(f"/api/v0/queue/{queues[0]['queueId']}/lock")
    assert bed.api.get("/api/v0/overview/queues").json()[0]["locked"] is True


def test_a_workflow_archive_offers_its_entry_points(bed):
    with bed.archive.open("rb") as fh:
        answer = bed.api.post("/api/v0/workflow/entryPoints", files={"workflow": ("w.tgz", fh)})
    assert answer.status_code == 200, answer.text
    points = {ep["name"]: ep for ep in answer.json()["entryPoints"]}
    assert set(points) == {"main", "sleep", "fail", "needs"}
    assert points["main"]["parameters"][0] == {"name": "x", "type": "float", "default": "1.5",
                                               "required": False}
    assert points["needs"]["parameters"][0]["required"] is True
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    no_project = bed.api.post("/api/v0/workflow/entryPoints",
                              files={"workflow": ("w.tgz", buf.getvalue())})
    assert no_project.status_code == 400 and "MLproject" in no_project.json()["message"]
    empty = bed.api.post("/api/v0/workflow/entryPoints", files={"workflow": ("w.tgz", b"")})
    assert empty.status_code == 400 and "workflow" in empty.json()["message"]


def test_artifact_paths_stay_inside_the_run(bed):
    job_id = bed.submit()["jobId"]
    assert bed.api.get(f"/api/v0/job/{job_id}/run").status_code == 404  # no run yet
    bed.set_columns(job_id, mlflow_run_id="0" * 32)
    for path in ("../other-run/model", "/etc/passwd", "a/../../b"):
        answer = bed.api.get(f"/api/v0/job/{job_id}/artifact", params={"path": path})
        assert answer.status_code == 400 and "path" in answer.json()["message"], path
        listing = bed.api.get(f"/api/v0/job/{job_id}/artifacts", params={"path": path})
        assert listing.status_code == 400, path
    assert bed.api.get("/api/v0/job/nope/artifacts").status_code == 404


def test_plugin_sources_are_highlighted_with_their_functions(bed):
    answer = bed.api.get("/api/v0/taskPlugin/dioptra_builtins/attacks/source",
                         params={"module": "fgm.py"})
    assert answer.status_code == 200
    body = answer.json()
    assert "def " in body["source"] and 'class="code"' in body["html"]
    assert body["functions"]  # the @pyplugs.register functions, read without importing
    missing = bed.api.get("/api/v0/taskPlugin/dioptra_builtins/attacks/source",
                          params={"module": "../../../etc/passwd"})
    assert missing.status_code == 404
    wrong = bed.api.get("/api/v0/taskPlugin/elsewhere/attacks/source", params={"module": "x"})
    assert wrong.status_code == 400 and "collection" in wrong.json()["message"]
