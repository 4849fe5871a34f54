"""A server on the S3 backend (`--storage-url s3`) against a real S3 server (rclone):
plugins and workflow archives land in the `plugins` and `workflow` buckets under the
v0 key layout, and deleting a plugin removes its objects."""

from __future__ import annotations

import io
import re
import tarfile

import boto3
import pytest
import requests
from botocore.config import Config
from s3_server import S3Server, s3_server_or_skip
from testbed import unique
from workflows import echo_workflow, plugin_archive

from dioptra.client import DioptraClient

pytestmark = pytest.mark.s3

PLUGIN_MODULES = ["__init__.py", "sub/helper.py", "tasks.py"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> S3Server:
    with s3_server_or_skip(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def bucket_client(s3):
    return boto3.client(
        "s3", endpoint_url=s3.endpoint_url, aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key, region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def keys(bucket_client, bucket: str, prefix: str = "") -> list[str]:
    try:
        pages = bucket_client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
    except bucket_client.exceptions.NoSuchBucket:
        return []


def read(bucket_client, bucket: str, key: str) -> bytes:
    return bucket_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_plugins_and_workflows_live_in_s3(start_server, s3, bucket_client, tmp_path):
    server = start_server("--storage-url", "s3", env=s3.env())
    client = DioptraClient(server.url)

    name = "s3_plugin"
    plugin = client.upload_custom_plugin_package(name, plugin_archive(tmp_path, name))
    assert plugin == {"taskPluginName": name, "collection": "dioptra_custom",
                      "modules": PLUGIN_MODULES}
    prefix = f"dioptra_custom/{name}/"
    assert keys(bucket_client, "plugins", prefix) == [prefix + m for m in PLUGIN_MODULES]
    assert read(bucket_client, "plugins", prefix + "sub/helper.py") == b"VALUE = 42\n"
    assert b"pyplugs.register" in read(bucket_client, "plugins", prefix + "tasks.py")
    assert client.get_custom_task_plugin(name) == plugin
    assert plugin in client.list_custom_task_plugins()

    # Workers download the packed plugin from the server, which reads it from S3.
    packed = requests.get(f"{server.url}/api/v0/worker/plugins/{name}", timeout=30)
    assert packed.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(packed.content)) as tar:
        assert sorted(m.name for m in tar.getmembers() if m.isfile()) == PLUGIN_MODULES

    # A second package whose name starts with the first must survive the first's deletion.
    sibling = name + "_extra"
    client.upload_custom_plugin_package(sibling, plugin_archive(tmp_path, sibling))

    experiment = client.register_experiment(unique("s3-exp"))
    queue = client.register_queue(unique("s3-q"))
    archive = echo_workflow(tmp_path)
    job = client.submit_job(archive, experiment["name"], "main", "-P x=1",
                            queue=queue["name"], timeout="1h")
    found = re.fullmatch(r"s3://workflow/([0-9a-f]{32})/workflows\.tar\.gz", job["workflowUri"])
    assert found, job
    key = f"{found.group(1)}/workflows.tar.gz"
    assert key in keys(bucket_client, "workflow")
    assert read(bucket_client, "workflow", key) == archive.read_bytes()
    served = requests.get(f"{server.url}/api/v0/worker/jobs/{job['jobId']}/workflow", timeout=30)
    assert served.content == archive.read_bytes()

    # Nothing went to the local object store in the data directory.
    local = server.data_dir / "objects"
    assert not local.exists() or not any(p.is_file() for p in local.rglob("*"))

    assert client.delete_custom_task_plugin(name)["status"] == "Success"
    assert keys(bucket_client, "plugins", prefix) == []
    assert not [k for k in keys(bucket_client, "plugins") if f"/{name}/" in k
                or k.endswith(f"/{name}.tar.gz")]
    assert "Not Found" in client.get_custom_task_plugin(name)["message"]
    assert requests.get(f"{server.url}/api/v0/worker/plugins/{name}",
                        timeout=30).status_code == 404
    assert keys(bucket_client, "plugins", f"dioptra_custom/{sibling}/") == [
        f"dioptra_custom/{sibling}/{m}" for m in PLUGIN_MODULES]
    assert [p["taskPluginName"] for p in client.list_custom_task_plugins()] == [sibling]
    # The job's archive is untouched by plugin deletion.
    assert read(bucket_client, "workflow", key) == archive.read_bytes()


def test_a_restarted_server_reads_its_objects_back_from_s3(start_server, s3, tmp_path):
    server = start_server("--storage-url", "s3", env=s3.env())
    client = DioptraClient(server.url)
    name = "s3_" + unique("p").replace("-", "_")
    plugin = client.upload_custom_plugin_package(name, plugin_archive(tmp_path, name))
    server.restart()
    assert client.get_custom_task_plugin(name) == plugin
    assert client.delete_custom_task_plugin(name)["status"] == "Success"
    assert "Not Found" in client.get_custom_task_plugin(name)["message"]
