"""Temporary folders that are always removed, however deep a job or an archive made them.

``shutil.rmtree`` recurses once per folder level (Python 3.11), so a tree 1,000 levels
deep raises RecursionError and stays on disk. :func:`remove_tree` walks with an explicit
stack of directory file descriptors instead: no recursion, no path longer than one name,
and it never follows a symlink out of the tree.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: Path | str) -> None:
    """Remove ``path`` and everything below it (a missing path is not an error). Folders
    made unwritable are made writable first. Errors other than "already gone" raise."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        path.unlink(missing_ok=True)
        return
    parent_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _empty_and_remove(parent_fd, path.name)
    finally:
        os.close(parent_fd)


def _empty_and_remove(top_parent_fd: int, top_name: str) -> None:
    # One frame per open folder: its fd, its parent's fd, its name, sub-folders to do.
    stack: list[tuple[int, int, str, list[str]]] = []
    try:
        stack.append(_visit(top_parent_fd, top_name))
        while stack:
            fd, parent_fd, name, subfolders = stack[-1]
            if subfolders:
                stack.append(_visit(fd, subfolders.pop()))
                continue
            stack.pop()
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(name, dir_fd=parent_fd)
    finally:
        for fd, _parent, _name, _todo in stack:
            os.close(fd)


def _visit(parent_fd: int, name: str) -> tuple[int, int, str, list[str]]:
    """Open the folder, remove its non-folder entries, list its sub-folders."""
    fd = _open_dir(parent_fd, name)
    subfolders = []
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.name)
                else:
                    _unlink(fd, entry.name)
    except BaseException:
        os.close(fd)
        raise
    return fd, parent_fd, name, subfolders


def _open_dir(parent_fd: int, name: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        # A folder the job made unreadable (chmod 0): we own it, so we may open it up.
        os.chmod(name, 0o700, dir_fd=parent_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)


def _unlink(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except PermissionError as exc:
        if exc.errno != errno.EACCES:
            raise
        os.fchmod(dir_fd, 0o700)  # an unwritable folder: let us remove its entries
        os.unlink(name, dir_fd=dir_fd)


@contextlib.contextmanager
def temporary_folder(prefix: str, dir: Path | str | None = None,
                     ignore_cleanup_errors: bool = False) -> Iterator[Path]:
    """A fresh folder, removed with :func:`remove_tree` when the block ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    try:
        yield path
    finally:
        try:
            remove_tree(path)
        except OSError:
            if not ignore_cleanup_errors:
                raise
