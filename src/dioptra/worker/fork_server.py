"""The fork server: one interpreter with the ML stack imported, forked once per job.

Started by ``dioptra.worker.forks`` as ``python warm_boot.py --serve FD[,LISTEN_FD]
MODULE...`` (in the sandbox ``Sandbox.wrap_fork_server`` builds), which imports the
modules while BLAS and Arrow are told not to start threads. It checks that it is still
single-threaded (so a fork cannot inherit a lock held by another thread: the reason
forking a used interpreter can deadlock), reports ``ready <rss kB>`` (or ``unforkable
...``) on FD, its owner's connection, and then serves requests on it and, given a
listening socket, on each connection a worker of the same uid opens there (the embedded
workers share one fork server: ``fork_host.py``), which is told the same first. A request
is a JSON job (as ``warm_boot`` takes it, plus its sandbox and limits) with two
descriptors, the job's output pipe and a status pipe. For each it forks:

    server --fork--> leader (setsid: the job's process group; writes "pid N")
                       | new namespaces, its folder only, fresh /tmp (jail.py)
                       +--fork--> init (PID 1 of the job's namespace, mounts /proc)
                                    +--fork--> the job: limits, its uid, no capability,
                                               the job's env/cwd/argv, runs the script

and writes ``exit CODE`` to the status pipe when the leader ends. The job never runs in
the server itself, and nothing the server holds is reused: each job is a new fork of an
interpreter that never ran a job. Without a sandbox the leader runs the job itself.
When a connection closes (its worker has gone), the jobs asked for on it are killed; when
the owner's does, the server ends, and every job with it.

Only the standard library: this file runs before any job code, in every job's process.
"""

import json
import os
import select
import signal
import socket
import struct
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


def serve(sock_fd, listen_fd, state, preloaded, boot):
    """Serve jobs until the owner closes its connection (``listen_fd``: None, or where
    other workers connect; ``state``: what ``warm_boot`` read at start; ``preloaded``:
    the modules every job starts with)."""
    owner = socket.socket(fileno=sock_fd)
    listener = None if listen_fd is None else socket.socket(fileno=listen_fd)
    jail = boot._private_module("jail")
    threads = _thread_names()
    unforkable = f"unforkable {len(threads)} threads: {', '.join(threads)}" \
        if len(threads) > 1 else ""
    said = (unforkable or f"ready {boot._rss_kb()}").encode()
    owner.send(said)
    sys.stdout.flush()
    sys.stderr.flush()

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    clients = [owner]
    leaders = {}  # pid -> (its status descriptor, the connection that asked for it)
    while True:
        waited = [*clients, wake_r] + ([listener] if listener is not None else [])
        readable, _, _ = select.select(waited, [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
        _reap(leaders)
        if listener is not None and listener in readable:
            _accept(listener, clients, said)
        for client in [c for c in clients if c in readable]:
            message, fds, _, _ = socket.recv_fds(client, _MAX_REQUEST, 2)
            if not message:
                if client is owner:
                    return  # the owner is gone: all jobs die with us (parent-death signal)
                _drop(client, clients, leaders)
                continue
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
                    for sock in (*clients, listener):
                        if sock is not None:  # detached: never closes a reused number
                            os.close(sock.detach())
                    for fd in (wake_r, wake_w, *(fd for fd, _ in leaders.values())):
                        os.close(fd)
                    job = json.loads(message)
                    job["preloaded"] = preloaded
                    _leader(job, output, status, state, boot, jail)
                finally:
                    os._exit(125)
            os.close(output)
            leaders[pid] = (status, client)


def _accept(listener, clients, said):
    """A worker's connection: served if it runs as our uid (it is told what we are)."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    _, uid, _ = struct.unpack("3i", conn.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    if uid != os.getuid():
        conn.close()
        return
    try:
        conn.send(said)
    except OSError:
        conn.close()
        return
    clients.append(conn)


def _drop(client, clients, leaders):
    """A worker closed its connection (it stopped or died): its jobs go too, as they would
    with a fork server of its own. They are reaped as usual."""
    for pid, (_, asked_on) in leaders.items():
        if asked_on is client:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    clients.remove(client)
    client.close()


def _reap(leaders):
    while leaders:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        leader = leaders.pop(pid, None)
        if leader is not None:
            _say(leader[0], f"exit {os.waitstatus_to_exitcode(wait_status)}")
            os.close(leader[0])


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
