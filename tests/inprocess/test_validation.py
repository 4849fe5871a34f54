"""Bad input is a 400 naming the field, never a 500: the rules, checked in-process."""

import pytest


@pytest.mark.parametrize("path", ["/api/v0/queue/not-an-int", "/api/v0/experiment/x1"])
def test_non_integer_id_in_the_path(bed, path):
    answer = bed.api.get(path)
    assert answer.status_code == 400, answer.text
    assert "Id" in answer.json()["message"]


def test_submission_refusals_name_the_field(bed):
    cases = {
        "timeout": {"timeout": "abc"},
        "dependsOn": {"dependsOn": "not-a-uuid"},
        "entry point": {"entryPoint": "trian"},
        "x": {"entryPointKwargs": "-P x=abc"},
        "run_id": {"entryPoint": "needs"},
    }
    for named, form in cases.items():
        data = {"experimentName": "exp", "queue": "cpu", "entryPoint": "main", **form}
        with bed.archive.open("rb") as fh:
            answer = bed.api.post("/api/v0/job/", data=data,
                                  files={"workflow": ("w.tar.gz", fh)})
        assert answer.status_code == 400, (named, answer.text)
        assert named in answer.json()["message"], (named, answer.text)
    assert bed.api.get("/api/v0/job/").json() == []
    assert bed.dispatcher.ready == []


def test_job_list_filter_refuses_an_unknown_status(bed):
    answer = bed.api.get("/api/v0/job/", params={"status": "running"})
    assert answer.status_code == 400 and "status must be one of" in answer.json()["message"]
