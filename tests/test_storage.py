"""The object store contract, run against LocalStore and against S3Store on a real S3
server (rclone serve s3)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import S3Server, s3_server_or_skip

from dioptra.storage import (
    LocalStore,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    open_store,
    parse_uri,
)

# Small pages so the listing tests cross several continuation tokens on S3.
PAGE_SIZE = 2


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server_or_skip(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    server: S3Server = request.getfixturevalue("s3_server")
    return S3Store(server.endpoint_url, server.access_key, server.secret_key, page_size=PAGE_SIZE)


@pytest.fixture
def bucket() -> str:
    # A fresh bucket per test keeps tests independent on the shared S3 server.
    return f"test-{uuid.uuid4().hex[:16]}"


def fill(store: ObjectStore, bucket: str, keys: list[str]) -> None:
    for key in keys:
        store.put_bytes(f"s3://{bucket}/{key}", f"data of {key}".encode())


# parse_uri ----------------------------------------------------------------------------
def test_parse_uri_splits_bucket_and_key() -> None:
    assert parse_uri("s3://my-bucket/a/b/c.txt") == ("my-bucket", "a/b/c.txt")
    assert parse_uri("s3://my.bucket.1") == ("my.bucket.1", "")
    assert parse_uri("s3://abc/") == ("abc", "")


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("http://bucket/key", "is not an object URI"),
        ("/local/path", "is not an object URI"),
        ("bucket/key", "is not an object URI"),
        ("s3://", "has no bucket name"),
        ("s3:///key", "has no bucket name"),
        ("s3://ab/key", "3 to 63 characters"),
        ("s3://" + "a" * 64 + "/key", "3 to 63 characters"),
        ("s3://My_Bucket/key", "lowercase letters"),
        ("s3://-bucket/key", "start and end with a letter or digit"),
        ("s3://bucket./key", "start and end with a letter or digit"),
        ("s3://a..b/key", "dots may not be doubled"),
        ("s3://192.168.1.1/key", "IP address"),
    ],
)
def test_parse_uri_rejects_bad_uris(uri: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_uri(uri)


# Reading and writing -----------------------------------------------------------------
def test_put_and_get_bytes(store: ObjectStore, bucket: str) -> None:
    uri = f"s3://{bucket}/dir/sub/object.bin"
    payload = bytes(range(256)) * 10
    store.put_bytes(uri, payload)  # the bucket does not exist yet: created on demand
    assert store.get_bytes(uri) == payload
    assert store.exists(uri)


def test_put_replaces_existing_object(store: ObjectStore, bucket: str) -> None:
    uri = f"s3://{bucket}/k"
    store.put_bytes(uri, b"first version, longer")
    store.put_bytes(uri, b"second")
    assert store.get_bytes(uri) == b"second"


def test_empty_object(store: ObjectStore, bucket: str) -> None:
    uri = f"s3://{bucket}/empty"
    store.put_bytes(uri, b"")
    assert store.exists(uri)
    assert store.get_bytes(uri) == b""


def test_put_file_and_download(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    uri = f"s3://{bucket}/files/name with spaces.bin"
    store.put_file(uri, src)
    dest = tmp_path / "out" / "nested" / "copy.bin"  # parents do not exist yet
    store.download(uri, dest)
    assert dest.read_bytes() == src.read_bytes()
    # No temporary files are left next to the download.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["copy.bin"]


def test_download_replaces_existing_file(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/k"
    store.put_bytes(uri, b"new")
    dest = tmp_path / "file"
    dest.write_bytes(b"old contents")
    store.download(uri, dest)
    assert dest.read_bytes() == b"new"


def test_missing_objects(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    store.put_bytes(f"s3://{bucket}/present/child", b"x")
    for uri in (
        f"s3://{bucket}/absent",
        f"s3://{bucket}/present",  # a "directory", not an object
        f"s3://no-such-bucket-{bucket}/key",
    ):
        assert not store.exists(uri)
        with pytest.raises(ObjectNotFound) as info:
            store.get_bytes(uri)
        assert isinstance(info.value, KeyError)
        assert info.value.uri == uri
        assert str(info.value) == f"no object at {uri}"
        dest = tmp_path / "never" / "written"
        with pytest.raises(ObjectNotFound):
            store.download(uri, dest)
        assert not dest.exists()


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a//b", "a/./b", "a/../b", "../escape", "a/..", "trailing/", "nul\x00byte"],
)
def test_invalid_object_keys_are_rejected(store: ObjectStore, bucket: str, key: str) -> None:
    uri = f"s3://{bucket}/{key}"
    with pytest.raises(ValueError):
        store.put_bytes(uri, b"x")
    with pytest.raises(ValueError):
        store.get_bytes(uri)
    with pytest.raises(ValueError):
        store.exists(uri)


def test_non_s3_uri_is_rejected(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="is not an object URI"):
        store.put_bytes("file:///etc/passwd", b"x")
    with pytest.raises(ValueError, match="is not an object URI"):
        store.list_keys("/tmp")


# Listing -----------------------------------------------------------------------------
KEYS = [
    "a/x/1.txt",
    "a/x/2.txt",
    "a/x/sub/3.txt",
    "a/x/sub/deeper/4.txt",
    "a/x_extra/5.txt",
    "a/xy",
    "a/y/6.txt",
    "b/7.txt",
    "top.txt",
]


def test_list_keys_treats_prefix_as_directory(store: ObjectStore, bucket: str) -> None:
    fill(store, bucket, KEYS)
    expected = ["a/x/1.txt", "a/x/2.txt", "a/x/sub/3.txt", "a/x/sub/deeper/4.txt"]
    assert store.list_keys(f"s3://{bucket}/a/x") == expected
    assert store.list_keys(f"s3://{bucket}/a/x/") == expected
    assert store.list_keys(f"s3://{bucket}/a/x/sub/deeper") == ["a/x/sub/deeper/4.txt"]
    assert store.list_keys(f"s3://{bucket}") == sorted(KEYS)
    assert store.list_keys(f"s3://{bucket}/") == sorted(KEYS)


def test_list_keys_of_missing_things_is_empty(store: ObjectStore, bucket: str) -> None:
    fill(store, bucket, KEYS)
    assert store.list_keys(f"s3://{bucket}/nothing") == []
    assert store.list_keys(f"s3://{bucket}/top.txt") == []  # an object is not a prefix
    assert store.list_keys(f"s3://{bucket}/a/x/1") == []
    assert store.list_keys(f"s3://missing-{bucket}") == []
    assert store.list_dirs(f"s3://missing-{bucket}/a") == []


def test_list_keys_paginates(store: ObjectStore, bucket: str) -> None:
    keys = [f"many/{i:03d}" for i in range(11)]
    fill(store, bucket, keys)
    assert store.list_keys(f"s3://{bucket}/many") == keys
    if isinstance(store, S3Store):
        # Make sure the server really pages at PAGE_SIZE, so the line above crossed
        # several continuation tokens.
        page = store.client.list_objects_v2(Bucket=bucket, Prefix="many/", MaxKeys=PAGE_SIZE)
        assert page["IsTruncated"] and len(page["Contents"]) == PAGE_SIZE


def test_list_dirs(store: ObjectStore, bucket: str) -> None:
    fill(store, bucket, KEYS)
    assert store.list_dirs(f"s3://{bucket}") == ["a", "b"]
    assert store.list_dirs(f"s3://{bucket}/a") == ["x", "x_extra", "y"]
    assert store.list_dirs(f"s3://{bucket}/a/") == ["x", "x_extra", "y"]
    assert store.list_dirs(f"s3://{bucket}/a/x") == ["sub"]
    assert store.list_dirs(f"s3://{bucket}/a/y") == []
    assert store.list_dirs(f"s3://{bucket}/nothing") == []


def test_list_dirs_paginates(store: ObjectStore, bucket: str) -> None:
    names = [f"d{i:02d}" for i in range(7)]
    fill(store, bucket, [f"root/{n}/file" for n in names] + ["root/loose-file"])
    assert store.list_dirs(f"s3://{bucket}/root") == names


# Deleting ----------------------------------------------------------------------------
def test_delete(store: ObjectStore, bucket: str) -> None:
    fill(store, bucket, ["d/one", "d/two"])
    store.delete(f"s3://{bucket}/d/one")
    assert not store.exists(f"s3://{bucket}/d/one")
    assert store.list_keys(f"s3://{bucket}") == ["d/two"]
    store.delete(f"s3://{bucket}/d/one")  # deleting again is fine
    store.delete(f"s3://{bucket}/never-existed")
    store.delete(f"s3://{bucket}/d/two")
    assert store.list_dirs(f"s3://{bucket}") == []  # the emptied "directory" is gone


def test_delete_prefix_deletes_exactly_the_directory(store: ObjectStore, bucket: str) -> None:
    fill(store, bucket, KEYS)
    assert store.delete_prefix(f"s3://{bucket}/a/x") == 4
    assert store.list_keys(f"s3://{bucket}") == [
        "a/x_extra/5.txt",
        "a/xy",
        "a/y/6.txt",
        "b/7.txt",
        "top.txt",
    ]
    assert store.list_dirs(f"s3://{bucket}/a") == ["x_extra", "y"]
    assert store.delete_prefix(f"s3://{bucket}/a/x") == 0
    assert store.delete_prefix(f"s3://{bucket}/nothing") == 0
    assert store.delete_prefix(f"s3://missing-{bucket}/a") == 0


def test_delete_prefix_of_whole_bucket(store: ObjectStore, bucket: str) -> None:
    fill(store, bucket, KEYS)
    assert store.delete_prefix(f"s3://{bucket}") == len(KEYS)
    assert store.list_keys(f"s3://{bucket}") == []
    store.put_bytes(f"s3://{bucket}/again", b"1")  # the bucket is still usable
    assert store.list_keys(f"s3://{bucket}") == ["again"]


def test_delete_prefix_crosses_pages(store: ObjectStore, bucket: str) -> None:
    keys = [f"p/{i}/f" for i in range(9)]
    fill(store, bucket, keys)
    assert store.delete_prefix(f"s3://{bucket}/p") == 9
    assert store.list_keys(f"s3://{bucket}") == []


# LocalStore specifics ----------------------------------------------------------------
def test_local_store_layout(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("s3://bkt/a/b.txt", b"hello")
    assert (tmp_path / "bkt" / "a" / "b.txt").read_bytes() == b"hello"
    # Temporary files live outside any bucket and are gone after the write.
    assert list((tmp_path / ".tmp").iterdir()) == []


def test_local_store_does_not_follow_symlinks_out_of_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "bkt").mkdir(parents=True)
    (root / "bkt" / "link").symlink_to(outside)
    store = LocalStore(root)
    with pytest.raises(ValueError, match="outside the object store"):
        store.put_bytes("s3://bkt/link/evil", b"x")
    assert list(outside.iterdir()) == []


def test_local_store_key_and_directory_collision(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("s3://bkt/a/b", b"x")
    with pytest.raises(ValueError, match="collide"):
        store.put_bytes("s3://bkt/a", b"y")
    with pytest.raises(ValueError, match="collide"):
        store.put_bytes("s3://bkt/a/b/c", b"y")
    assert store.list_keys("s3://bkt") == ["a/b"]


def test_local_list_dirs_ignores_empty_directories(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("s3://bkt/full/f", b"x")
    (tmp_path / "bkt" / "empty" / "deeper").mkdir(parents=True)
    assert store.list_dirs("s3://bkt") == ["full"]


# open_store --------------------------------------------------------------------------
def test_open_store_local(tmp_path: Path) -> None:
    plain = open_store(str(tmp_path / "plain"))
    assert isinstance(plain, LocalStore) and plain.root == tmp_path / "plain"
    url = open_store((tmp_path / "with url").as_uri())
    assert isinstance(url, LocalStore) and url.root == tmp_path / "with url"


@pytest.mark.parametrize(
    "url", ["", "  ", "ftp://host/dir", "s3://bucket", "file://remote-host/dir"]
)
def test_open_store_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


@pytest.mark.s3
@pytest.mark.parametrize("url", ["s3", "s3://"])
def test_open_store_s3_from_environment(
    url: str, s3_server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    store = open_store(url)
    assert isinstance(store, S3Store)
    assert store.endpoint_url == s3_server.endpoint_url
    store.put_bytes(f"s3://{bucket}/k", b"through the environment")
    assert store.get_bytes(f"s3://{bucket}/k") == b"through the environment"
    # rclone serves a plain directory: the object is a file there.
    assert (s3_server.root / bucket / "k").read_bytes() == b"through the environment"


@pytest.mark.s3
def test_s3_wrong_credentials_are_an_error(s3_server: S3Server, bucket: str) -> None:
    store = S3Store(s3_server.endpoint_url, s3_server.access_key, "wrong-secret")
    with pytest.raises(Exception) as info:
        store.put_bytes(f"s3://{bucket}/k", b"x")
    assert not isinstance(info.value, ObjectNotFound)
