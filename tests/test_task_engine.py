"""dioptra.task_engine: validation, types, references, ordering and execution (in-process).

The numbers in the test names are the items of the compatibility checklist in the
reference (task-engine.md §7).
"""

from __future__ import annotations

import copy
import logging
import sys
import textwrap
import uuid

import pytest
import yaml

from dioptra.sdk.exceptions.base import BaseTaskEngineError
from dioptra.sdk.exceptions.pyplugs import (
    UnknownPackageError,
    UnknownPluginError,
    UnknownPluginFunctionError,
)
from dioptra.sdk.exceptions.task_engine import (
    MissingGlobalParametersError,
    NonIterableTaskOutputError,
    OutputNotFoundError,
    StepError,
    StepNotFoundError,
    StepReferenceCycleError,
    TaskPluginNotFoundError,
    UnresolvableReferenceError,
)
from dioptra.task_engine import task_engine, type_registry, util
from dioptra.task_engine.issues import IssueSeverity, IssueType, ValidationIssue
from dioptra.task_engine.type_validation import compatible, infer_type
from dioptra.task_engine.validation import is_valid, validate

PLUGINS = '''
from dioptra import pyplugs

CALLS = []

@pyplugs.register
def record(*args, **kwargs):
    CALLS.append((args, kwargs))
    return args[0] if args else kwargs

@pyplugs.register
def pair(x=1):
    CALLS.append(("pair", x))
    return x, x + 1

@pyplugs.register
def gen():
    yield 1
    yield 2

@pyplugs.register
def boom(x=None):
    raise RuntimeError("plugin failed")

@pyplugs.register
def clash(func, package, plugin):
    return (func, package, plugin)

def undecorated():
    return 1
'''


@pytest.fixture()
def plugins(tmp_path, monkeypatch):
    """A top-level plugin module ``<name>`` (task IDs ``<name>.record`` etc.)."""
    name = f"teplug_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGINS))
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__(name)
    yield sys.modules[name]
    sys.modules.pop(name, None)


def desc_for(mod, graph, tasks=None, parameters=None, types=None):
    base = {
        "rec": {"plugin": f"{mod.__name__}.record",
                "inputs": [{"name": "x", "type": "any", "required": False},
                           {"name": "y", "type": "any", "required": False}],
                "outputs": {"out": "any"}},
        "pair": {"plugin": f"{mod.__name__}.pair",
                 "inputs": [{"name": "x", "type": "integer", "required": False}],
                 "outputs": [{"a": "integer"}, {"b": "integer"}]},
        "gen": {"plugin": f"{mod.__name__}.gen", "outputs": [{"a": "integer"}, {"b": "integer"}]},
        "boom": {"plugin": f"{mod.__name__}.boom",
                 "inputs": [{"name": "x", "type": "any", "required": False}]},
        "none": {"plugin": f"{mod.__name__}.record"},
    }
    desc = {"tasks": tasks or base, "graph": graph}
    if parameters is not None:
        desc["parameters"] = parameters
    if types is not None:
        desc["types"] = types
    return desc


def messages(desc):
    return [str(i) for i in validate(desc)]


BASIC = {"tasks": {"t": {"plugin": "a.b", "inputs": [{"x": "integer"}]}},
         "graph": {"s": {"t": [1]}}}


def with_(desc, **changes):
    new = copy.deepcopy(desc)
    new.update(changes)
    return new


# -- issues model ------------------------------------------------------------------------

def test_issue_str_and_repr():
    issue = ValidationIssue(IssueType.SEMANTIC, IssueSeverity.WARNING, "m")
    assert str(issue) == "semantic.warning: m"
    assert repr(issue) == "ValidationIssue(IssueType.SEMANTIC, IssueSeverity.WARNING, 'm')"


# -- schema and structure ----------------------------------------------------------------

def test_14_missing_graph_or_extra_key_is_one_schema_issue():
    for desc in ({"tasks": BASIC["tasks"]}, with_(BASIC, extra=1)):
        issues = validate(desc)
        assert len(issues) == 1 and issues[0].type is IssueType.SCHEMA
        assert str(issues[0]).startswith("schema.error: In root level of experiment description")


def test_14_empty_file_is_a_schema_issue():
    issues = validate(None)
    assert [str(i) for i in issues] == [
        "schema.error: In root level of experiment description: None is not of type 'object'"
    ]


def test_15_empty_tasks_or_graph_are_schema_errors():
    assert validate(with_(BASIC, tasks={}))[0].type is IssueType.SCHEMA
    assert "graph section" in messages(with_(BASIC, graph={}))[0]


def test_16_plugin_id_forms():
    def task(plugin):
        return with_(BASIC, tasks={"t": {"plugin": plugin, "inputs": [{"x": "integer"}]}})

    assert validate(task("ab"))[0].type is IssueType.SCHEMA
    assert messages(task("abc")) == [
        'semantic.error: In task "t": plugin ID requires at least one ".": abc'
    ]
    assert messages(task("a..b")) == [
        'semantic.error: In task "t": all plugin module components must be of non-zero'
        " length: a..b"
    ]
    assert validate(task("a.b")) == []


def test_17_short_form_input_called_name_fails_the_schema():
    desc = with_(BASIC, tasks={"t": {"plugin": "a.b", "inputs": [{"name": "string"}]}})
    issues = validate(desc)
    assert issues and all(i.type is IssueType.SCHEMA for i in issues)
    assert 'task plugin "t" inputs' in str(issues[0])
    long_form = with_(BASIC, tasks={"t": {"plugin": "a.b",
                                          "inputs": [{"name": "name", "type": "integer"}]}})
    assert validate(long_form) == []


def test_18_single_output_mapping_has_one_key():
    desc = with_(BASIC, tasks={"t": {"plugin": "a.b", "inputs": [{"x": "integer"}],
                                     "outputs": {"a": "integer", "b": "integer"}}})
    issues = validate(desc)
    assert issues[0].type is IssueType.SCHEMA
    assert "Must be exactly one of: Single output, List of outputs" in str(issues[0])


def test_19_parameter_bare_mapping_fails_object_default_is_fine():
    assert validate(with_(BASIC, parameters={"p": {"a": 1}}))[0].type is IssueType.SCHEMA
    assert validate(with_(BASIC, parameters={"p": {"default": {"a": 1}}})) == []


def test_20_step_with_only_dependencies_satisfies_two_alternatives():
    desc = with_(BASIC, graph={"s": {"t": [1]}, "s2": {"dependencies": ["s"]}})
    (issue,) = validate(desc)
    assert issue.type is IssueType.SCHEMA
    assert "Content satisfied more than one alternative" in issue.message
    assert issue.message.startswith('In step "s2": ')


def test_21_short_form_with_two_task_keys():
    desc = with_(BASIC, graph={"s": {"t": [1], "u": [2]}})
    (msg,) = messages(desc)
    assert msg.startswith('semantic.error: In step "s": illegal task invocation:')


def test_22_mixed_form_calls_with_args_and_kwargs(plugins):
    desc = desc_for(plugins, {"s": {"task": "rec", "args": 1, "kwargs": {"y": 2}}})
    assert validate(desc) == []
    task_engine.run_experiment(desc, {})
    assert plugins.CALLS == [((1,), {"y": 2})]


# -- names and references ----------------------------------------------------------------

def test_23_parameter_and_step_name_clash_skips_reference_checks():
    desc = with_(BASIC, parameters={"s": 1}, graph={"s": {"t": ["$nope"]}})
    assert messages(desc) == [
        "semantic.error: Some parameters and steps have the same name: s"
    ]


def test_24_dotted_names():
    desc = with_(BASIC, parameters={"p.q": 1})
    (msg,) = messages(desc)
    assert msg.startswith('semantic.error: Parameter name "p.q" contains a dot.')
    desc = with_(BASIC, graph={"s.t": {"t": [1]}})
    assert messages(desc)[0].startswith('semantic.error: Step name "s.t" contains a dot.')
    typed = with_(BASIC, types={"np.ndarray": None},
                  tasks={"t": {"plugin": "a.b", "inputs": [{"x": "np.ndarray"}]}},
                  graph={"s": {"t": ["$p"]}}, parameters={"p": {"type": "np.ndarray"}})
    assert validate(typed) == []


def test_25_unresolvable_and_bad_output_references(plugins):
    desc = desc_for(plugins, {"s": {"rec": ["$nope"]}})
    assert messages(desc) == ['semantic.error: In step "s": unresolvable reference: nope']
    desc = desc_for(plugins, {"s": {"rec": ["$p.x"]}}, parameters={"p": 1})
    assert messages(desc) == [
        'semantic.error: In step "s": reference "p.x": references to parameters may not'
        " include an output name: x"
    ]
    desc = desc_for(plugins, {"a": {"rec": [1]}, "s": {"rec": ["$a.zz"]}})
    assert messages(desc) == [
        'semantic.error: In step "s": reference "a.zz": unrecognized output: zz'
    ]


def test_26_bare_step_reference_needs_exactly_one_output(plugins):
    desc = desc_for(plugins, {"a": {"none": []}, "s": {"rec": ["$a"]}})
    assert "referenced step produces no output" in messages(desc)[0]
    desc = desc_for(plugins, {"a": {"pair": []}, "s": {"rec": ["$a"]}})
    assert "an output name must be given" in messages(desc)[0]


def test_27_escapes(plugins):
    desc = desc_for(plugins, {"s": {"rec": {"x": ["$$x", "$", "a$b"]}}})
    assert validate(desc) == []
    task_engine.run_experiment(desc, {})
    assert plugins.CALLS == [((), {"x": ["$x", "$", "a$b"]})]
    assert str(infer_type("$$x", resolve=lambda r: pytest.fail("not a reference"))) == "string"


def test_28_references_nested_in_lists_and_dicts_not_keys(plugins):
    desc = desc_for(plugins, {
        "s": {"rec": {"x": {"k": ["$p", {"$p": "$p"}]}}},
    }, parameters={"p": 5})
    task_engine.run_experiment(desc, {})
    assert plugins.CALLS == [((), {"x": {"k": [5, {"$p": 5}]}})]


def test_29_dependencies():
    desc = with_(BASIC, graph={"s": {"t": [1], "dependencies": ["zz"]}})
    assert messages(desc) == ['semantic.error: In step "s": unrecognized dependency step(s): zz']
    desc = with_(BASIC, graph={"r": {"t": [1]}, "s": {"t": [1], "dependencies": "r"}})
    assert validate(desc) == []


def test_30_cycles(plugins):
    desc = desc_for(plugins, {"a": {"rec": ["$b"]}, "b": {"rec": ["$a"]}})
    (msg,) = messages(desc)
    assert msg in ("semantic.error: Step cycle detected: a > b > a",
                   "semantic.error: Step cycle detected: b > a > b")
    desc = desc_for(plugins, {"s": {"rec": ["$s"]}})
    assert messages(desc) == ["semantic.error: Step cycle detected: s > s"]
    with pytest.raises(StepReferenceCycleError):
        task_engine.run_experiment(desc, {})
    assert plugins.CALLS == []


def test_31_order_follows_references_then_dependencies():
    graph = {"s1": {"t": [1]}, "s2": {"t": ["$s1"]},
             "s3": {"t": ["$s2"], "dependencies": ["s1"]}, "s4": {"t": [1]}}
    assert util.get_sorted_steps(graph) == ["s1", "s4", "s2", "s3"]
    graph = {"b": {"t": [1], "dependencies": "a"}, "a": {"t": [1]}}
    assert util.get_sorted_steps(graph) == ["a", "b"]


def test_reference_hidden_under_a_task_key_is_still_checked(plugins):
    # v0 skipped keys other than args/kwargs of nested mappings with a "task" key.
    desc = desc_for(plugins, {"s": {"rec": {"x": {"task": "t", "other": "$nope"}}}})
    assert messages(desc) == ['semantic.error: In step "s": unresolvable reference: nope']


# -- tasks and invocation ----------------------------------------------------------------

def test_32_invocation_errors():
    tasks = {"t": {"plugin": "a.b", "inputs": [{"x": "integer"},
                                               {"name": "y", "type": "integer",
                                                "required": False}]}}
    pre = 'semantic.error: In step "s": illegal task invocation: '
    cases = {
        "s": {"t": [1, 2, 3]},
    }
    assert messages({"tasks": tasks, "graph": cases}) == [
        pre + "there are more positional args given than task parameters: 3 > 2"
    ]
    assert messages({"tasks": tasks, "graph": {"s": {"t": {"x": 1, "z": 2}}}}) == [
        pre + "keyword arg does not correspond to a task parameter: z"
    ]
    assert messages({"tasks": tasks, "graph": {"s": {"task": "t", "args": [1],
                                                       "kwargs": {"x": 1}}}}) == [
        pre + 'task parameter "x" is assigned a value both as a keyword arg and positional'
        " arg #1"
    ]
    assert messages({"tasks": tasks, "graph": {"s": {"t": {"y": 1}}}}) == [
        pre + "required task parameter is not assigned a value: x"
    ]
    assert validate({"tasks": tasks, "graph": {"s": {"t": [1]}}}) == []


def test_33_null_is_one_positional_none():
    desc = {"tasks": {"t": {"plugin": "a.b"}}, "graph": {"s": {"t": None}}}
    assert "more positional args given than task parameters: 1 > 0" in messages(desc)[0]
    assert validate({"tasks": {"t": {"plugin": "a.b"}}, "graph": {"s": {"t": []}}}) == []


def test_34_duplicate_names_and_undefined_types():
    tasks = {"t": {"plugin": "a.b", "inputs": [{"x": "integer"}, {"x": "integer"}],
                   "outputs": [{"o": "nope"}, {"o": "integer"}]}}
    found = messages({"tasks": tasks, "graph": {"s": {"t": [1, 2]}}})
    assert 'semantic.error: In task "t": some input names are repeated: x' in found
    assert 'semantic.error: In task "t": some output names are repeated: o' in found
    assert 'semantic.error: In task "t": output "o" has undefined type: nope' in found
    desc = with_(BASIC, parameters={"p": {"type": "nope"}})
    assert messages(desc) == ['semantic.error: In global parameter "p": undefined type: nope']


# -- types -------------------------------------------------------------------------------

def typed(arg_type, value, types=None):
    return {"types": types or {}, "tasks": {"t": {"plugin": "a.b", "inputs": [{"x": arg_type}]}},
            "graph": {"s": {"t": [value]}}}


def test_35_scalar_literals():
    assert is_valid(typed("integer", 1)) and is_valid(typed("number", 1))
    for bad in (True, 1.5):
        (issue,) = validate(typed("integer", bad))
        assert issue.type is IssueType.TYPE
        assert issue.message.startswith('in step "s": in positional parameter #1: Inferred')
    assert not is_valid(typed("string", None))


def test_36_any_output_to_integer_input_is_a_type_error():
    desc = {"tasks": {"src": {"plugin": "a.b", "outputs": {"o": "any"}},
                      "t": {"plugin": "a.c", "inputs": [{"x": "integer"}]},
                      "u": {"plugin": "a.d", "inputs": [{"x": "any"}]}},
            "graph": {"a": {"src": []}, "s": {"t": ["$a"]}, "v": {"u": [{"k": [1, None]}]}}}
    (issue,) = validate(desc)
    assert issue.type is IssueType.TYPE and "Found any; expected integer" in issue.message


def test_37_lists_and_tuples():
    types = {"ints": {"list": "integer"}, "pair": {"tuple": ["integer", "string"]}}
    assert is_valid(typed("ints", [1, 2], types))
    assert is_valid(typed("pair", [1, "x"], types))
    assert not is_valid(typed("ints", [1, "x"], types))
    assert is_valid(typed("nums", [1, 2.5], {"nums": {"list": "number"}}))


def test_38_named_structures_are_distinct():
    types = {"a": {"list": "integer"}, "b": {"list": "integer"}}
    desc = {"types": types, "parameters": {"p": {"type": "a"}},
            "tasks": {"t": {"plugin": "a.b", "inputs": [{"x": "b"}]}},
            "graph": {"s": {"t": ["$p"]}}}
    assert not is_valid(desc)


def test_39_mappings():
    enum = {"m": {"mapping": {"a": "integer"}}}
    kv = {"m": {"mapping": ["string", "number"]}}
    assert is_valid(typed("m", {"a": 1}, enum)) and is_valid(typed("m", {"a": 1}, kv))
    assert is_valid(typed("m", {}, kv)) and not is_valid(typed("m", {}, enum))
    assert not is_valid(typed("m", {"a": 1, "b": 2}, enum))
    assert is_valid(typed("m", {1: "a", 2: "b"}, {"m": {"mapping": ["integer", "string"]}}))


def test_40_unions_and_subtypes():
    reg = type_registry.build_type_registry({
        "S": None, "S2": {"is_a": "S"}, "u": {"union": ["integer", "string"]},
    })
    assert compatible(reg["integer"], reg["u"])
    assert not compatible(reg["u"], reg["integer"])
    assert compatible(reg["u"], reg["u"])
    assert compatible(reg["S2"], reg["S"]) and not compatible(reg["S"], reg["S2"])
    assert not compatible(reg["any"], reg["S"]) and compatible(reg["S"], reg["any"])
    assert compatible(reg["integer"], reg["number"])
    assert not compatible(reg["number"], reg["integer"])


def test_41_bad_default_skips_step_checks():
    desc = with_(BASIC, parameters={"p": {"type": "integer", "default": "x"}},
                 graph={"s": {"t": ["not an int"]}})
    assert messages(desc) == [
        "type.error: In global parameter \"p\": default value 'x' is incompatible with its"
        " declared type: integer"
    ]


def test_42_duplicate_union_members_warn_only():
    desc = typed("u", 1, {"u": {"union": ["integer", "integer", "string"]}})
    (issue,) = validate(desc)
    assert issue.severity is IssueSeverity.WARNING
    assert str(issue) == ('semantic.warning: In definition of type "u": duplicate member'
                          " types encountered: integer")
    assert is_valid(desc)


def test_43_undefined_type_reference_and_cycles():
    desc = typed("integer", 1, {"a": {"list": "zz"}})
    assert messages(desc) == [
        'semantic.error: In definition of type "a": reference to undefined type: zz'
    ]
    desc = typed("integer", 1, {"a": {"list": "b"}, "b": {"list": "a"}})
    (msg,) = messages(desc)
    assert msg.startswith("semantic.error: Type reference cycle detected: ")


def test_44_unbuildable_types_are_reported_not_raised():
    for types in ({"string": None}, {"m": {"mapping": ["number", "integer"]}},
                  {"l": {"list": "integer"}, "s": {"is_a": "l"}}):
        issues = validate(typed("integer", 1, types))
        assert issues and not is_valid(typed("integer", 1, types)), types
        assert all(i.severity is IssueSeverity.ERROR for i in issues)


def test_type_str_forms():
    reg = type_registry.build_type_registry({
        "l": {"list": "integer"}, "t": {"tuple": ["integer", "string"]},
        "m": {"mapping": {"a": "integer"}}, "kv": {"mapping": ["string", "number"]},
    })
    assert str(reg["l"]) == "l: LIST[integer]"
    assert str(reg["t"]) == "t: TUPLE[integer, string]"
    assert str(reg["m"]) == "m: MAPPING[{'a': integer}]"
    assert str(reg["kv"]) == "kv: MAPPING[string, number]"
    order = type_registry.get_sorted_types({"a": {"tuple": ["b", "integer"]}, "b": None})
    assert sorted(order) == ["a", "b", "integer"] and order[-1] == "a"


# -- execution ---------------------------------------------------------------------------

def test_45_list_outputs_unpack(plugins, caplog):
    desc = desc_for(plugins, {"p": {"pair": [3]}, "s": {"rec": ["$p.b"]},
                              "g": {"gen": []}, "h": {"rec": ["$g.a"]}})
    task_engine.run_experiment(desc, {})
    assert ((4,), {}) in plugins.CALLS and ((1,), {}) in plugins.CALLS
    desc["tasks"]["pair"]["outputs"] = [{"a": "integer"}, {"b": "integer"}, {"c": "integer"}]
    desc["graph"] = {"p": {"pair": [3]}, "s": {"rec": ["$p.c"]}}
    with caplog.at_level(logging.WARNING), pytest.raises(OutputNotFoundError) as err:
        task_engine.run_experiment(desc, {})
    assert str(err.value) == 'In step "s": Unrecognized output of step "p": c'
    assert 'Different numbers of outputs and output definitions for step "p": 2 != 3' in (
        caplog.text
    )


def test_46_non_iterable_list_output(plugins):
    desc = desc_for(plugins, {"s": {"task": "rec", "args": [1]}})
    desc["tasks"]["rec"]["outputs"] = [{"a": "any"}]
    with pytest.raises(NonIterableTaskOutputError) as err:
        task_engine.run_experiment(desc, {})
    assert str(err.value).startswith('In step "s": ')


def test_47_single_output_keeps_tuple_whole(plugins):
    desc = desc_for(plugins, {"p": {"pair": [3]}, "s": {"rec": ["$p"]}})
    desc["tasks"]["pair"]["outputs"] = {"both": "any"}
    task_engine.run_experiment(desc, {})
    assert plugins.CALLS[-1] == (((3, 4),), {})


def test_48_runtime_error_types():
    for err in (StepNotFoundError("x", "s"), OutputNotFoundError("x", "o", "s"),
                UnresolvableReferenceError("r", "s"), TaskPluginNotFoundError("t", "s")):
        assert isinstance(err, StepError) and isinstance(err, BaseTaskEngineError)
        assert str(err).startswith('In step "s": ')
    graph = {"s": {"t": [1]}}
    with pytest.raises(TaskPluginNotFoundError, match='In step "s": Task plugin not found: t'):
        task_engine.run_experiment({"tasks": {}, "graph": graph}, {})


def test_49_parameters_defaults_and_unused(plugins, caplog):
    desc = desc_for(plugins, {"s": {"rec": ["$a", "$b"]}},
                    parameters={"a": 1, "b": {"default": [1, 2]}})
    params = {"zz": 3}
    with caplog.at_level(logging.WARNING):
        task_engine.run_experiment(desc, params)
    assert params == {"a": 1, "b": [1, 2]}
    assert "Some global parameters were unused: zz" in caplog.text


def test_13_missing_parameters_raise_before_any_step(plugins):
    desc = desc_for(plugins, {"s": {"rec": ["$a"]}},
                    parameters={"a": {"type": "integer"}, "b": {"type": "string"}})
    with pytest.raises(MissingGlobalParametersError) as err:
        task_engine.run_experiment(desc, {})
    assert err.value.parameter_names == ["a", "b"]
    assert plugins.CALLS == []


def test_50_plugin_lookup_errors(plugins):
    name = plugins.__name__
    for plugin, error in ((f"{name}.undecorated", UnknownPluginFunctionError),
                          (f"{name}_pkg.nomod.f", UnknownPackageError),
                          ("json.nomod_xyz.f", UnknownPluginError)):
        desc = {"tasks": {"t": {"plugin": plugin}}, "graph": {"s": {"t": []}}}
        with pytest.raises(error):
            task_engine.run_experiment(desc, {})


def test_51_plugin_coordinates():
    assert task_engine._plugin_coords("a.b") == ("", "a", "b")
    assert task_engine._plugin_coords("x.y.z.f") == ("x.y", "z", "f")
    from dioptra.sdk.exceptions.task_engine import IllegalPluginNameError
    with pytest.raises(IllegalPluginNameError):
        task_engine._plugin_coords("ab")


def test_kwargs_named_like_calls_own_parameters_reach_the_plugin(plugins):
    desc = {"tasks": {"c": {"plugin": f"{plugins.__name__}.clash",
                            "inputs": [{"func": "any"}, {"package": "any"}, {"plugin": "any"}],
                            "outputs": {"o": "any"}},
                      "r": {"plugin": f"{plugins.__name__}.record", "inputs": [{"x": "any"}]}},
            "graph": {"s": {"c": {"func": 1, "package": 2, "plugin": 3}}, "t": {"r": ["$s"]}}}
    assert validate(desc) == []
    task_engine.run_experiment(desc, {})
    assert plugins.CALLS == [(((1, 2, 3),), {})]


def test_12_plugin_exception_stops_the_run(plugins):
    desc = desc_for(plugins, {"a": {"boom": []}, "b": {"rec": [1], "dependencies": "a"}})
    with pytest.raises(RuntimeError, match="plugin failed"):
        task_engine.run_experiment(desc, {})
    assert plugins.CALLS == []


def test_11_run_does_not_validate(plugins):
    desc = desc_for(plugins, {"s": {"pair": ["not an int"]}})
    assert not is_valid(desc)
    with pytest.raises(TypeError):  # the plugin, not the engine, rejects it
        task_engine.run_experiment(desc, {})
    assert plugins.CALLS == [("pair", "not an int")]


def test_reference_example_validates():
    text = """
types:
  rng:
  size3: {tuple: [integer, integer, integer]}
  param_map: {mapping: [string, number]}
parameters:
  seed: -1
  image_size: {type: size3, default: [28, 28, 1]}
  model_name: {type: string}
tasks:
  init_rng:
    plugin: dioptra_builtins.random.rng.init_rng
    inputs:
      - name: seed
        type: integer
        required: false
    outputs: [{seed: integer}, {rng: rng}]
  draw:
    plugin: dioptra_builtins.random.sample.draw_random_integer
    inputs: [{rng: rng}]
    outputs: {value: integer}
  log_params:
    plugin: dioptra_builtins.tracking.mlflow.log_parameters
    inputs: [{parameters: param_map}]
graph:
  rng0: {init_rng: $seed}
  ds_seed: {draw: [$rng0.rng]}
  log:
    log_params:
      parameters: {entry_point_seed: $rng0.seed, dataset_seed: $ds_seed}
    dependencies: [rng0]
"""
    assert validate(yaml.safe_load(text)) == []
