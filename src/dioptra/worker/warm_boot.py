"""The warm interpreter itself: import the heavy modules, wait for ONE job, run it, exit.

Started by ``dioptra.worker.warm`` as ``python .../warm_boot.py CONTROL_FD STATUS_FD
MODULE...`` inside the job's sandbox, as a fresh process (never a fork). It imports the
modules, writes ``ready <rss kB>`` to STATUS_FD, then blocks reading the job from
CONTROL_FD: a JSON object with the job's ``env``, ``cwd``, ``kind`` (``script`` or
``module``), ``target``, ``args`` and ``orig_argv``. It then becomes what ``python
SCRIPT ARGS`` / ``python -m MODULE ARGS`` would have been: environment, working
directory, ``sys.argv``, ``sys.path``, a fresh ``__main__``; the script runs in this
process, and it ends as a script ends (``sys.exit``, an uncaught exception, a signal,
atexit handlers, non-daemon threads), without the seconds Python spends tearing down
the preloaded modules (see ``_finish``).

Only the standard library at the top: nothing of this file may be in ``sys.modules`` that
a cold job would not have besides what was asked for.
"""

import json
import os
import sys


def _read_all(fd):
    chunks = []
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks)


def _rss_kb():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _base_path(startup_pythonpath):
    """sys.path as Python built it, without path[0] and the PYTHONPATH entries."""
    path = list(sys.path[1:])
    for entry in filter(None, startup_pythonpath.split(os.pathsep)):
        if entry in path:
            path.remove(entry)
    return path


def _threads_as_at_start(startup_threads):
    """torch sized its thread pool from OMP_NUM_THREADS when it was imported: a job that
    says otherwise gets what a fresh import would have given it."""
    wanted = os.environ.get("OMP_NUM_THREADS")
    torch = sys.modules.get("torch")
    if torch is None or wanted == startup_threads or not (wanted or "").isdigit():
        return
    if int(wanted) > 0:
        torch.set_num_threads(int(wanted))


def _trimmed(tb):
    """The traceback from the script's first frame on (as a cold run prints it)."""
    ours = {os.path.abspath(__file__)}
    import runpy

    ours.add(os.path.abspath(runpy.__file__))
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) in ours:
        tb = tb.tb_next
    return tb


def _run_script(path, args):
    import importlib.machinery
    import tokenize
    import types

    absolute = os.path.abspath(path)
    main = types.ModuleType("__main__")
    main.__file__ = absolute
    main.__cached__ = None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", absolute)
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    sys.argv = [path, *args]
    # As Python does for a script: its folder, symbolic links resolved.
    sys.path.insert(0, os.path.dirname(os.path.realpath(absolute)))
    with tokenize.open(absolute) as fh:  # honours a coding: line, as Python does
        source = fh.read()
    code = compile(source, absolute, "exec", dont_inherit=True)
    exec(code, main.__dict__)


def _run_module(name, args):
    import runpy
    import types

    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    sys.argv = ["-m", *args]
    sys.path.insert(0, os.getcwd())
    # What `python -m` itself calls: sets argv[0], runs in __main__'s namespace.
    runpy._run_module_as_main(name, alter_argv=True)


def _private_module(name):
    """A file beside this one, under a name no job's module can clash with."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
    spec = importlib.util.spec_from_file_location("_dioptra_" + name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def forget(preloaded):
    """Forget the modules imported after ``preloaded`` (the fork server's own, ours): a
    job's own ``signal.py`` must be imported as in a fresh ``python``, not found in
    ``sys.modules``. Our code keeps its references."""
    for name in set(sys.modules) - preloaded:
        del sys.modules[name]


# Imported with these, BLAS and Arrow start no threads, and the fork server stays forkable
# (the fork server gives each job its BLAS threads back).
_SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1",
                    "JE_ARROW_MALLOC_CONF": "background_thread:false"}


def _preload_without_threads(modules):
    saved = {name: os.environ.get(name) for name in _SINGLE_THREADED}
    os.environ.update(_SINGLE_THREADED)
    _preload(modules)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _startup_state():
    """What a fresh ``python`` of this interpreter's start would have: read before the
    job's environment replaces ours."""
    startup_pythonpath = os.environ.get("PYTHONPATH", "")
    return {
        "base": _base_path(startup_pythonpath),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        # What bash (`bash -c "python ..."`, as for a cold job) added to the environment.
        "from_bash": {name: os.environ[name] for name in ("SHLVL", "_", "PWD")
                      if name in os.environ},
    }


def _preload(modules):
    for module in modules:
        try:
            __import__(module)
        except Exception:  # noqa: BLE001 - the script's own import will say what is wrong
            pass
    import gc

    # What the imports made stays: the garbage collector need not scan it again and
    # again (each full collection would cost the job about a second).
    gc.collect()
    gc.freeze()


def _become(job, state):
    """Environment, working directory, sys.path and sys.orig_argv of a fresh ``python``
    started for ``job``."""
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    for name, value in state["from_bash"].items():
        os.environ.setdefault(name, job["cwd"] if name == "PWD" else value)
    pythonpath = [p for p in job["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [*pythonpath, *state["base"]]
    sys.orig_argv = list(job["orig_argv"])
    _threads_as_at_start(state["threads"])


def _run(kind, target, args):
    """Run the script or module as ``python`` would, then end this process."""
    try:
        if kind == "script":
            _run_script(target, args)
        else:
            _run_module(target, args)
    except KeyboardInterrupt:
        raise  # Python's own handling: the traceback, then death by SIGINT
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException as exc:  # noqa: BLE001 - printed as Python prints an uncaught one
        trimmed = _trimmed(exc.__traceback__)
        exc.__traceback__ = trimmed  # what Python prints (it ignores the third argument)
        sys.excepthook(type(exc), exc, trimmed)
        code = 1
    else:
        code = 0
    _finish(code)


def main():
    if sys.argv[1] == "--serve":
        del sys.path[0]
        state = _startup_state()
        _preload_without_threads(sys.argv[3:])
        preloaded = set(sys.modules)  # what the fork server adds, each job forgets
        owner, _, listener = sys.argv[2].partition(",")
        _private_module("fork_server").serve(int(owner), int(listener) if listener else None,
                                             state, preloaded, sys.modules[__name__])
        os._exit(0)  # its worker has gone: nothing of ours to tear down (torch takes a while)
    control_fd, status_fd = int(sys.argv[1]), int(sys.argv[2])
    modules = sys.argv[3:]
    del sys.path[0]  # this file's folder: not a place to import the modules from
    state = _startup_state()
    _preload(modules)
    try:
        os.write(status_fd, f"ready {_rss_kb()}\n".encode())
    except OSError:
        pass  # the worker stopped listening: its job came before we were ready
    os.close(status_fd)

    request = _read_all(control_fd)
    if not request:
        return  # not needed after all
    job = json.loads(request)
    _become(job, state)
    kind, target, args = job["kind"], job["target"], list(job["args"])
    del job, request, modules, state
    _run(kind, target, args)


def _exit_code(code):
    """The exit status Python gives ``sys.exit(code)`` (a message goes to stderr)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:  # noqa: BLE001
        pass
    return 1


def _finish(code):
    """End as Python's own shutdown would, minus tearing down the preloaded modules.

    That teardown takes seconds with torch and mlflow imported (a cold job pays it too,
    but only for what it imported), and nothing of the job depends on it: the steps that
    do are taken here in Python's order - wait for non-daemon threads, atexit handlers,
    the script's own objects finalised (files it left open are flushed and closed), the
    standard streams flushed.
    """
    import atexit
    import gc
    import threading

    try:
        threading._shutdown()
        atexit._run_exitfuncs()
        main = sys.modules.get("__main__")
        if main is not None:
            main.__dict__.clear()
        gc.collect()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - e.g. a closed pipe, as at a normal exit
                code = code or 120
        os._exit(code)

if __name__ == "__main__":
    main()
