"""Safe handling of untrusted tar (plain, gz, bz2, xz) and zip archives.

Uploaded workflow and plugin archives come from API users, so nothing in them is
trusted: every member is checked (:func:`inspect_archive`) before anything is written,
and extraction (:func:`safe_extract`) writes through directory file descriptors opened
with ``O_NOFOLLOW`` so it can never be steered outside the destination by a link.

:class:`ArchiveError` messages are shown to users as they are, so they name the member
and the rule it breaks.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from dioptra.folders import remove_tree

__all__ = [
    "ArchiveError",
    "Limits",
    "Member",
    "detect_format",
    "inspect_archive",
    "pack_directory",
    "safe_extract",
]

Kind = Literal["file", "dir", "symlink", "hardlink"]
_CHUNK = 1 << 20
_MAX_NAME_PART_BYTES = 255  # NAME_MAX on Linux
_MAX_PATH_BYTES = 4000  # a little under PATH_MAX, leaving room for the destination
_MAX_LINK_TARGET_BYTES = 4096
_MAX_SYMLINK_HOPS = 40  # the kernel's own limit (MAXSYMLINKS)
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_COMPRESSED_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")

# What the tar/zip/decompression modules raise on bad input (gzip, bz2 and a missing
# file raise OSError; zipfile raises RuntimeError for encryption, NotImplementedError
# for unknown compression methods).
_READ_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    UnicodeDecodeError,
    ValueError,
)


class ArchiveError(ValueError):
    """The archive is unusable; the message says why, in terms meant for the uploader."""


@dataclass(frozen=True)
class Limits:
    """What one archive may hold. The defaults are the server's and workers' unless the
    DIOPTRA_ARCHIVE_* variables (README, configuration) say otherwise."""

    max_members: int = 10_000
    max_total_bytes: int = 1 << 30  # counted as extracted, not as declared
    max_member_bytes: int = 512 << 20
    max_depth: int = 32  # folder levels of a member's path

    @classmethod
    def from_env(cls, **overrides: int) -> Limits:
        """The defaults, changed by DIOPTRA_ARCHIVE_MAX_MEMBERS, _MAX_BYTES,
        _MAX_MEMBER_BYTES and _MAX_DEPTH, then by ``overrides``."""
        values: dict[str, int] = {}
        for name, var in (
            ("max_members", "DIOPTRA_ARCHIVE_MAX_MEMBERS"),
            ("max_total_bytes", "DIOPTRA_ARCHIVE_MAX_BYTES"),
            ("max_member_bytes", "DIOPTRA_ARCHIVE_MAX_MEMBER_BYTES"),
            ("max_depth", "DIOPTRA_ARCHIVE_MAX_DEPTH"),
        ):
            raw = os.environ.get(var)
            if raw:
                values[name] = int(raw)
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class Member:
    path: str  # normalised relative POSIX path, no '.', '..' or empty parts
    size: int  # bytes of data (0 for folders and links)
    kind: Kind
    # symlink: the target as stored (relative to the link's folder);
    # hardlink: the normalised path of the file it links to.
    link_target: str | None = None


# Messages ----------------------------------------------------------------------------
def _q(name: str) -> str:
    """A member name quoted for a message, shortened if an attacker made it huge."""
    if len(name) > 200:
        name = name[:200] + "..."
    return repr(name)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n} bytes ({n / (1 << shift):.1f} {unit})"
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _reading(display: str) -> Iterator[None]:
    """Turn the many ways a damaged archive fails to read into one ArchiveError."""
    try:
        yield
    except ArchiveError:
        raise
    except _READ_ERRORS as exc:
        detail = str(exc) or type(exc).__name__
        raise ArchiveError(f"{_q(display)} is corrupt or truncated: {detail}") from exc


# Format detection --------------------------------------------------------------------
def detect_format(path: Path | str, *, name: str | None = None) -> Literal["tar", "zip"]:
    """Whether ``path`` holds a tar (any compression) or a zip archive, judged by its
    content, never its file name. ``name`` is the file name to use in messages
    (defaults to the last part of ``path``)."""
    display = name or Path(path).name
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise ArchiveError(f"cannot read {_q(display)}: {exc.strerror or exc}") from exc
    if not head:
        raise ArchiveError(f"{_q(display)} is empty, not a tar or zip archive")
    if head.startswith(_ZIP_MAGICS):
        return "zip"
    if head.startswith(_COMPRESSED_MAGICS) or head[257:262] == b"ustar":
        return "tar"  # (a compressed non-tar file fails later with a clear message)
    with contextlib.suppress(*_READ_ERRORS):
        if tarfile.is_tarfile(path):  # old v7 tars and lzma-alone streams
            return "tar"
    with contextlib.suppress(*_READ_ERRORS):
        if zipfile.is_zipfile(path):  # zips with data before them (self-extracting)
            return "zip"
    raise ArchiveError(f"{_q(display)} is not a tar or zip archive")


# Reading entries ---------------------------------------------------------------------
@dataclass
class _Entry:
    """One raw archive entry, before any checks."""

    name: str
    kind: Kind | None  # None: a type we refuse; `problem` says which
    size: int
    link: str | None
    mode: int  # permission bits (already masked to 0o777)
    problem: str | None = None  # why it is refused: "is a block device; ..."
    open_data: Callable[[], IO[bytes]] | None = None


def _not_allowed(what: str) -> str:
    return f"is {what}; only files, folders and links are allowed"


def _tar_entry(tf: tarfile.TarFile, ti: tarfile.TarInfo) -> _Entry:
    kind: Kind | None = None
    problem = None
    if ti.isreg():
        kind = "file"
    elif ti.isdir():
        kind = "dir"
    elif ti.issym():
        kind = "symlink"
    elif ti.islnk():
        kind = "hardlink"
    elif ti.ischr():
        problem = _not_allowed("a character device")
    elif ti.isblk():
        problem = _not_allowed("a block device")
    elif ti.isfifo():
        problem = _not_allowed("a FIFO (named pipe)")
    else:
        problem = _not_allowed(f"of unknown tar type {ti.type!r}")

    def open_data() -> IO[bytes]:
        data = tf.extractfile(ti)
        assert data is not None  # regular files always have data
        return data

    return _Entry(
        name=ti.name,
        kind=kind,
        size=ti.size if kind == "file" else 0,
        link=ti.linkname if kind in ("symlink", "hardlink") else None,
        mode=ti.mode & 0o777,
        problem=problem,
        open_data=open_data if kind == "file" else None,
    )


def _tar_entries(tf: tarfile.TarFile, display: str) -> Iterator[_Entry]:
    while True:
        with _reading(display):
            ti = tf.next()
        if ti is None:
            return
        # TarFile remembers every header it has read; nothing here needs them again.
        tf.members.clear()
        yield _tar_entry(tf, ti)


def _zip_entry(zf: zipfile.ZipFile, zi: zipfile.ZipInfo, display: str) -> _Entry:
    unix_mode = (zi.external_attr >> 16) & 0xFFFF if zi.create_system == 3 else 0
    ftype = stat.S_IFMT(unix_mode)
    kind: Kind | None = None
    problem = None
    link = None
    if zi.flag_bits & 0x1:
        problem = "is encrypted, which is not supported"
    elif zi.is_dir() or ftype == stat.S_IFDIR:
        kind = "dir"
    elif ftype == stat.S_IFLNK:
        kind = "symlink"
        # A zip symlink stores its target as the member's data.
        if zi.file_size > _MAX_LINK_TARGET_BYTES:
            problem = f"is a symlink with a target longer than {_MAX_LINK_TARGET_BYTES} bytes"
        else:
            with _reading(display), zf.open(zi) as f:
                link = f.read(_MAX_LINK_TARGET_BYTES + 1).decode("utf-8", "surrogateescape")
    elif ftype in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        problem = _not_allowed(
            {
                stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device",
                stat.S_IFIFO: "a FIFO (named pipe)",
                stat.S_IFSOCK: "a socket",
            }[ftype]
        )
    else:
        kind = "file"
    default_mode = 0o755 if kind == "dir" else 0o644
    return _Entry(
        name=zi.filename,
        kind=None if problem else kind,
        size=zi.file_size if kind == "file" else 0,
        link=link,
        mode=(unix_mode & 0o777) or default_mode,
        problem=problem,
        open_data=(lambda: zf.open(zi)) if kind == "file" else None,
    )


def _zip_declared_count(path: Path | str) -> int | None:
    """The member count from the zip's end-of-central-directory record, read before
    zipfile parses (and holds in memory) the whole central directory."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        tail_len = min(size, 22 + 0xFFFF)  # the record plus the longest comment
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            return None  # zipfile itself will report the damage
        count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
        if count != 0xFFFF:
            return count
        # Zip64: the locator just before the record points at the zip64 record.
        loc = at - 20
        if loc < 0 or tail[loc : loc + 4] != b"PK\x06\x07":
            return None
        (offset,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
        f.seek(offset)
        record = f.read(56)
        if len(record) < 56 or record[:4] != b"PK\x06\x06":
            return None
        return struct.unpack("<Q", record[32:40])[0]


# Checking ----------------------------------------------------------------------------
def _normalise(raw: str) -> list[str]:
    """The member name as path parts, or ArchiveError if it is absolute or escapes."""
    if "\x00" in raw:
        raise ArchiveError(f"archive member {_q(raw)} has a NUL character in its name")
    name = raw.replace("\\", "/")  # zips made on Windows may use backslashes
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        raise ArchiveError(f"archive member {_q(raw)} is an absolute path")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ArchiveError(f"archive member {_q(raw)} escapes the archive folder")
            parts.pop()
        else:
            if len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME_PART_BYTES:
                raise ArchiveError(
                    f"archive member {_q(raw)} has a name part longer than "
                    f"{_MAX_NAME_PART_BYTES} bytes"
                )
            parts.append(part)
    if len("/".join(parts).encode("utf-8", "surrogateescape")) > _MAX_PATH_BYTES:
        raise ArchiveError(
            f"archive member {_q(raw)} has a path longer than {_MAX_PATH_BYTES} bytes"
        )
    return parts


def _ancestors(path: str) -> Iterator[str]:
    """The folders holding ``path``, deepest first: "a/b/c" gives "a/b", then "a"."""
    end = path.rfind("/")
    while end > 0:
        yield path[:end]
        end = path.rfind("/", 0, end)


class _Checker:
    """Applies every rule to the entries of one archive, in order."""

    def __init__(self, limits: Limits, exact_count: int | None) -> None:
        self.limits = limits
        self.entries = 0
        self.total = 0
        self.kinds: dict[str, Kind] = {}  # path -> kind; folders implied by members too
        self.symlinks: dict[str, str] = {}  # path -> raw target
        self.plan: list[Member | None] = []  # per entry: what to write (None: skip)
        self.modes: list[int] = []
        self.exact_count = exact_count

    def add(self, entry: _Entry) -> None:
        self.entries += 1
        if self.entries > self.limits.max_members:
            count = "more than " + str(self.limits.max_members)
            if self.exact_count is not None:
                count = str(self.exact_count)
            raise ArchiveError(
                f"archive has {count} members; the limit is {self.limits.max_members}"
            )
        member = self._check(entry)
        self.plan.append(member)
        self.modes.append(entry.mode)

    def _check(self, entry: _Entry) -> Member | None:
        raw = entry.name
        if entry.kind is None:
            raise ArchiveError(f"archive member {_q(raw)} {entry.problem}")
        parts = _normalise(raw)
        path = "/".join(parts)
        if not parts:
            if entry.kind == "dir":
                return None  # "./": the archive folder itself, as `tar -C dir .` writes
            raise ArchiveError(f"archive member {_q(raw)} has an empty name")

        if len(parts) > self.limits.max_depth:
            raise ArchiveError(
                f"archive member {_q(raw)} is {len(parts)} folder levels deep; the limit is "
                f"{self.limits.max_depth}"
            )
        # Nothing may sit inside a file or a link (writing through a symlinked folder is
        # the classic way out of the destination). Ancestors are checked deepest first:
        # a known folder's own ancestors were all checked when it was recorded.
        for parent in _ancestors(path):
            parent_kind = self.kinds.get(parent)
            if parent_kind == "dir":
                break
            if parent_kind is not None:
                what = "a symlink" if parent_kind == "symlink" else "a file"
                raise ArchiveError(
                    f"archive member {_q(raw)} is inside {_q(parent)}, which is {what}"
                )
        existing = self.kinds.get(path)
        if existing is not None:
            if existing == "dir" and entry.kind == "dir":
                return None  # the same folder listed twice is harmless
            raise ArchiveError(f"archive member {_q(path)} appears more than once")

        link_target = None
        if entry.kind == "file":
            self._check_size(raw, entry.size)
        elif entry.kind == "symlink":
            link_target = self._check_symlink(raw, path, entry.link or "")
        elif entry.kind == "hardlink":
            link_target = self._check_hardlink(raw, entry.link or "")

        for parent in _ancestors(path):
            if parent in self.kinds:
                break
            self.kinds[parent] = "dir"
        self.kinds[path] = entry.kind
        return Member(path=path, size=entry.size, kind=entry.kind, link_target=link_target)

    def _check_size(self, raw: str, size: int) -> None:
        limits = self.limits
        if size > limits.max_member_bytes:
            raise ArchiveError(
                f"archive member {_q(raw)} is {_size(size)}; "
                f"the limit is {_size(limits.max_member_bytes)} per file"
            )
        self.total += size
        if self.total > limits.max_total_bytes:
            raise ArchiveError(
                f"archive contents add up to more than {_size(limits.max_total_bytes)}, "
                f"the limit (reached at member {_q(raw)})"
            )

    def _check_symlink(self, raw: str, path: str, target: str) -> str:
        if not target or "\x00" in target:
            raise ArchiveError(f"archive member {_q(raw)} is a symlink with an invalid target")
        if target.startswith("/") or _WINDOWS_DRIVE.match(target):
            raise ArchiveError(
                f"archive member {_q(raw)} is a symlink to {_q(target)} outside the archive folder"
            )
        if len(target.encode("utf-8", "surrogateescape")) > _MAX_LINK_TARGET_BYTES:
            raise ArchiveError(f"archive member {_q(raw)} is a symlink with a too long target")
        self.symlinks[path] = target
        return target  # where it really leads is checked once every link is known

    def _check_hardlink(self, raw: str, target: str) -> str:
        if not target:
            raise ArchiveError(f"archive member {_q(raw)} is a hard link with no target")
        try:
            parts = _normalise(target)
        except ArchiveError:
            raise ArchiveError(
                f"archive member {_q(raw)} is a hard link to {_q(target)} outside the "
                "archive folder"
            ) from None
        normalised = "/".join(parts)
        if self.kinds.get(normalised) != "file":
            raise ArchiveError(
                f"archive member {_q(raw)} is a hard link to {_q(target)}, which is not a "
                "file earlier in the archive"
            )
        return normalised

    def finish(self) -> list[Member]:
        for path, target in self.symlinks.items():
            self._resolve(path, target)
        return [m for m in self.plan if m is not None]

    def _resolve(self, path: str, target: str) -> None:
        """Follow a symlink the way the kernel will once extracted, through any other
        symlinks in the archive, and fail if it ever steps above the archive folder (a
        chain such as ``d/up -> ..`` plus ``d/l -> up/../..`` looks harmless lexically)."""
        stack = path.split("/")[:-1]  # the folder holding the link
        todo = target.split("/")
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    raise ArchiveError(
                        f"archive member {_q(path)} is a symlink to {_q(target)}, which "
                        "leads outside the archive folder"
                    )
                stack.pop()
                continue
            stack.append(part)
            next_target = self.symlinks.get("/".join(stack))
            if next_target is not None:
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise ArchiveError(f"archive member {_q(path)} is part of a symlink loop")
                stack.pop()
                todo[:0] = next_target.split("/")


# Public API --------------------------------------------------------------------------
@contextlib.contextmanager
def _open_entries(
    path: Path | str, display: str, limits: Limits
) -> Iterator[tuple[Iterator[_Entry], int | None]]:
    """The archive's entries, in order, plus the exact member count when known."""
    fmt = detect_format(path, name=display)
    if fmt == "zip":
        with _reading(display):
            count = _zip_declared_count(path)
        if count is not None and count > limits.max_members:
            raise ArchiveError(f"archive has {count} members; the limit is {limits.max_members}")
        with _reading(display):
            zf = zipfile.ZipFile(path)
        with zf:
            infos = zf.infolist()
            yield (_zip_entry(zf, zi, display) for zi in infos), len(infos)
    else:
        with _reading(display):
            tf = tarfile.open(path, "r:*")
        with tf:
            yield _tar_entries(tf, display), None


def inspect_archive(
    path: Path | str, limits: Limits | None = None, *, name: str | None = None
) -> list[Member]:
    """Every member of the archive, checked against all the rules and ``limits`` (by
    default :meth:`Limits.from_env`), in archive order, without writing anything. Raises
    ArchiveError at the first problem. ``name`` is the file name to use in messages."""
    return _inspect(path, limits or Limits.from_env(), name or Path(path).name).finish()


def _inspect(path: Path | str, limits: Limits, display: str) -> _Checker:
    with _open_entries(path, display, limits) as (entries, count):
        checker = _Checker(limits, count)
        with _reading(display):
            for entry in entries:
                checker.add(entry)
    return checker


def safe_extract(
    path: Path | str,
    dest: Path | str,
    limits: Limits | None = None,
    *,
    name: str | None = None,
    select: Callable[[Member], bool] | None = None,
) -> list[Member]:
    """Check the archive, then extract it into ``dest`` (created if missing).

    ``limits`` defaults to :meth:`Limits.from_env`. Every member is checked; with
    ``select``, only the members it accepts are written (plus the folders holding them).
    Existing files in ``dest`` are never overwritten. Only permission bits are applied
    (no setuid/setgid/sticky bits, no owners), and the owner can always read and write
    what was extracted. On any error everything written is removed again.
    """
    limits = limits or Limits.from_env()
    display = name or Path(path).name
    checker = _inspect(path, limits, display)
    last = len(checker.plan) - 1  # the last entry to read
    if select is not None:
        last = _select(checker, select)
    members = checker.finish()
    dest = Path(dest)
    dest_existed = dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        writer = _Writer(dest, limits, display)
    except BaseException:
        if not dest_existed:
            _remove_quietly(dest)
        raise
    try:
        with _open_entries(path, display, limits) as (entries, _count):
            index = -1
            for index, entry in enumerate(entries):
                if index > last and select is not None:
                    index = len(checker.plan) - 1  # the rest is not wanted: stop reading
                    break
                if index >= len(checker.plan):
                    raise ArchiveError(f"{_q(display)} changed while it was being extracted")
                member = checker.plan[index]
                if member is None:
                    continue
                if _normalise(entry.name) != member.path.split("/"):
                    raise ArchiveError(f"{_q(display)} changed while it was being extracted")
                writer.write(member, entry, checker.modes[index])
            if index + 1 != len(checker.plan):
                raise ArchiveError(f"{_q(display)} changed while it was being extracted")
        writer.apply_folder_modes()
    except BaseException:
        writer.undo()
        if not dest_existed:
            _remove_quietly(dest)
        raise
    finally:
        writer.close()
    return members


def _select(checker: _Checker, select: Callable[[Member], bool]) -> int:
    """Keep in the plan only the members ``select`` accepts (and the files they are hard
    links to); returns the index of the last entry still to write (-1: none)."""
    index_of = {m.path: i for i, m in enumerate(checker.plan) if m is not None}
    keep = {i for i, m in enumerate(checker.plan) if m is not None and select(m)}
    for i in list(keep):
        member = checker.plan[i]
        if member is not None and member.kind == "hardlink" and member.link_target:
            keep.add(index_of[member.link_target])
    checker.plan = [m if i in keep else None for i, m in enumerate(checker.plan)]
    return max(keep, default=-1)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        remove_tree(path)


class _Writer:
    """Writes members below ``dest`` without ever following a link, recording what it
    created so a failed extraction can be undone."""

    def __init__(self, dest: Path, limits: Limits, display: str) -> None:
        self.dest = dest
        self.limits = limits
        self.display = display
        self.root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.created: list[tuple[str, bool]] = []  # (relative path, is a folder)
        self.folder_modes: dict[str, int] = {}
        self.total = 0

    def close(self) -> None:
        os.close(self.root_fd)

    def _folder_fd(self, parts: list[str], create: bool = True) -> int:
        """An fd for the folder ``parts`` below dest, creating missing folders; refuses
        to pass through anything that is not a real folder (a symlink, say)."""
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts):
                if create:
                    try:
                        # Folders not listed in the archive get the usual umask mode.
                        os.mkdir(part, 0o777, dir_fd=fd)
                        self.created.append(("/".join(parts[: i + 1]), True))
                    except FileExistsError:
                        pass
                try:
                    next_fd = os.open(
                        part,
                        os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=fd,
                    )
                except OSError as exc:
                    raise ArchiveError(
                        f"cannot extract into {_q('/'.join(parts[: i + 1]))}: it exists in "
                        "the destination and is not a folder"
                    ) from exc
                os.close(fd)
                fd = next_fd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def write(self, member: Member, entry: _Entry, mode: int) -> None:
        parts = member.path.split("/")
        if member.kind == "dir":
            os.close(self._folder_fd(parts))
            self.folder_modes[member.path] = mode | 0o700
            return
        parent_fd = self._folder_fd(parts[:-1])
        try:
            if member.kind == "file":
                self._write_file(member, entry, parent_fd, parts[-1], mode | 0o600)
            elif member.kind == "symlink":
                assert member.link_target is not None
                self._make(
                    lambda: os.symlink(member.link_target, parts[-1], dir_fd=parent_fd), member
                )
            else:
                assert member.link_target is not None
                target = member.link_target.split("/")
                source_fd = self._folder_fd(target[:-1], create=False)
                try:
                    self._make(
                        lambda: os.link(
                            target[-1],
                            parts[-1],
                            src_dir_fd=source_fd,
                            dst_dir_fd=parent_fd,
                            follow_symlinks=False,
                        ),
                        member,
                    )
                finally:
                    os.close(source_fd)
        finally:
            os.close(parent_fd)

    def _make(self, create: Callable[[], None], member: Member) -> None:
        try:
            create()
        except FileExistsError:
            raise self._exists(member) from None
        self.created.append((member.path, False))

    def _exists(self, member: Member) -> ArchiveError:
        return ArchiveError(
            f"cannot extract {_q(member.path)}: it already exists in the destination"
        )

    def _write_file(
        self, member: Member, entry: _Entry, parent_fd: int, name: str, mode: int
    ) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, 0o600, dir_fd=parent_fd)
        except FileExistsError:
            raise self._exists(member) from None
        self.created.append((member.path, False))
        assert entry.open_data is not None
        with os.fdopen(fd, "wb") as out:
            with _reading(self.display):
                data = entry.open_data()
            with data:
                written = 0
                while True:
                    with _reading(self.display):
                        chunk = data.read(_CHUNK)
                    if not chunk:
                        break
                    # Count what really comes out rather than trusting the headers: a
                    # crafted archive may decompress to far more than it declares.
                    written += len(chunk)
                    self.total += len(chunk)
                    if written > member.size:
                        raise ArchiveError(
                            f"archive member {_q(member.path)} holds more data than the "
                            f"{_size(member.size)} it declares"
                        )
                    if self.total > self.limits.max_total_bytes:
                        raise ArchiveError(
                            "archive contents add up to more than "
                            f"{_size(self.limits.max_total_bytes)}, the limit"
                        )
                    out.write(chunk)
            if written != member.size:
                raise ArchiveError(
                    f"archive member {_q(member.path)} holds {_size(written)} but declares "
                    f"{_size(member.size)}"
                )
            os.fchmod(out.fileno(), mode)

    def apply_folder_modes(self) -> None:
        """Give the folders the archive listed their permission bits, deepest first (done
        last, as a read-only folder could not have been filled). Folders that already
        existed in the destination are left alone."""
        ours = {path for path, is_dir in self.created if is_dir}
        for path in sorted(self.folder_modes, key=lambda p: p.count("/"), reverse=True):
            if path not in ours:
                continue
            fd = self._folder_fd(path.split("/"), create=False)
            try:
                os.fchmod(fd, self.folder_modes[path])
            finally:
                os.close(fd)

    def undo(self) -> None:
        for path, is_dir in reversed(self.created):
            full = self.dest / path
            if is_dir:
                _remove_quietly(full)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(full)
        self.created.clear()


# Packing -----------------------------------------------------------------------------
def pack_directory(src: Path | str) -> bytes:
    """A deterministic ``.tar.gz`` of the folder ``src`` with paths relative to it: the
    same tree always gives the same bytes (sorted entries, mtime 0, owner 0/0, no names,
    modes normalised to 0644/0755 as git does), so it can be hashed and cached."""
    src = Path(src)
    if not src.is_dir():
        raise NotADirectoryError(f"{src} is not a folder")
    paths: list[tuple[str, ...]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src).parts
        paths.extend((*rel, n) for n in dirnames + filenames)
    paths.sort()  # tuples: a folder sorts right before its own contents

    buf = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf,
    ):
        for parts in paths:
            full = src.joinpath(*parts)
            st = full.lstat()
            info = tarfile.TarInfo("/".join(parts))
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(full)
                info.mode = 0o777
                tf.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.type = tarfile.REGTYPE
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                info.size = st.st_size
                with open(full, "rb") as f:
                    tf.addfile(info, f)
            # Sockets, FIFOs and devices have no place in a package: left out.
    return buf.getvalue()
