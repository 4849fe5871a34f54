"""The per-job half of the sandbox for jobs forked from the fork server (``warm_boot``).

The fork server runs in a bubblewrap sandbox of its own that shows what every job may see
(the system, the Python installation, the workers' job folders) and keeps the few
capabilities needed for this step. Each forked job then, before any of its code runs:
takes new mount, PID, IPC and UTS namespaces; sees a fresh ``/tmp`` and ``/dev/shm``
and, of all the job folders, only its own; gets a ``/proc`` of its own PID namespace;
and becomes its own uid with no capability left (bounding set included) - what
``sandbox.Sandbox.wrap`` gives a job that starts cold.

Only the standard library (ctypes for the Linux calls Python 3.11 lacks): this file is
loaded by path inside the fork server, before the job's code runs.
"""

import ctypes
import os
import resource

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAP_VERSION_3 = 0x20080522
# Where the job's folder (and a Python under /tmp) wait while fresh mounts cover their
# places (made by bubblewrap in the fork server's root; see Sandbox.wrap_fork_server).
STAGE = "/.dioptra-stage"
HOSTNAME = b"dioptra-job"

_libc = ctypes.CDLL(None, use_errno=True)


class JailError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise JailError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           f"mount {target}")


def _b(text):
    return None if text is None else os.fsencode(text)


def die_with_parent(signal_number: int) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0), "prctl(PDEATHSIG)")


def enter_namespaces(job_dir: str, work_root: str, tmp_size: int,
                     keep: tuple[str, ...] = ()) -> None:
    """New namespaces; of the job folders only ``job_dir``; a fresh /tmp and /dev/shm.
    ``keep``: folders of the Python the job runs on that lie under /tmp or /dev/shm (a
    checkout or venv there): they show again, read-only, over the fresh ones.

    The PID namespace applies to the children of the caller: fork once more, and the
    child is the namespace's init (it then calls ``mount_proc``).
    """
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS),
           "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing of ours leaks to the server's
    # Parked where the fresh mounts below cannot cover them, then put back.
    parked = [(path, True) for path in keep] + [(job_dir, False)]  # the job's folder last
    _mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700")
    for index, (path, _) in enumerate(parked):
        os.mkdir(f"{STAGE}/{index}")
        _mount(path, f"{STAGE}/{index}", None, MS_BIND | MS_REC)
    size = f",size={tmp_size}" if tmp_size > 0 else ""
    for path in ("/tmp", "/dev/shm"):
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777{size}")
    # The other jobs' folders: under an empty tmpfs (already so when they lie in /tmp).
    if os.path.isdir(work_root):
        _mount("tmpfs", work_root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    for index, (path, read_only) in enumerate(parked):
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"{STAGE}/{index}", path, None, MS_BIND | MS_REC)
        if read_only:
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    _check(_libc.umount2(_b(STAGE), MNT_DETACH), "umount stage")
    _check(_libc.sethostname(HOSTNAME, len(HOSTNAME)), "sethostname")


def mount_proc() -> None:
    """A /proc that shows the job's own PID namespace (call as its init)."""
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def limit(memory_bytes: int, processes: int, file_bytes: int) -> None:
    """The job's limits (as ``prlimit`` sets them for a cold job; 0: none)."""
    for which, value in ((resource.RLIMIT_AS, memory_bytes),
                         (resource.RLIMIT_NPROC, processes),
                         (resource.RLIMIT_FSIZE, file_bytes)):
        if value > 0:
            resource.setrlimit(which, (value, value))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def become(uid: int | None) -> None:
    """Drop every capability for good (bounding and ambient sets too) and, given a uid,
    become it: what ``setpriv --reuid --regid --clear-groups --inh-caps=-all
    --bounding-set=-all`` does for a cold job. no_new_privs is already set (bubblewrap)."""
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "prctl(CAPBSET_DROP)")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl(AMBIENT)")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    # Changing uid made us undumpable (our /proc files root's); a cold job's exec makes it
    # dumpable again, as it is here now: nothing of the root we were is left to protect.
    _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(DUMPABLE)")
