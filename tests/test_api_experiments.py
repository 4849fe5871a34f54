"""Experiments through the client and raw HTTP: the v0 shapes, errors and MLflow ids."""

import requests
from testbed import unique

EXPERIMENT_KEYS = ["experimentId", "createdOn", "lastModified", "name"]


def test_register_get_list_and_mlflow_id(server, client, mlflow_uri):
    name = unique("Mnist Feature")
    created = client.register_experiment(name)
    assert list(created) == EXPERIMENT_KEYS
    assert created["name"] == name.lower().replace(" ", "-")

    # The experiment id is MLflow's id for an experiment of the same name.
    import mlflow

    mlflow_experiment = mlflow.MlflowClient(mlflow_uri).get_experiment(
        str(created["experimentId"]))
    assert mlflow_experiment.name == created["name"]

    assert client.get_experiment_by_id(created["experimentId"]) == created
    # Name lookups slugify, as in the original: the registered spelling finds it.
    assert client.get_experiment_by_name(name) == created
    assert created in client.list_experiments()

    again = client.register_experiment(name)
    assert again == {"message": "Bad Request - The experiment name on the registration form "
                     "already exists. Please select another and resubmit."}


def test_experiment_errors_are_json_4xx(server, client):
    base = f"{server.url}/api/v0/experiment/"
    missing = client.get_experiment_by_id(987654)
    assert missing["message"].startswith("Not Found - The requested experiment does not exist")
    assert "Not Found" in client.get_experiment_by_name("no-such-experiment")["message"]

    empty = requests.post(base, json={})
    assert empty.status_code == 400
    assert "'name' is required" in empty.json()["message"]
    wrong_type = requests.post(base, json={"name": 5})
    assert wrong_type.status_code == 400
    assert wrong_type.json()["schema_errors"] == {"name": ["Not a valid string."]}
    extra = requests.post(base, json={"name": "x", "experimentId": 3})
    assert extra.status_code == 400 and "experimentId" in extra.json()["message"]
    not_json = requests.post(base, data="nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and "JSON" in not_json.json()["message"]
    slash = requests.post(base, json={"name": "a/b"})
    assert slash.status_code == 400 and "slash" in slash.json()["message"]
    blank = requests.post(base, json={"name": "   "})
    assert blank.status_code == 400 and "empty" in blank.json()["message"]
    no_route = requests.get(f"{server.url}/api/v0/nowhere")
    assert no_route.status_code == 404 and no_route.json()["message"].startswith("Not Found")
    bad_method = requests.patch(base)
    assert bad_method.status_code == 405 and "message" in bad_method.json()


def test_rename_delete_and_reregister(server, client):
    base = f"{server.url}/api/v0/experiment"
    first = client.register_experiment(unique("first"))
    renamed_to = unique("Renamed")
    renamed = requests.put(f"{base}/{first['experimentId']}", json={"name": renamed_to})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == renamed_to.lower()
    other = client.register_experiment(unique("other"))
    clash = requests.put(f"{base}/{first['experimentId']}", json={"name": other["name"]})
    assert clash.status_code == 400 and "already exists" in clash.json()["message"]

    deleted = requests.delete(f"{base}/name/{renamed_to}")
    assert deleted.json() == {"status": "Success", "name": [renamed_to]}
    assert requests.delete(f"{base}/name/{renamed_to}").json() == {"status": "Success",
                                                                   "name": []}
    assert "Not Found" in client.get_experiment_by_id(first["experimentId"])["message"]
    # The original could never register a deleted name again (MLflow kept it): we can.
    again = client.register_experiment(renamed_to)
    assert again["name"] == renamed_to.lower()
    assert again["experimentId"] != first["experimentId"]
    by_id = requests.delete(f"{base}/{again['experimentId']}")
    assert by_id.json() == {"status": "Success", "id": [again["experimentId"]]}
