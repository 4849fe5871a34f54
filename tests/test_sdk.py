"""dioptra.sdk: the names v0 scripts and plugins import (reference §5; §7 items 53-62)."""

from __future__ import annotations

import logging
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from dioptra import pyplugs
from dioptra.sdk.exceptions import (
    ARTDependencyError,
    EstimatorPredictGenericPredTypeError,
    PrefectDependencyError,
    TensorflowDependencyError,
    UnknownPackageError,
)
from dioptra.sdk.exceptions.base import BaseDioptraError, BaseTaskPluginError
from dioptra.sdk.generics import estimator_predict, fit_estimator
from dioptra.sdk.utilities.contexts import plugin_dirs, redirect_print
from dioptra.sdk.utilities.decorators import require_package
from dioptra.sdk.utilities.logging import (
    StderrLogStream,
    StdoutLogStream,
    attach_stdout_stream_handler,
    clear_logger_handlers,
    configure_structlog,
    set_logging_level,
)
from dioptra.sdk.utilities.paths import clear_directory, set_path_ext


def test_53_plugin_dirs(tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("DIOPTRA_PLUGIN_DIR", f"relative/dir:{plugins}:{tmp_path / 'missing'}")
    before = list(sys.path)
    with plugin_dirs():
        assert sys.path[0] == before[0]
        assert sys.path[1:3] == [str(plugins), str(work)]
        assert "relative/dir" not in sys.path
        sys.path.append("/changed/inside")
    assert sys.path == before


def test_redirect_print(capsys):
    import io

    target = io.StringIO()
    with redirect_print(target):
        print("a", "b")
    with redirect_print():
        print("dropped")
    print("back")
    assert target.getvalue() == "a b"
    assert capsys.readouterr().out == "back\n"


def test_54_set_logging_level():
    logger = logging.getLogger(f"t{uuid.uuid4().hex}")
    set_logging_level(" warning ", logger)
    assert logger.level == logging.WARNING
    set_logging_level("critical", logger)
    assert logger.level == logging.INFO


def test_55_log_streams(caplog):
    with caplog.at_level(logging.INFO):
        with StdoutLogStream(False):
            print("a\nb")
            print("   ")
        with StdoutLogStream(True):
            print("a\nb")
        with StderrLogStream(False) as stream:
            sys.stderr.write("err\n")
    assert stream.level == logging.INFO
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [("STDOUT", 20, "a||b"), ("STDOUT", 20, "a\nb"), ("STDERR", 20, "err")]


@pytest.mark.parametrize("as_json", [False, True])
def test_56_attach_stdout_stream_handler(as_json, capsys):
    logger = logging.getLogger(f"t{uuid.uuid4().hex}")
    logger.propagate = False
    attach_stdout_stream_handler(as_json, logger)
    assert len(logger.handlers) == 1
    logger.warning("hello %s", "there")
    out = capsys.readouterr().out
    assert "hello there" in out
    if as_json:
        import json

        assert json.loads(out.splitlines()[-1])["event"] == "hello there"
    clear_logger_handlers(logger)
    assert logger.handlers == []
    configure_structlog()
    configure_structlog()  # only the first call counts; never raises


def test_57_require_package_raises_when_called():
    @require_package("nonexistent_pkg_xyz", exc_type=TensorflowDependencyError)
    def needs_tf(x):
        """Doc."""
        return x

    assert needs_tf.__name__ == "needs_tf" and needs_tf.__doc__ == "Doc."
    with pytest.raises(TensorflowDependencyError) as err:
        needs_tf(1)
    assert str(err.value) == 'The package "nonexistent_pkg_xyz" is required to use needs_tf'

    @require_package("json", exc_type=ARTDependencyError)
    def fine(x):
        return x

    assert fine(2) == 2


def test_58_exception_hierarchy():
    from dioptra.sdk.exceptions import task_engine

    for cls in (ARTDependencyError, PrefectDependencyError, TensorflowDependencyError,
                UnknownPackageError, EstimatorPredictGenericPredTypeError,
                BaseTaskPluginError, task_engine.StepError, task_engine.DioptraTypeError):
        assert issubclass(cls, BaseDioptraError)
    assert pyplugs.UnknownPackageError is UnknownPackageError


def test_59_generics_fall_back_to_fit_and_predict():
    class Model:
        def fit(self, x, y=None, **kwargs):
            return ("fit", x, y, kwargs)

        def predict(self, x, **kwargs):
            return ("predict", x, kwargs)

    assert fit_estimator(Model(), [1], [2], epochs=3) == ("fit", [1], [2], {"epochs": 3})
    assert fit_estimator(Model(), "iterator") == ("fit", "iterator", None, {})
    assert estimator_predict(Model(), [1], batch=2) == ("predict", [1], {"batch": 2})
    with pytest.raises(AttributeError):
        fit_estimator(object(), 1, 2)


class Special:
    """A model class with its own fit_estimator overload."""


def test_59_generics_overloads_dispatch_on_type():
    @fit_estimator.register
    def _fit_special(estimator: Special, x, y, **kwargs):
        return "special"

    assert fit_estimator(Special(), 1, 2) == "special"


def test_60_register_and_task_nout_return_the_function():
    def f():
        return 1

    assert pyplugs.task_nout(2)(f) is f and f._task_nout == 2


def test_62_paths(tmp_path):
    assert set_path_ext("a/b.tar.gz", "csv") == Path("a/b.csv")
    assert set_path_ext("x.csv", ".csv.gz") == Path("x.csv.gz")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    (tmp_path / "g").write_text("x")
    clear_directory(tmp_path)
    assert list(tmp_path.iterdir()) == []


PLUGIN = '''
from dioptra import pyplugs

@pyplugs.register
@pyplugs.task_nout(2)
def split(x):
    return x, x + 1

@pyplugs.register
def add(a, b):
    return a + b
'''


@pytest.fixture()
def plugin_module(tmp_path, monkeypatch):
    name = f"sdkplug_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_61_call_task_builds_prefect_nodes_inside_a_flow(plugin_module):
    prefect = pytest.importorskip("prefect", reason="the [v0] extra (Prefect 1.x)")
    from prefect import Flow

    with Flow("t") as flow:
        a, b = pyplugs.call_task("", plugin_module, "split", 3)
        total = pyplugs.call_task("", plugin_module, "add", a, b)
    assert isinstance(total, prefect.Task)
    state = flow.run()
    assert state.is_successful()
    assert state.result[total].result == 7
    # Outside a flow the same call runs the function.
    assert pyplugs.call_task("", plugin_module, "add", 1, 2) == 3


def test_61_without_prefect_call_task_calls_directly(plugin_module, monkeypatch):
    monkeypatch.setitem(sys.modules, "prefect", None)  # as if Prefect were not installed
    assert pyplugs.call_task("", plugin_module, "split", 1) == (1, 2)
    assert pyplugs.get_task("", plugin_module, "add")(2, 3) == 5
