"""The fork server: one interpreter with the ML stack imported, forked once per job.

Started by ``dioptra.worker.forks`` as ``python warm_boot.py --serve SOCKET_FD MODULE...``
(in the sandbox ``Sandbox.wrap_fork_server`` builds), which imports the modules while
BLAS and Arrow are told not to start threads. It checks that it is still single-threaded (so a
fork cannot inherit a lock held by another thread: the reason forking a used
interpreter can deadlock), reports ``ready <rss kB>`` (or ``unforkable ...``) and then
serves requests: a JSON job (as ``warm_boot`` takes it, plus its sandbox and limits)
with two descriptors, the job's output pipe and a status pipe. For each it forks:

    server --fork--> leader (setsid: the job's process group; writes "pid N")
                       | new namespaces, its folder only, fresh /tmp (jail.py)
                       +--fork--> init (PID 1 of the job's namespace, mounts /proc)
                                    +--fork--> the job: limits, its uid, no capability,
                                               the job's env/cwd/argv, runs the script

and writes ``exit CODE`` to the status pipe when the leader ends. The job never runs in
the server itself, and nothing the server holds is reused: each job is a new fork of an
interpreter that never ran a job. Without a sandbox the leader runs the job itself.

Only the standard library: this file runs before any job code, in every job's process.
"""

import json
import os
import select
import signal
import socket
import sys

_MAX_REQUEST = 1 << 20


def _thread_names():
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as fh:
                names.append(fh.read().strip())
        except OSError:
            pass
    return names


def serve(sock_fd, state, preloaded, boot):
    """Serve jobs until the worker closes the socket (``state``: what ``warm_boot`` read
    at start; ``preloaded``: the modules every job starts with)."""
    sock = socket.socket(fileno=sock_fd)
    jail = boot._private_module("jail")
    threads = _thread_names()
    unforkable = f"unforkable {len(threads)} threads: {', '.join(threads)}" \
        if len(threads) > 1 else ""
    sock.send((unforkable or f"ready {boot._rss_kb()}").encode())
    sys.stdout.flush()
    sys.stderr.flush()

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    leaders = {}  # pid -> its status descriptor
    while True:
        readable, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
        _reap(leaders)
        if sock not in readable:
            continue
        message, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST, 2)
        if not message:
            return  # the worker is gone: its jobs die with us (their parent-death signal)
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        output, status = fds
        threads = _thread_names()
        if unforkable or len(threads) > 1:  # then no fork: the worker runs the job cold
            _say(status, f"error {unforkable or f'{len(threads)} threads'}")
            os.close(status)
            os.close(output)
            continue
        pid = os.fork()
        if pid == 0:
            try:  # never back into this loop: the child is the job's, whatever happens
                os.close(sock.detach())  # detached: it can never close a reused number
                for fd in (wake_r, wake_w, *leaders.values()):
                    os.close(fd)
                job = json.loads(message)
                job["preloaded"] = preloaded
                _leader(job, output, status, state, boot, jail)
            finally:
                os._exit(125)
        os.close(output)
        leaders[pid] = status


def _reap(leaders):
    while leaders:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        status = leaders.pop(pid, None)
        if status is not None:
            _say(status, f"exit {os.waitstatus_to_exitcode(wait_status)}")
            os.close(status)


def _say(fd, text):
    try:
        os.write(fd, (text + "\n").encode())
    except OSError:
        pass


def _leader(job, output, status, state, boot, jail):
    """The job's process group leader (never returns)."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        jail.die_with_parent(signal.SIGKILL)  # the worker's fork server went: so do we
        _say(status, f"pid {os.getpid()}")
        os.close(status)
        box = job["sandbox"]
        if box is None:
            _job(job, output, state, boot, jail)
        # Stopping is for the job (SIGTERM reaches it through the process group); we go
        # when it has gone, or with SIGKILL.
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)
        jail.enter_namespaces(box["job_dir"], box["work_root"], box["tmp_size"],
                              tuple(box["keep"]))
        init = os.fork()
        if init == 0:
            _init(job, output, state, boot, jail)
        os.close(output)
        _, wait_status = os.waitpid(init, 0)
        os._exit(_shell_code(wait_status))
    except BaseException as exc:  # noqa: BLE001 - said in the job's log, the job fails
        _say(output, f"[dioptra] the job could not start in its sandbox: {exc}")
        os._exit(125)


def _init(job, output, state, boot, jail):
    """PID 1 of the job's namespace: /proc, the job, then its exit status. When it exits,
    the kernel kills whatever the job left running in the namespace."""
    try:
        jail.die_with_parent(signal.SIGKILL)
        jail.mount_proc()
        child = os.fork()
        if child == 0:
            for number in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _job(job, output, state, boot, jail)
        os.close(output)
        while True:
            pid, wait_status = os.wait()
            if pid == child:
                os._exit(_shell_code(wait_status))
    except BaseException as exc:  # noqa: BLE001
        _say(output, f"[dioptra] the job could not start in its sandbox: {exc}")
        os._exit(125)


def _shell_code(wait_status):
    """Exit code as bubblewrap and bash report it: 128 + N after death by signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def _job(job, output, state, boot, jail):
    """Become the job and run it (never returns)."""
    limits = job["limits"]
    jail.limit(limits["memory_bytes"], limits["processes"], limits["file_bytes"])
    if job["sandbox"] is not None:
        jail.become(job["sandbox"]["uid"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    boot._become(job, state)
    _restore_threads()
    _reseed()
    boot.forget(job["preloaded"])
    kind, target, args = job["kind"], job["target"], list(job["args"])
    del job, state, jail, limits
    try:
        boot._run(kind, target, args)
    except KeyboardInterrupt as exc:
        # What Python does with one at the top: the traceback, then death by SIGINT.
        sys.excepthook(type(exc), exc, boot._trimmed(exc.__traceback__))
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        os._exit(130)


def _restore_threads():
    """BLAS with as many threads as a fresh import under the job's environment gets (the
    server imported it single-threaded). Arrow's allocator keeps purging inline instead
    of in a background thread: the job's results do not depend on it."""
    if not any(name.startswith(("numpy", "scipy")) for name in sys.modules):
        return
    env = os.environ
    wanted = env.get("OPENBLAS_NUM_THREADS") or env.get("GOTO_NUM_THREADS") \
        or env.get("OMP_NUM_THREADS")
    count = int(wanted) if (wanted or "").isdigit() and int(wanted) > 0 \
        else len(os.sched_getaffinity(0))
    if count == 1:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=count, user_api="blas")


def _reseed():
    """numpy's global generator was seeded when the server imported it: each job gets
    fresh entropy, as a fresh import would (``random`` reseeds itself after a fork)."""
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()
