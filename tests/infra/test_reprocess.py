"""The reprocess unit as synthesized: its workflow, the restore-completed rule, and its grants."""

from __future__ import annotations

import json
from typing import Any

import pytest

from constructs_lib.props import ConfigError
from constructs_lib.reprocess import ReprocessConfig
from tests.conftest import REPROCESS_MACHINE_PREFIX, pipeline_state_machine
from tests.infra.test_state_machine import _walk

ENVS = ("Dev", "Prod")


def _resources(synthesized: Any, env: str) -> dict[str, dict[str, Any]]:
    return synthesized.templates[f"{env}/Pipeline"]["Resources"]


def _machine(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    return pipeline_state_machine(resources, REPROCESS_MACHINE_PREFIX)


def _definition(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    body = _machine(resources)[1]["Properties"]["DefinitionString"]
    parts = body["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))


def _statements(resources: dict[str, dict[str, Any]], role_prefix: str) -> list[dict[str, Any]]:
    return [
        st
        for lid, r in resources.items()
        if r["Type"] == "AWS::IAM::Policy" and lid.startswith(role_prefix)
        for st in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


@pytest.mark.parametrize("env", ENVS)
def test_the_workflow_restores_only_when_archived_then_reanalyses_and_finalizes(synthesized, env):
    definition = _definition(_resources(synthesized, env))
    states = definition["States"]
    assert definition["StartAt"] == "Prepare reprocess"
    assert states["Prepare reprocess"]["Next"] == "Stored video archived?"
    choice = states["Stored video archived?"]
    assert choice["Choices"] == [
        {"Variable": "$.restore.needed", "BooleanEquals": True, "Next": "Restore stored video"}
    ]
    assert choice["Default"] == "Reanalyze"

    restore = states["Restore stored video"]
    assert restore["Resource"].endswith(":lambda:invoke.waitForTaskToken")
    assert restore["TimeoutSeconds"] == ReprocessConfig().restore_timeout_hours * 3600
    assert restore["Parameters"]["Payload"]["run.$"] == "$$.Execution.Name"
    assert restore["Next"] == "Reanalyze"

    reanalyze = states["Reanalyze"]
    assert reanalyze["Type"] == "Parallel" and reanalyze["ResultPath"] == "$.work.analysis"
    features = []
    for branch in reanalyze["Branches"]:
        # Each analysis runs only when asked for; otherwise Finalize keeps its last results.
        choice = branch["States"][branch["StartAt"]]
        assert choice["Type"] == "Choice"
        [rule] = choice["Choices"]
        feature = rule["Variable"].removeprefix("$.plan.rerun.")
        assert rule["BooleanEquals"] is True
        task, keep = branch["States"][rule["Next"]], branch["States"][choice["Default"]]
        assert task["Resource"].endswith(":lambda:invoke.waitForTaskToken")
        payload = task["Parameters"]["Payload"]
        assert payload["run.$"] == "$$.Execution.Name"  # new jobs, not the first run's
        assert payload["feature"] == feature
        assert keep == {"Type": "Pass", "Result": {"feature": feature, "kept": True}, "End": True}
        features.append(feature)
    assert sorted(features) == ["labels", "moderation", "segments"]
    assert reanalyze["Next"] == "Finalize"

    finalize = states["Finalize"]
    assert finalize["Parameters"]["Payload"]["run"] == {
        "name.$": "$$.Execution.Name",
        "kind": "reprocess",
    }
    assert finalize["Parameters"]["Payload"]["previous.$"] == "$.previous"
    # Prepare reads the whole execution input (the asset, and which features run again).
    assert "Payload.$" in states["Prepare reprocess"]["Parameters"]
    assert finalize["End"] is True
    assert states["Reprocess failed"] == {
        "Type": "Fail",
        "Error": "ReprocessFailed",
        "CausePath": "$.reason",
    }
    # Every step that can fail releases the asset and records why; none marks it FAILED.
    for name in ("Prepare reprocess", "Restore stored video", "Reanalyze", "Finalize"):
        (catch,) = states[name]["Catch"]
        assert catch == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.error",
            "Next": "Record reprocess failure",
        }, name
    assert "Mark failed" not in [name for name, _, _ in _walk(states)]


@pytest.mark.parametrize("env", ENVS)
def test_the_restore_completed_rule_reads_the_raw_buckets_video_prefix_only(synthesized, env):
    resources = _resources(synthesized, env)
    (rule,) = [
        r["Properties"]
        for lid, r in resources.items()
        if r["Type"] == "AWS::Events::Rule" and lid.startswith("ReprocessRestoreCompleted")
    ]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Restore Completed"]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "video/"}]}
    assert "RefDataLakeRaw" in json.dumps(pattern["detail"]["bucket"])
    (target,) = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("ReprocessRestored")
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 3


@pytest.mark.parametrize("env", ENVS)
def test_the_restore_function_may_restore_video_and_resume_only_its_own_runs(synthesized, env):
    resources = _resources(synthesized, env)
    machine_id, _ = _machine(resources)
    statements = _statements(resources, "ReprocessRestoreRole")
    restores = [st for st in statements if "s3:RestoreObject" in _actions(st)]
    (restore,) = restores
    assert _actions(restore) == ["s3:RestoreObject"]
    assert json.dumps(restore["Resource"]).endswith('"/video/*"]]}')
    (resume,) = [st for st in statements if "states:SendTaskSuccess" in _actions(st)]
    assert _actions(resume) == ["states:SendTaskSuccess"]
    assert resume["Resource"].endswith(f":stateMachine:{machine_id}-*")
    every = {a for st in statements for a in _actions(st)}
    assert not {a for a in every if a.startswith("s3:") and a != "s3:RestoreObject"}


@pytest.mark.parametrize("env", ENVS)
def test_the_api_may_start_and_describe_only_reprocess_runs(synthesized, env):
    resources = _resources(synthesized, env)
    machine_id, _ = _machine(resources)
    statements = _statements(resources, "ApiHandlerRole")
    (start,) = [st for st in statements if "states:StartExecution" in _actions(st)]
    assert start["Resource"] == {"Ref": machine_id}
    (describe,) = [st for st in statements if "states:DescribeExecution" in _actions(st)]
    assert describe["Resource"].endswith(f":execution:{machine_id}-*:*")
    every = {a for st in statements for a in _actions(st) if a.startswith("states:")}
    assert every == {"states:StartExecution", "states:DescribeExecution"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"restore_tier": "Expedited"}, "reprocess.restore_tier"),
        ({"restore_days": 0}, "reprocess.restore_days"),
        ({"restore_tier": "Bulk", "restore_timeout_hours": 24}, "reprocess.restore_timeout_hours"),
        ({"restore_timeout_hours": 6}, "reprocess.restore_timeout_hours"),
    ],
)
def test_a_bad_reprocess_setting_is_named(overrides: dict[str, Any], field: str):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        ReprocessConfig(**overrides)
