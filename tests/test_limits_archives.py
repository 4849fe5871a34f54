"""Cheap archives must stay cheap: depth, members and bytes are limited before anything
is written, validation at submission writes only the MLproject, and temporary folders are
removed however deep they are (issue 7, items 8 and 12)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path

import pytest

from dioptra.archives import ArchiveError, Limits, inspect_archive, safe_extract
from dioptra.folders import remove_tree, temporary_folder
from dioptra.services.errors import BadRequest
from dioptra.services.jobs import validate_workflow

MLPROJECT = b"name: t\nentry_points:\n  main:\n    command: echo hi\n"


def tar_of(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_a_deep_tar_is_refused_at_inspection(tmp_path: Path) -> None:
    # The case: 27 KB, 2,000 files 500 folders deep; it cost 16 s of CPU.
    deep = "d/" * 500
    archive = tar_of(tmp_path / "deep.tar.gz", {f"{deep}f{i}": b"" for i in range(2000)})
    with pytest.raises(ArchiveError, match="501 folder levels deep; the limit is 32"):
        inspect_archive(archive)


def test_archive_limits_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    archive = tar_of(tmp_path / "a.tar.gz", {"a/b/c/f": b"x" * 100, "g": b"y"})
    monkeypatch.setenv("DIOPTRA_ARCHIVE_MAX_DEPTH", "3")
    with pytest.raises(ArchiveError, match="4 folder levels deep; the limit is 3"):
        safe_extract(archive, tmp_path / "out")
    monkeypatch.setenv("DIOPTRA_ARCHIVE_MAX_DEPTH", "4")
    monkeypatch.setenv("DIOPTRA_ARCHIVE_MAX_MEMBERS", "1")
    with pytest.raises(ArchiveError, match="the limit is 1"):
        safe_extract(archive, tmp_path / "out")
    monkeypatch.setenv("DIOPTRA_ARCHIVE_MAX_MEMBERS", "2")
    monkeypatch.setenv("DIOPTRA_ARCHIVE_MAX_BYTES", "100")
    with pytest.raises(ArchiveError, match="add up to more than 100 bytes"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("DIOPTRA_ARCHIVE_MAX_BYTES", "101")
    assert [m.path for m in safe_extract(archive, tmp_path / "out")] == ["a/b/c/f", "g"]
    assert Limits.from_env(max_depth=7).max_depth == 7


def test_a_workflow_1000_folders_deep_is_a_400_and_leaves_no_folder(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    archive = tar_of(tmp_path / "w.tar.gz", {"MLproject": MLPROJECT, "d/" * 1200 + "f": b"x"})
    with pytest.raises(BadRequest, match="folder levels deep"):
        validate_workflow(archive, "main", None)
    assert list((tmp_path / "tmp").iterdir()) == []


def _deep_tree(root: Path, levels: int) -> None:
    fd = os.open(root, os.O_RDONLY)
    for i in range(levels):
        os.mkdir("d", dir_fd=fd)
        if i % 100 == 0:
            os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
            os.symlink("/", "link", dir_fd=fd)  # never followed
        next_fd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    os.close(fd)


def test_temporary_folders_go_however_deep(tmp_path: Path) -> None:
    with temporary_folder(prefix="deep-", dir=tmp_path) as folder:
        _deep_tree(folder, 1500)  # shutil.rmtree: RecursionError, folder left behind
        (folder / "ro").mkdir()
        (folder / "ro" / "f").write_text("x")
        (folder / "ro").chmod(0o500)
    assert list(tmp_path.iterdir()) == []
    remove_tree(tmp_path / "missing")  # nothing to do is fine


def test_validation_writes_only_the_mlproject(tmp_path: Path) -> None:
    # 64 MiB of zeros compress to ~64 KB; validation used to write every member out.
    archive = tmp_path / "big.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tf:
        for name, data in (("MLproject", MLPROJECT), ("zeros.bin", None)):
            info = tarfile.TarInfo(name)
            if data is None:
                info.size = 64 << 20
                tf.addfile(info, io.BytesIO(bytes(info.size)))
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    # A process that may not write any file over 1 MiB validates it all the same.
    script = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        from dioptra.services.jobs import validate_workflow
        validate_workflow({str(archive)!r}, "main", None)
        print("valid")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0 and done.stdout.strip() == "valid", done.stderr[-2000:]
