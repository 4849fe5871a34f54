"""Task plugins: builtins listed from the package, custom uploads validated and exact."""

import io
import tarfile

import requests
from workflows import plugin_archive, write_tar

from dioptra.storage import open_store

ORIGINAL_NINE = {"artifacts", "attacks", "backend_configs", "data", "estimators", "metrics",
                 "random", "registry", "tracking"}


def test_builtins(server, client):
    builtins = client.list_builtin_task_plugins()
    names = {p["taskPluginName"] for p in builtins}
    assert ORIGINAL_NINE | {"defenses"} <= names
    assert all(p["collection"] == "dioptra_builtins" for p in builtins)
    attacks = client.get_builtin_task_plugin("attacks")
    assert list(attacks) == ["taskPluginName", "collection", "modules"]
    assert "fgm.py" in attacks["modules"] and "__init__.py" in attacks["modules"]
    assert "Not Found" in client.get_builtin_task_plugin("nope")["message"]
    delete = requests.delete(f"{server.url}/api/v0/taskPlugin/dioptra_builtins/attacks")
    assert delete.status_code == 405


def test_upload_get_list_delete_exactly(server, client, tmp_path):
    assert client.list_custom_task_plugins() == []
    uploaded = client.upload_custom_plugin_package(
        "my_plugin", plugin_archive(tmp_path, "my_plugin"))
    assert uploaded == {"taskPluginName": "my_plugin", "collection": "dioptra_custom",
                        "modules": ["__init__.py", "sub/helper.py", "tasks.py"]}
    extra = client.upload_custom_plugin_package(
        "my_plugin_extra", plugin_archive(tmp_path, "my_plugin_extra", zip_=True))
    assert extra["modules"] == ["__init__.py", "sub/helper.py", "tasks.py"]
    assert client.get_custom_task_plugin("my_plugin") == uploaded
    assert client.list_custom_task_plugins() == [uploaded, extra]
    everything = client.list_all_task_plugins()
    assert everything[-2:] == [uploaded, extra]
    assert everything[0]["collection"] == "dioptra_builtins"

    conflict = client.upload_custom_plugin_package(
        "my_plugin", plugin_archive(tmp_path, "my_plugin"))
    assert conflict["message"].startswith("Bad Request - The names of one or more")

    # Deleting my_plugin deletes exactly my_plugin (the original deleted both).
    assert client.delete_custom_task_plugin("my_plugin") == {
        "collection": "dioptra_custom", "status": "Success", "taskPluginName": ["my_plugin"]}
    assert client.list_custom_task_plugins() == [extra]
    assert client.delete_custom_task_plugin("my_plugin") == {
        "collection": "dioptra_custom", "status": "Success", "taskPluginName": []}
    assert "Not Found" in client.get_custom_task_plugin("my_plugin")["message"]


def test_bad_uploads_are_400_and_leave_nothing(server, client, tmp_path):
    url = f"{server.url}/api/v0/taskPlugin/"
    good = plugin_archive(tmp_path, "pkg").read_bytes()

    def post(data, file=("p.tar.gz", good)):
        files = {"taskPluginFile": file} if file else None
        return requests.post(url, data=data, files=files)

    cases = {
        "bad name": post({"taskPluginName": "../evil", "collection": "dioptra_custom"}),
        "digit first": post({"taskPluginName": "1abc", "collection": "dioptra_custom"}),
        "builtins": post({"taskPluginName": "pkg", "collection": "dioptra_builtins"}),
        "other": post({"taskPluginName": "pkg", "collection": "othercoll"}),
        "no name": post({"collection": "dioptra_custom"}),
        "no collection": post({"taskPluginName": "pkg"}),
        "no file": post({"taskPluginName": "pkg", "collection": "dioptra_custom"}, None),
        "not an archive": post({"taskPluginName": "pkg", "collection": "dioptra_custom"},
                               ("p.tar.gz", b"this is not an archive")),
        "empty": post({"taskPluginName": "pkg", "collection": "dioptra_custom"},
                      ("p.tar.gz", b"")),
    }
    escape = io.BytesIO()
    with tarfile.open(fileobj=escape, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../outside.py")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"x=1\n"))
    cases["traversal"] = post({"taskPluginName": "pkg", "collection": "dioptra_custom"},
                              ("p.tar.gz", escape.getvalue()))
    no_python = write_tar(tmp_path / "np.tar.gz", {"README.md": "hi"}).read_bytes()
    cases["no python"] = post({"taskPluginName": "pkg", "collection": "dioptra_custom"},
                              ("np.tar.gz", no_python))
    for case, response in cases.items():
        assert response.status_code == 400, (case, response.text)
        assert response.json()["message"], case
    assert "escapes" in cases["traversal"].json()["message"]
    assert "'taskPluginName' is required" in cases["no name"].json()["message"]
    assert "taskPluginFile" in cases["no file"].json()["message"]
    assert client.list_custom_task_plugins() == []
    store = open_store(str(server.data_dir / "objects"))
    assert store.list_keys("s3://plugins/dioptra_custom") == []
