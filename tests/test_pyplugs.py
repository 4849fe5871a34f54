"""dioptra.pyplugs: registration, lazy import, lookup, calls and errors."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest

from dioptra import pyplugs

ALPHA = '''
"""Alpha plugin module."""
from dioptra import pyplugs

@pyplugs.register
def first(x, y=1):
    """Add two numbers.

    More text.
    """
    return x + y

@pyplugs.register()
def second(package, plugin, func):
    return (package, plugin, func)

@pyplugs.register(sort_value=-1)
def earliest():
    return "earliest"

@pyplugs.register
@pyplugs.task_nout(2)
def pair(seed):
    return seed, seed + 1

def helper():
    return "not registered"
'''


@pytest.fixture()
def plugin_package(tmp_path, monkeypatch):
    """A fresh plugin package on sys.path: alpha (plugins), beta (none), broken."""

    name = f"plugpkg_{uuid.uuid4().hex[:10]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "alpha.py").write_text(textwrap.dedent(ALPHA))
    (root / "beta.py").write_text("VALUE = 1\n")
    (root / "broken.py").write_text("import a_module_that_does_not_exist_xyz\n")
    (root / "_private.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_plugins_are_imported_lazily(plugin_package):
    assert f"{plugin_package}.alpha" not in sys.modules
    assert pyplugs.call(plugin_package, "alpha", "first", 2, y=3) == 5
    assert f"{plugin_package}.alpha" in sys.modules


def test_names_lists_plugin_modules(plugin_package):
    assert pyplugs.names(plugin_package) == ["alpha", "beta", "broken"]
    # listing does not import anything
    assert f"{plugin_package}.broken" not in sys.modules


def test_funcs_are_ordered_by_sort_value_then_registration(plugin_package):
    assert pyplugs.funcs(plugin_package, "alpha") == ["earliest", "first", "second", "pair"]
    assert pyplugs.funcs(plugin_package, "beta") == []


def test_get_defaults_to_first_function(plugin_package):
    assert pyplugs.get(plugin_package, "alpha")() == "earliest"
    assert pyplugs.call(plugin_package, "alpha") == "earliest"


def test_register_returns_function_unchanged(plugin_package):
    module = __import__(f"{plugin_package}.alpha", fromlist=["first"])
    assert pyplugs.get(plugin_package, "alpha", "first") is module.first
    assert module.helper() == "not registered"
    with pytest.raises(pyplugs.UnknownPluginFunctionError):
        pyplugs.get(plugin_package, "alpha", "helper")


def test_info_describes_the_function(plugin_package):
    record = pyplugs.info(plugin_package, "alpha", "first")
    assert record.package_name == plugin_package
    assert record.plugin_name == "alpha"
    assert record.func_name == "first"
    assert record.description == "Add two numbers."
    assert "More text." in record.doc
    assert record.module_doc == "Alpha plugin module."
    assert pyplugs.info(plugin_package, "alpha").func_name == "earliest"


def test_call_passes_arguments_named_like_its_own_parameters(plugin_package):
    result = pyplugs.call(plugin_package, "alpha", "second", package="p", plugin="q", func="r")
    assert result == ("p", "q", "r")


def test_task_helpers_need_no_prefect(plugin_package):
    task = pyplugs.get_task(plugin_package, "alpha", "pair")
    assert task._task_nout == 2
    assert task(4) == (4, 5)
    assert pyplugs.call_task(plugin_package, "alpha", "pair", seed=1) == (1, 2)


def test_exists(plugin_package):
    assert pyplugs.exists(plugin_package, "alpha")
    assert pyplugs.exists(plugin_package, "beta")
    assert not pyplugs.exists(plugin_package, "gamma")
    assert not pyplugs.exists("no_such_package_xyz", "alpha")


def test_errors(plugin_package):
    with pytest.raises(pyplugs.UnknownPackageError):
        pyplugs.call("no_such_package_xyz", "alpha", "first")
    with pytest.raises(pyplugs.UnknownPackageError):
        pyplugs.names("no_such_package_xyz.sub")
    with pytest.raises(pyplugs.UnknownPluginError):
        pyplugs.call(plugin_package, "gamma", "first")
    with pytest.raises(pyplugs.UnknownPluginFunctionError):
        pyplugs.call(plugin_package, "alpha", "nope")
    with pytest.raises(pyplugs.UnknownPluginFunctionError):
        pyplugs.get(plugin_package, "beta")
    # a missing dependency inside a plugin is reported as itself, not as a missing plugin
    with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist_xyz"):
        pyplugs.call(plugin_package, "broken", "anything")
    assert issubclass(pyplugs.UnknownPluginError, pyplugs.PyPlugsError)


def test_factories(plugin_package):
    call = pyplugs.call_factory(plugin_package)
    assert call("alpha", "first", 1) == 2
    assert pyplugs.funcs_factory(plugin_package)("alpha")[0] == "earliest"
    assert pyplugs.names_factory(plugin_package)() == ["alpha", "beta", "broken"]
    assert pyplugs.exists_factory(plugin_package)("alpha")
    assert pyplugs.get_factory(plugin_package)("alpha", "first")(1, 1) == 2
    assert pyplugs.info_factory(plugin_package)("alpha", "first").func_name == "first"


def test_builtin_collection_is_registered():
    assert pyplugs.names("dioptra_builtins.random") == ["rng", "sample"]
    seed, rng = pyplugs.call("dioptra_builtins.random", "rng", "init_rng", seed=7)
    assert seed == 7
    draw = pyplugs.get("dioptra_builtins.random", "sample", "draw_random_integer")
    value = draw(rng)
    _, rng_again = pyplugs.call("dioptra_builtins.random", "rng", "init_rng", seed=7)
    assert value == draw(rng_again)
    assert pyplugs.get_task("dioptra_builtins.random", "rng", "init_rng")._task_nout == 2
    assert "init_torch" in pyplugs.funcs("dioptra_builtins.backend_configs", "torch")
