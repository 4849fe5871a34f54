"""Queues: registration, lookups, idempotent locks, soft delete and re-registration."""

import requests
from testbed import unique

QUEUE_KEYS = ["queueId", "createdOn", "lastModified", "name"]


def test_register_get_list(server, client):
    name = unique("pytorch_cpu")
    queue = client.register_queue(name)
    assert list(queue) == QUEUE_KEYS and queue["name"] == name
    assert client.get_queue_by_id(queue["queueId"]) == queue
    assert client.get_queue_by_name(name) == queue
    assert queue in client.list_queues()
    assert client.register_queue(name)["message"].startswith(
        "Bad Request - The queue name on the registration form already exists")
    spaced = client.register_queue("Pytorch CPU " + name)
    assert spaced["name"] == "pytorch-cpu-" + name
    assert client.register_queue()["name"] == "tensorflow_cpu"  # the seed's default
    ids = [q["queueId"] for q in client.list_queues()]
    assert ids == sorted(ids)  # stable order


def test_lock_and_unlock_are_idempotent(server, client):
    name = unique("locked")
    queue = client.register_queue(name)
    assert client.lock_queue(name) == {"name": [name], "status": "Success"}
    assert client.lock_queue(name) == {"name": [name], "status": "Success"}
    assert queue not in client.list_queues()
    assert client.get_queue_by_name(name) == queue  # still visible by name and id
    assert client.unlock_queue(name) == {"name": [name], "status": "Success"}
    assert client.unlock_queue(name) == {"name": [name], "status": "Success"}
    assert queue in client.list_queues()
    by_id = f"{server.url}/api/v0/queue/{queue['queueId']}/lock"
    assert requests.put(by_id).json() == {"status": "Success", "id": [queue["queueId"]]}
    assert requests.delete(by_id).json() == {"status": "Success", "id": [queue["queueId"]]}
    assert "Not Found" in client.lock_queue(unique("nope"))["message"]
    assert requests.put(f"{server.url}/api/v0/queue/999999/lock").status_code == 404


def test_delete_rename_and_reuse_a_name(server, client):
    base = f"{server.url}/api/v0/queue"
    name = unique("q")
    queue = client.register_queue(name)
    renamed = requests.put(f"{base}/{queue['queueId']}", json={"name": name + "-2"})
    assert renamed.json()["name"] == name + "-2"
    other = client.register_queue(unique("other"))
    clash = requests.put(f"{base}/{queue['queueId']}", json={"name": other["name"]})
    assert clash.status_code == 400
    assert requests.delete(f"{base}/name/{name}-2").json() == {"status": "Success",
                                                              "name": [name + "-2"]}
    assert requests.delete(f"{base}/{queue['queueId']}").json() == {"status": "Success",
                                                                   "id": []}
    assert requests.get(f"{base}/{queue['queueId']}").status_code == 404
    # The original answered 500 here (unique index on deleted rows).
    again = client.register_queue(name + "-2")
    assert again["queueId"] > queue["queueId"]
    assert requests.post(f"{base}/", json={}).status_code == 400
    not_an_int = requests.get(f"{base}/not-an-int")
    assert not_an_int.status_code == 400 and "queueId" in not_an_int.json()["message"]
