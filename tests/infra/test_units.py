"""The unit contract (``constructs_lib/units.py``): one name, one declaration, nothing unread.

Each check reads both sides, the synthesized templates (what the construct set) and the handlers'
source (what the code reads and emits), so a variable set and never read, read and never set, a
metric emitted and never declared (or declared and never emitted), or a unit whose two folders
disagree fails here.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import constructs_lib
from constructs_lib.dead_letter_analysis import ANALYZER
from constructs_lib.dead_letter_analysis import HANDLER_FOLDER as OPERATIONS_FOLDER
from constructs_lib.discord import DISCORD, HANDLER_FOLDER
from constructs_lib.functions import FunctionSpec
from constructs_lib.summarize import SUMMARIZE
from constructs_lib.units import Unit

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
STACKS = ["Dev/Pipeline", "Prod/Pipeline"]
# Added by PipelineFunction for Powertools, the same for every function.
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
METRIC_CALLS = {"add_metric", "add_metric_with_dimensions"}


def unit_classes() -> dict[str, type[Unit]]:
    found: dict[str, type[Unit]] = {}
    for module in pkgutil.iter_modules(constructs_lib.__path__):
        loaded = importlib.import_module(f"constructs_lib.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, type) and issubclass(value, Unit) and value is not Unit:
                found[value.name] = value
    return found


def handler_folders() -> set[str]:
    return {
        path.name
        for path in LAMBDAS.iterdir()
        if (path / "__init__.py").is_file() and path.name != "shared"
    }


def sources(unit: str) -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(), str(path))
        for path in sorted((LAMBDAS / unit).rglob("*.py"))
    }


@pytest.fixture(scope="module")
def units(synthesized):
    return {stack: synthesized.stacks[stack].units for stack in STACKS}


# Handler folders of functions outside the Pipeline stack's units, with their specs: the
# monitoring stack's Discord notifier (deployed only when configured) and its dead-letter
# analyzer (it reads queues of both stacks, so it lives in the one that may depend on both).
OUTSIDE_UNITS = {HANDLER_FOLDER: (DISCORD,), OPERATIONS_FOLDER: (ANALYZER,)}
# Units the default configurations leave out (an environment turns them on), with their specs;
# tests/infra/test_summaries.py runs these checks on each with it on.
OPTIONAL_UNITS = {"summarize": (SUMMARIZE,)}


def test_every_capability_has_the_same_name_in_both_folders():
    classes = unit_classes()
    assert set(classes) == handler_folders() - set(OUTSIDE_UNITS)
    for name, cls in classes.items():
        assert cls.__module__ == f"constructs_lib.{name}"
        assert (ROOT / "constructs_lib" / f"{name}.py").is_file()


def test_every_unit_of_the_app_is_deployed_and_every_function_belongs_to_one(synthesized, units):
    for stack in STACKS:
        deployed = {unit.name for unit in units[stack]}
        assert deployed == set(unit_classes()) - set(OPTIONAL_UNITS), stack
        # Every function of the stack is a unit's (CDK's own singleton handlers aside), so every
        # function is alarmed on and drawn by the monitoring stack.
        resources = synthesized.templates[stack]["Resources"]
        handlers = {
            props["Properties"]["Handler"]
            for props in resources.values()
            if props["Type"] == "AWS::Lambda::Function"
            and props["Properties"]["Handler"].startswith("lambdas.")
        }
        declared = {fn.spec.handler for fn in units[stack].functions().values()}
        assert handlers == declared, stack


def _function_env(synthesized, stack: str, handler: str) -> dict[str, object]:
    matches = [
        resource["Properties"].get("Environment", {}).get("Variables", {})
        for resource in synthesized.templates[stack]["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler") == handler
    ]
    assert len(matches) == 1, handler
    return matches[0]


def test_every_variable_a_construct_sets_is_a_setting_its_handler_reads(synthesized, units):
    for stack in STACKS:
        for name, fn in units[stack].functions().items():
            env = _function_env(synthesized, stack, fn.spec.handler)
            runtime = set(dict(fn.spec.runtime_environment))
            assert set(env) - POWERTOOLS - runtime == set(fn.spec.settings.variables()), (
                stack,
                name,
            )


def _specs(units) -> list[FunctionSpec]:
    return [fn.spec for fn in units["Dev/Pipeline"].functions().values()]


def test_handlers_read_the_environment_only_through_settings():
    # Only lambdas/shared/settings.py touches os.environ; every handler parses its own settings.
    for path in LAMBDAS.rglob("*.py"):
        if path == LAMBDAS / "shared" / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) not in {("os", "environ"), ("os", "getenv")}, (
                    f"{path.relative_to(ROOT)}:{node.lineno} reads the environment directly"
                )


def test_each_handler_parses_its_settings_and_uses_every_field(units):
    for spec in _specs(units):
        _parses_and_uses(spec)


def _parses_and_uses(spec: FunctionSpec) -> None:
    module_path = LAMBDAS.joinpath(*spec.handler.split(".")[1:-1]).with_suffix(".py")
    module = ast.parse(module_path.read_text())
    # Either ``<Settings>.from_env()`` or ``Dependencies(<Settings>, ...)``, which calls it.
    parses = [
        node
        for node in ast.walk(module)
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "from_env"
            and isinstance(node.value, ast.Name)
            and node.value.id == spec.settings.__name__
        )
        or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Dependencies"
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == spec.settings.__name__
        )
    ]
    assert parses, f"{spec.handler} never parses {spec.settings.__name__} from its environment"
    unit = spec.handler.split(".")[1]
    used = {
        node.attr
        for tree in sources(unit).values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
    }
    unused = [f.name for f in dataclasses.fields(spec.settings) if f.name not in used]
    assert not unused, f"{spec.settings.__name__} fields never read in lambdas/{unit}: {unused}"


def _emitted(unit: str) -> set[str]:
    names: set[str] = set()
    for tree in sources(unit).values():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else None
            called = called or (node.func.id if isinstance(node.func, ast.Name) else None)
            if called in METRIC_CALLS:
                for keyword in node.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        names.add(keyword.value.value)
    return names


def test_every_metric_a_unit_emits_is_declared_and_every_declared_one_is_emitted(units):
    for unit in sorted(handler_folders()):
        declared = {
            metric
            for spec in _specs(units)
            if spec.handler.split(".")[1] == unit
            for metric in spec.metrics
        }
        outside = (*OUTSIDE_UNITS.get(unit, ()), *OPTIONAL_UNITS.get(unit, ()))
        declared |= {m for spec in outside for m in spec.metrics}
        assert _emitted(unit) == declared, unit


def test_monitoring_alarms_on_every_function_and_dead_letter_queue_of_the_units(synthesized, units):
    for env in ("Dev", "Prod"):
        resources = synthesized.templates[f"{env}/Monitoring"]["Resources"]
        descriptions = {
            r["Properties"].get("AlarmDescription", "")
            for r in resources.values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
        }
        pipeline_units = units[f"{env}/Pipeline"]
        for name in pipeline_units.functions():
            assert f"The {name} function reported errors" in descriptions
            assert f"The {name} function was throttled" in descriptions
        for name in pipeline_units.dead_letter_queues():
            assert f"Messages are waiting in the {name} dead-letter queue" in descriptions
        for alarm in pipeline_units.event_alarms().values():
            assert alarm.description in descriptions


def test_a_function_is_declared_with_its_own_settings_and_folder(synthesized, units):
    from lambdas.analysis.settings import StartSettings
    from lambdas.trigger.settings import TriggerSettings

    analysis = next(u for u in units["Dev/Pipeline"] if u.name == "analysis")
    spec = dataclasses.replace(analysis.start.spec, monitoring_name="Other", construct_id="X")
    with pytest.raises(TypeError, match="settings must be StartSettings, got TriggerSettings"):
        analysis.add_function(spec, TriggerSettings(state_machine_arn="arn"))
    foreign = dataclasses.replace(spec, handler="lambdas.finalize.handler.handler")
    with pytest.raises(ValueError, match="lives in its folder"):
        analysis.add_function(foreign, StartSettings("t", "topic", "role"))
    with pytest.raises(ValueError, match="does not emit 'LabelsFound'"):
        analysis.metric(analysis.start, "LabelsFound")
