"""Safe inspection and extraction of untrusted tar and zip archives."""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from dioptra.archives import (
    ArchiveError,
    Limits,
    Member,
    detect_format,
    inspect_archive,
    pack_directory,
    safe_extract,
)


# Building archives -------------------------------------------------------------------
@dataclass
class E:
    """One entry to put in a test archive."""

    name: str
    data: bytes = b""
    kind: str = "file"  # file, dir, symlink, hardlink, or a raw tar type byte
    link: str = ""
    mode: int = 0o644
    uid: int = 0


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> E:
    return E(name, data, mode=mode)


def folder(name: str, mode: int = 0o755) -> E:
    return E(name, kind="dir", mode=mode)


def symlink(name: str, target: str) -> E:
    return E(name, kind="symlink", link=target, mode=0o777)


def hardlink(name: str, target: str) -> E:
    return E(name, kind="hardlink", link=target)


def make_tar(path: Path, entries: list[E], compression: str = "gz") -> Path:
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode = e.mode
            info.uid = e.uid
            info.mtime = 1_700_000_000
            data = None
            if e.kind == "file":
                info.size = len(e.data)
                data = io.BytesIO(e.data)
            elif e.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.link
            elif e.kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = e.link
            else:
                info.type = e.kind.encode()
            tf.addfile(info, data)
    return path


def make_zip(path: Path, entries: list[E]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for e in entries:
            info = zipfile.ZipInfo(e.name + ("/" if e.kind == "dir" else ""))
            info.create_system = 3  # unix, so the mode bits below are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            if e.kind == "dir":
                info.external_attr = (stat.S_IFDIR | e.mode) << 16
                zf.writestr(info, b"")
            elif e.kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, e.link.encode())
            elif e.kind == "chr":
                info.external_attr = (stat.S_IFCHR | 0o644) << 16
                zf.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | e.mode) << 16
                zf.writestr(info, e.data)
    return path


def patch_zip_central(path: Path, name: str, offset: int, fmt: str, value: int) -> None:
    """Overwrite one field of ``name``'s central-directory header (what zipfile trusts)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == name.encode():
            struct.pack_into(fmt, data, at + offset, value)
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} not in {path}")


def tree(root: Path) -> dict[str, str]:
    """Everything under ``root``: path -> 'dir', 'link:<target>' or the file's text."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_text()
    return out


GOOD = [
    folder("src"),
    file("src/main.py", b"print('hi')\n", mode=0o755),
    folder("src/pkg"),
    file("src/pkg/__init__.py", b""),
    file("src/pkg/deep/er/data.txt", b"nested without folder entries"),
    file("MLproject", b"name: test\n"),
    symlink("src/pkg/link.py", "../main.py"),  # stays inside
    symlink("src/alias", "pkg/deep"),
    hardlink("src/pkg/hard.txt", "MLproject"),
]
GOOD_TREE = {
    "MLproject": "name: test\n",
    "src": "dir",
    "src/main.py": "print('hi')\n",
    "src/pkg": "dir",
    "src/pkg/__init__.py": "",
    "src/pkg/deep": "dir",
    "src/pkg/deep/er": "dir",
    "src/pkg/deep/er/data.txt": "nested without folder entries",
    "src/pkg/link.py": "link:../main.py",
    "src/alias": "link:pkg/deep",
    "src/pkg/hard.txt": "name: test\n",
}


# Good archives -----------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_tar_roundtrip(tmp_path: Path, compression: str) -> None:
    # A misleading name: the format comes from the content.
    archive = make_tar(tmp_path / "upload.zip", GOOD, compression)
    assert detect_format(archive) == "tar"
    members = inspect_archive(archive)
    assert [m.path for m in members] == [e.name for e in GOOD]
    by_path = {m.path: m for m in members}
    assert by_path["src/main.py"] == Member("src/main.py", 12, "file", None)
    assert by_path["src"].kind == "dir"
    assert by_path["src/pkg/link.py"] == Member("src/pkg/link.py", 0, "symlink", "../main.py")
    assert by_path["src/pkg/hard.txt"] == Member("src/pkg/hard.txt", 0, "hardlink", "MLproject")

    dest = tmp_path / "out" / "job"
    assert safe_extract(archive, dest) == members
    assert tree(dest) == GOOD_TREE
    assert (dest / "src/pkg/link.py").read_text() == "print('hi')\n"
    assert os.path.samefile(dest / "src/pkg/hard.txt", dest / "MLproject")
    assert stat.S_IMODE((dest / "src/main.py").stat().st_mode) == 0o755


def test_zip_roundtrip(tmp_path: Path) -> None:
    entries = [e for e in GOOD if e.kind != "hardlink"]  # zip has no hard links
    archive = make_zip(tmp_path / "upload.tar.gz", entries)
    assert detect_format(archive) == "zip"
    members = inspect_archive(archive)
    assert [m.path for m in members] == [e.name for e in entries]
    assert {m.path: m.kind for m in members}["src/alias"] == "symlink"
    dest = tmp_path / "out"
    safe_extract(archive, dest)
    expected = {k: v for k, v in GOOD_TREE.items() if k != "src/pkg/hard.txt"}
    assert tree(dest) == expected
    assert stat.S_IMODE((dest / "src/main.py").stat().st_mode) == 0o755


def test_zip_without_unix_modes_gets_ordinary_permissions(tmp_path: Path) -> None:
    archive = tmp_path / "plain.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("dir/file.txt")
        info.create_system = 0  # as written on Windows: no unix mode
        zf.writestr(info, "text")
    dest = tmp_path / "out"
    safe_extract(archive, dest)
    assert stat.S_IMODE((dest / "dir/file.txt").stat().st_mode) == 0o644


def test_archive_root_entry_is_skipped(tmp_path: Path) -> None:
    # `tar -C dir -czf x.tgz .` starts with "./" and prefixes every name with "./".
    archive = make_tar(
        tmp_path / "a.tgz", [folder("./"), file("./a.py", b"a"), folder("./d"), file("./d/b")]
    )
    members = inspect_archive(archive)
    assert [m.path for m in members] == ["a.py", "d", "d/b"]
    safe_extract(archive, tmp_path / "out")
    assert tree(tmp_path / "out") == {"a.py": "a", "d": "dir", "d/b": "x"}


def test_dotdot_that_stays_inside_is_normalised(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [file("a/../b.txt", b"b"), folder("d/")], "")
    assert [m.path for m in inspect_archive(archive)] == ["b.txt", "d"]


def test_repeated_folder_entries_are_harmless(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [folder("d"), file("d/f"), folder("d/")], "")
    assert [m.path for m in inspect_archive(archive)] == ["d", "d/f"]


def test_empty_tar_archive(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "empty.tar", [], "")
    assert inspect_archive(archive) == []
    assert safe_extract(archive, tmp_path / "out") == []
    assert (tmp_path / "out").is_dir()


def test_special_bits_and_owners_are_not_applied(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tgz",
        [
            E("suid", b"#!/bin/sh\n", mode=0o6755, uid=12345),
            E("private", b"x", mode=0o000),
            folder("sticky", mode=0o1777),
            folder("readonly", mode=0o500),
            file("readonly/inside"),
        ],
    )
    dest = tmp_path / "out"
    safe_extract(archive, dest)
    assert stat.S_IMODE((dest / "suid").stat().st_mode) == 0o755
    assert (dest / "suid").stat().st_uid == os.getuid()
    assert stat.S_IMODE((dest / "private").stat().st_mode) == 0o600  # owner can read
    assert stat.S_IMODE((dest / "sticky").stat().st_mode) == 0o777
    assert stat.S_IMODE((dest / "readonly").stat().st_mode) == 0o700
    assert (dest / "readonly/inside").read_text() == "x"


def test_extract_into_existing_folder_keeps_its_contents(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    (dest / "src").mkdir(parents=True)
    (dest / "keep.txt").write_text("mine")
    archive = make_tar(tmp_path / "a.tgz", [file("src/new.py", b"new")])
    safe_extract(archive, dest)
    assert tree(dest) == {"keep.txt": "mine", "src": "dir", "src/new.py": "new"}


# Malicious or broken archives --------------------------------------------------------
def assert_rejected(
    archive: Path, tmp_path: Path, fragment: str, limits: Limits = Limits()
) -> ArchiveError:
    """inspect and extract both refuse ``archive`` and extraction leaves nothing."""
    with pytest.raises(ArchiveError) as info:
        inspect_archive(archive, limits)
    assert fragment in str(info.value)
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError) as info:
        safe_extract(archive, dest, limits)
    assert fragment in str(info.value)
    assert not dest.exists()
    return info.value


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ([file("../evil.py")], "archive member '../evil.py' escapes the archive folder"),
        ([file("ok"), file("a/../../x")], "archive member 'a/../../x' escapes the archive"),
        ([file("/etc/x")], "archive member '/etc/x' is an absolute path"),
        ([file("C:/windows/x")], "is an absolute path"),
        ([symlink("pw", "/etc/passwd")], "symlink to '/etc/passwd' outside the archive folder"),
        ([symlink("d/up", "../../outside")], "leads outside the archive folder"),
        # Each link looks harmless on its own; followed for real, l leaves the folder.
        ([symlink("d/up", ".."), symlink("d/l", "up/../..")], "'d/l' is a symlink to"),
        ([symlink("loop", "loop2"), symlink("loop2", "loop")], "symlink loop"),
        # A harmless link, then a file written through it.
        ([symlink("l", "."), file("l/x")], "'l/x' is inside 'l', which is a symlink"),
        ([file("f"), file("f/x")], "'f/x' is inside 'f', which is a file"),
        ([hardlink("h", "../../etc/passwd")], "hard link to '../../etc/passwd' outside"),
        ([hardlink("h", "/etc/passwd")], "hard link to '/etc/passwd' outside"),
        ([hardlink("h", "missing")], "which is not a file earlier in the archive"),
        ([symlink("s", "x"), hardlink("h", "s")], "which is not a file earlier in the archive"),
        ([E("dev", kind=tarfile.CHRTYPE.decode())], "'dev' is a character device"),
        ([E("blk", kind=tarfile.BLKTYPE.decode())], "'blk' is a block device"),
        ([E("fifo", kind=tarfile.FIFOTYPE.decode())], "'fifo' is a FIFO"),
        ([file("dup", b"1"), file("dup", b"2")], "archive member 'dup' appears more than once"),
        ([folder("d"), file("d")], "archive member 'd' appears more than once"),
        ([file("d/f"), file("d")], "archive member 'd' appears more than once"),
        ([E(".", b"data")], "archive member '.' has an empty name"),
        ([file("a" * 300)], "has a name part longer than 255 bytes"),
    ],
)
def test_malicious_tar(tmp_path: Path, entries: list[E], fragment: str) -> None:
    assert_rejected(make_tar(tmp_path / "evil.tgz", entries), tmp_path, fragment)


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ([file("../evil.py")], "archive member '../evil.py' escapes the archive folder"),
        ([file("..\\evil.py")], "escapes the archive folder"),
        ([file("/abs.py")], "archive member '/abs.py' is an absolute path"),
        ([symlink("pw", "/etc/passwd")], "symlink to '/etc/passwd' outside the archive folder"),
        ([symlink("up", "../..")], "leads outside the archive folder"),
        ([E("dev", kind="chr")], "'dev' is a character device"),
    ],
)
def test_malicious_zip(tmp_path: Path, entries: list[E], fragment: str) -> None:
    assert_rejected(make_zip(tmp_path / "evil.zip", entries), tmp_path, fragment)


def test_too_many_members(tmp_path: Path) -> None:
    limits = Limits(max_members=5)
    entries = [file(f"f{i}") for i in range(7)]
    tar = make_tar(tmp_path / "many.tgz", entries)
    assert_rejected(tar, tmp_path, "archive has more than 5 members; the limit is 5", limits)
    zip_ = make_zip(tmp_path / "many.zip", entries)
    assert_rejected(zip_, tmp_path, "archive has 7 members; the limit is 5", limits)
    # Exactly at the limit is fine.
    assert len(inspect_archive(make_tar(tmp_path / "ok.tgz", entries[:5]), limits)) == 5


def test_member_too_large(tmp_path: Path) -> None:
    limits = Limits(max_member_bytes=1000)
    entries = [file("small", b"x" * 1000), file("big.bin", b"x" * 2000)]
    for archive in (make_tar(tmp_path / "a.tgz", entries), make_zip(tmp_path / "a.zip", entries)):
        assert_rejected(
            archive,
            tmp_path,
            "archive member 'big.bin' is 2000 bytes (2.0 KiB); the limit is 1000 bytes per file",
            limits,
        )


def test_total_too_large(tmp_path: Path) -> None:
    limits = Limits(max_total_bytes=1500)
    entries = [file("one", b"1" * 1000), file("two", b"2" * 1000)]
    for archive in (make_tar(tmp_path / "a.tgz", entries), make_zip(tmp_path / "a.zip", entries)):
        error = assert_rejected(archive, tmp_path, "add up to more than 1500 bytes", limits)
        assert "'two'" in str(error)


def test_zip_bomb_with_lying_size_leaves_nothing(tmp_path: Path) -> None:
    # The header says 100 bytes; the data inflates to 4 MiB. Checks based on declared
    # sizes pass, so extraction itself must notice and undo what it already wrote.
    archive = make_zip(
        tmp_path / "bomb.zip", [file("first.txt", b"ok"), file("bomb", bytes(4 << 20))]
    )
    patch_zip_central(archive, "bomb", 24, "<I", 100)  # uncompressed size
    assert [m.size for m in inspect_archive(archive)] == [2, 100]
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError, match="'bomb.zip' is corrupt or truncated"):
        safe_extract(archive, dest, Limits(max_total_bytes=1000))
    assert not dest.exists()


def test_encrypted_zip_member(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "enc.zip", [file("secret.txt", b"s")])
    patch_zip_central(archive, "secret.txt", 8, "<H", 0x1)  # "encrypted" flag
    assert_rejected(archive, tmp_path, "archive member 'secret.txt' is encrypted")


def test_not_an_archive(tmp_path: Path) -> None:
    rar = tmp_path / "x.rar"
    rar.write_bytes(b"Rar!\x1a\x07\x00" + os.urandom(2000))
    with pytest.raises(ArchiveError) as info:
        detect_format(rar)
    assert str(info.value) == "'x.rar' is not a tar or zip archive"
    assert_rejected(rar, tmp_path, "'x.rar' is not a tar or zip archive")
    text = tmp_path / "notes.tar.gz"  # the name is not evidence
    text.write_text("just some text\n" * 100)
    assert_rejected(text, tmp_path, "'notes.tar.gz' is not a tar or zip archive")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    assert_rejected(empty, tmp_path, "'empty.zip' is empty")


def test_display_name_in_messages(tmp_path: Path) -> None:
    upload = tmp_path / "tmp8f3k2"
    upload.write_bytes(b"garbage" * 50)
    with pytest.raises(ArchiveError, match="'workflows.tar.gz' is not a tar or zip archive"):
        inspect_archive(upload, name="workflows.tar.gz")


def test_truncated_gzip(tmp_path: Path) -> None:
    whole = make_tar(tmp_path / "whole.tgz", [file("noise.bin", os.urandom(200_000))])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[:100_000])
    assert detect_format(cut) == "tar"
    assert_rejected(cut, tmp_path, "'cut.tar.gz' is corrupt or truncated")


def test_gzip_that_is_not_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(gzip.compress(b"not a tar at all\n" * 100))
    assert_rejected(path, tmp_path, "'model.pkl.gz' is corrupt or truncated")


def test_truncated_zip(tmp_path: Path) -> None:
    whole = make_zip(tmp_path / "whole.zip", [file("noise.bin", os.urandom(50_000))])
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[:30_000])
    assert_rejected(cut, tmp_path, "'cut.zip' is corrupt or truncated")


def test_failure_midway_removes_what_was_written(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "clash.txt").write_text("existing")
    archive = make_tar(
        tmp_path / "a.tgz",
        [file("new1.txt"), folder("newdir"), file("newdir/f"), file("sub/clash.txt", b"evil")],
    )
    with pytest.raises(ArchiveError, match="'sub/clash.txt': it already exists"):
        safe_extract(archive, dest)
    # Only what was there before remains, untouched.
    assert tree(dest) == {"sub": "dir", "sub/clash.txt": "existing"}


def test_extraction_never_writes_through_an_existing_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "src").symlink_to(outside)  # planted before extraction
    archive = make_tar(tmp_path / "a.tgz", [file("src/evil.py", b"evil")])
    with pytest.raises(ArchiveError, match="'src': it exists in the destination and is not"):
        safe_extract(archive, dest)
    assert list(outside.iterdir()) == []
    assert tree(dest) == {"src": f"link:{outside}"}


# pack_directory ----------------------------------------------------------------------
def test_pack_directory_is_deterministic_and_roundtrips(tmp_path: Path) -> None:
    src = tmp_path / "plugin"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "tasks.py").write_text("def f(): pass\n")
    (src / "sub" / "deeper" / "x.txt").write_text("x")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o700)
    (src / "link").symlink_to("tasks.py")
    (src / "a-b").write_text("sorts between 'a' and 'a/...'")

    first = pack_directory(src)
    os.utime(src / "tasks.py", (1, 1))  # times and umask-dependent bits do not matter
    (src / "__init__.py").chmod(0o600)
    assert pack_directory(src) == first
    assert first[:2] == b"\x1f\x8b" and first[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0

    with tarfile.open(fileobj=io.BytesIO(first)) as tf:
        infos = tf.getmembers()
    names = [i.name for i in infos]
    assert names == [
        "__init__.py",
        "a-b",
        "link",
        "run.sh",
        "sub",
        "sub/deeper",
        "sub/deeper/x.txt",
        "tasks.py",
    ]
    assert all(i.mtime == 0 and i.uid == 0 and i.gid == 0 and not i.uname for i in infos)
    modes = {i.name: i.mode for i in infos}
    assert modes["run.sh"] == 0o755 and modes["tasks.py"] == 0o644 and modes["sub"] == 0o755

    archive = tmp_path / "plugin.tar.gz"
    archive.write_bytes(first)
    dest = tmp_path / "unpacked"
    safe_extract(archive, dest)
    assert tree(dest) == tree(src)


def test_pack_directory_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        pack_directory(tmp_path / "missing")
