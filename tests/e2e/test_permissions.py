"""Permissions proven locally: the check bites when one grant is missing from the templates.

Every world runs with permissions enforced (``localworld.iam``), so the other end-to-end files
already prove the synthesized grants suffice. Here each scenario deploys a deep copy of the
synthesized templates with one grant removed (a function's policy statement, the state machine's
``iam:PassRole``, a key-policy statement, Lambda's trust, an EventBridge permission), runs the
shortest thing that needs it, and expects the run to fail naming who, what and on which resource.
The grants are found by following the templates (handler -> role -> policy), never by logical id.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from localworld import World, WorldOptions
from localworld.iam import PermissionDenied
from localworld.media import PIXABAY_MP4_240, render
from localworld.runtime import LOG
from localworld.sources import variant
from tests.conftest import SynthesizedApp, pipeline_state_machine

PIPELINE = "Dev/Pipeline"
ONE_VIDEO = {"campaign": "tech", "batch_sizes": {"video": 1}}


# -- finding a grant in the templates --------------------------------------------------------------
def _resources(templates: dict, of_type: str) -> dict[str, dict]:
    return {lid: r for lid, r in templates[PIPELINE]["Resources"].items() if r["Type"] == of_type}


def _function(templates: dict, handler: str) -> tuple[str, dict]:
    (found,) = [
        (lid, r["Properties"])
        for lid, r in _resources(templates, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == handler
    ]
    return found


def _role_statements(templates: dict, role_logical_id: str) -> list[dict]:
    """The statements of the AWS::IAM::Policy attached to the role."""
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in _resources(templates, "AWS::IAM::Policy").values()
        if {"Ref": role_logical_id} in r["Properties"]["Roles"]
    ]
    return policy


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def _without(statements: list[dict], action: str) -> int:
    """Remove every statement granting ``action``; how many there were."""
    kept = [s for s in statements if action not in _actions(s)]
    removed = len(statements) - len(kept)
    statements[:] = kept
    return removed


def _broken(synthesized: SynthesizedApp) -> dict[str, Any]:
    return copy.deepcopy(synthesized.templates)


def _completion_key(templates: dict) -> str:
    """Logical id of the key encrypting the topic Rekognition publishes its notices to."""
    _lid, start = _function(templates, "lambdas.analysis.start.handler")
    topic = start["Environment"]["Variables"]["REKOGNITION_TOPIC_ARN"]["Ref"]
    key = templates[PIPELINE]["Resources"][topic]["Properties"]["KmsMasterKeyId"]
    return str(key["Fn::GetAtt"][0])


def _denied(err: pytest.ExceptionInfo[PermissionDenied], *, who: str, action: str, resource: str):
    """The one denial naming who, the action and the resource (the message names all three)."""
    hits = [
        d
        for d in err.value.denials
        if who in d.who and d.action == action and d.resource == resource
    ]
    assert hits, f"no denial of {action} on {resource} by {who} in:\n{err.value}"
    assert who in str(err.value) and action in str(err.value) and resource in str(err.value)
    return hits[0]


# -- the worlds --------------------------------------------------------------------------------------
# One world at a time in a process (moto's backends are shared): the first world serves the two
# tests of its class and is gone before the next, the others serve one test each.
@pytest.fixture(scope="class")
def no_config_grant_nor_upload_permission(synthesized: SynthesizedApp) -> Iterator[World]:
    """Resolve may not read the campaign parameter; EventBridge may neither invoke the upload
    starter nor start the state machine for the weekly rule."""
    templates = _broken(synthesized)
    _lid, resolve = _function(templates, "lambdas.resolve.handler.handler")
    role = resolve["Role"]["Fn::GetAtt"][0]
    assert _without(_role_statements(templates, role), "ssm:GetParameter") == 1
    starter, _props = _function(templates, "lambdas.trigger.handler.handler")
    permissions = _resources(templates, "AWS::Lambda::Permission")
    (gone,) = [
        lid
        for lid, r in permissions.items()
        if r["Properties"]["FunctionName"] == {"Fn::GetAtt": [starter, "Arn"]}
    ]
    del templates[PIPELINE]["Resources"][gone]
    (weekly,) = [
        r["Properties"]
        for r in _resources(templates, "AWS::Events::Rule").values()
        if str(r["Properties"].get("ScheduleExpression", "")).startswith("cron(")
    ]
    (target,) = weekly["Targets"]
    assert (
        _without(
            _role_statements(templates, target["RoleArn"]["Fn::GetAtt"][0]), "states:StartExecution"
        )
        == 1
    )
    with World(templates, WorldOptions(env="Dev")) as world:
        yield world


@pytest.fixture
def no_pass_role(synthesized: SynthesizedApp) -> Iterator[World]:
    templates = _broken(synthesized)
    _, machine = pipeline_state_machine(templates["Dev/Pipeline"]["Resources"])
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    # CDK's MediaConvertCreateJob grants iam:PassRole of the job role, to MediaConvert only (the
    # transcode unit's own unconditioned grant of it was redundant, and is gone).
    assert _without(_role_statements(templates, role), "iam:PassRole") == 1
    with World(templates, WorldOptions(env="Dev")) as world:
        yield world


@pytest.fixture
def completion_key_without_its_policy(synthesized: SynthesizedApp) -> Iterator[World]:
    """The completion topic's key policy loses its one statement (the account's, i.e. IAM's)."""
    templates = _broken(synthesized)
    key = templates[PIPELINE]["Resources"][_completion_key(templates)]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert len(statements) == 1 and statements[0]["Action"] == "kms:*"
    statements.clear()
    # The weekly rule starts the run (with its role): the active campaign, one video.
    config = {"active_campaign": "tech", "campaigns": ["tech"], "batch_sizes": {"video": 1}}
    with World(templates, WorldOptions(env="Dev", campaign_config=config)) as world:
        yield world


# -- a function's grant, and a function's resource policy ----------------------------------------
class TestResolveGrantAndUploadPermissionRemoved:
    def test_without_its_grant_resolve_cannot_read_the_campaign_and_the_run_fails(
        self,
        no_config_grant_nor_upload_permission: World,
    ) -> None:
        world = no_config_grant_nor_upload_permission
        # When a run starts, and resolve's role has no ssm:GetParameter
        arn = world.start({}, name="no-config-grant")
        with pytest.raises(PermissionDenied) as err:
            world.wait(arn)

        # Then the run failed, and the denial names the function, the action and the parameter
        resolve = world.function_name("lambdas.resolve.handler.handler")
        parameter = f"arn:aws:ssm:{world.options.region}:{world.options.account}:parameter/"
        denial = _denied(
            err,
            who=f"function {resolve}",
            action="ssm:GetParameter",
            resource=parameter + world.config_parameter.lstrip("/"),
        )
        assert denial.reason == "no identity-based policy allows it"
        (execution,) = [e for e in world.executions() if e["name"] == "no-config-grant"]
        assert execution["status"] == "FAILED"
        history = world.history(arn)
        assert any(
            "ssm:GetParameter" in json.dumps(e, default=str)
            for e in history
            if "Failed" in e["type"]
        )

    def test_without_its_lambda_permission_eventbridge_cannot_start_an_upload_run(
        self,
        no_config_grant_nor_upload_permission: World,
    ) -> None:
        world = no_config_grant_nor_upload_permission
        # Given the uploads rule's target has no AWS::Lambda::Permission for events.amazonaws.com
        event = world.upload(
            "uploads/no-permission.mp4", render(variant(PIXABAY_MP4_240, "no-permission", 1, 200.0))
        )
        starts_before = len(LOG.of("trigger.handler.handler"))

        # When the object's event is delivered, EventBridge may not invoke the starter
        with pytest.raises(PermissionDenied) as err:
            world.deliver_event(event)

        # Then nothing ran, and the denial names the service, the action and the function
        starter = world.function_name("lambdas.trigger.handler.handler")
        arn = f"arn:aws:lambda:{world.options.region}:{world.options.account}:function:{starter}"
        denial = _denied(
            err, who="events.amazonaws.com", action="lambda:InvokeFunction", resource=arn
        )
        assert "events.amazonaws.com" in denial.reason
        assert len(LOG.of("trigger.handler.handler")) == starts_before

    def test_without_start_execution_the_weekly_rule_cannot_start_a_run(
        self, no_config_grant_nor_upload_permission: World
    ) -> None:
        world = no_config_grant_nor_upload_permission
        runs_before = len(world.executions())

        # When the weekly schedule fires, its target role has no states:StartExecution
        with pytest.raises(PermissionDenied) as err:
            world.fire_rule("TriggersWeekly")

        # Then no run started, and the denial names the rule's role, the action and the machine
        denial = _denied(
            err,
            who="EventBridge rule",
            action="states:StartExecution",
            resource=world.state_machine_arn,
        )
        assert "TriggersWeekly" in denial.who and "StateMachineEventsRole" in denial.who
        assert len(world.executions()) == runs_before


# -- the state machine's iam:PassRole -----------------------------------------------------------------
def test_without_pass_role_the_state_machine_cannot_submit_the_transcode(
    no_pass_role: World,
) -> None:
    world = no_pass_role
    assert world.mediaconvert is not None
    # When a run with one video starts
    arn = world.start(ONE_VIDEO, name="no-pass-role")
    with pytest.raises(PermissionDenied) as err:
        world.wait(arn)

    # Then CreateJob was refused for the role it passes: the denial names the state machine's
    # role, iam:PassRole and the MediaConvert role, the Transcode task failed with MediaConvert's
    # 403, and no job was created
    _, machine = pipeline_state_machine(world.templates["Dev/Pipeline"]["Resources"])
    (media_role,) = [
        lid
        for lid, role in _resources(world.templates, "AWS::IAM::Role").items()
        if "mediaconvert.amazonaws.com"
        in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]
    state_machine = world.state_machine_arn.rsplit(":", 1)[-1]
    denial = _denied(
        err,
        who=f"state machine {state_machine}",
        action="iam:PassRole",
        resource=world.resolver.attrs[(media_role, "Arn")],
    )
    assert machine["Properties"]["RoleArn"]["Fn::GetAtt"][0] in denial.who
    failures = [
        e["taskFailedEventDetails"] for e in world.history(arn) if e["type"] == "TaskFailed"
    ]
    assert any(f["error"] == "MediaConvert.ForbiddenException" for f in failures), failures
    assert any("iam:PassRole" in f.get("cause", "") for f in failures), failures
    assert world.mediaconvert.jobs == {}


# -- a key-policy statement ----------------------------------------------------------------------------
def test_without_its_key_policy_rekognition_cannot_publish_to_the_completion_topic(
    completion_key_without_its_policy: World,
) -> None:
    world = completion_key_without_its_policy
    assert world.rekognition is not None and world.permissions is not None
    callbacks_before = len(LOG.of("analysis.callback.handler"))

    # When the weekly schedule starts a run (EventBridge, as the rule's role) with one video, and
    # it gets as far as analysis
    (started,) = world.fire_rule("TriggersWeekly")
    assert started["error"] is None, started
    with pytest.raises(PermissionDenied) as err:
        world.wait(started["execution_arn"])

    # Then Rekognition's role (allowed by IAM) was refused by the key policy, so no completion
    # notice reached the callback (the heartbeat sweep had to recover the jobs)
    key = world.resolver.attrs[(_completion_key(world.templates), "Arn")]
    denial = _denied(err, who="Rekognition Video", action="kms:GenerateDataKey", resource=key)
    assert "key policy" in denial.reason
    assert world.rekognition.notices
    assert len(LOG.of("analysis.callback.handler")) == callbacks_before

    # And everything else acted as itself: each invocation with its function's own role, and
    # each of them had its calls evaluated
    lam = world.client("lambda")
    invoked = {c.function_name: c.role_arn for c in LOG.calls if c.role_arn}
    assert invoked, "no invocation ran with role credentials"
    for name, role in invoked.items():
        assert lam.get_function(FunctionName=name)["Configuration"]["Role"] == role
        assert any(name in who for who in world.permissions.allowed), name


# -- a trust policy ------------------------------------------------------------------------------------
def test_a_role_lambda_may_not_assume_fails_the_deploy(synthesized: SynthesizedApp) -> None:
    # Given resolve's role trusts EC2 instead of Lambda
    templates = _broken(synthesized)
    _lid, resolve = _function(templates, "lambdas.resolve.handler.handler")
    role = resolve["Role"]["Fn::GetAtt"][0]
    (trust,) = templates[PIPELINE]["Resources"][role]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    trust["Principal"] = {"Service": "ec2.amazonaws.com"}

    # When the stacks deploy, CreateFunction refuses it (nothing runs)
    with pytest.raises(PermissionDenied) as err, World(templates, WorldOptions(env="Dev")):
        pass

    (denial,) = err.value.denials
    assert denial.action == "sts:AssumeRole"
    assert "CreateFunction Dev-Pipeline-Resolve" in denial.who
    assert f":role/Dev-Pipeline-{role}-" in denial.resource
    assert "cannot be assumed by Lambda" in denial.reason
    assert "lambda.amazonaws.com may not assume it" in denial.reason


# -- customer-managed keys: a role's key grant, and a key policy's service statement -------------
STATEFUL = "Dev/Stateful"


def _data_key(templates: dict) -> str:
    """Logical id of the stateful stack's data key (buckets, catalog, secret)."""
    (key,) = [
        lid for lid, r in templates[STATEFUL]["Resources"].items() if r["Type"] == "AWS::KMS::Key"
    ]
    return key


@pytest.fixture
def plan_without_the_data_key(synthesized: SynthesizedApp) -> Iterator[World]:
    """The transcode plan's role keeps its catalog grant but loses the catalog key's."""
    templates = _broken(synthesized)
    _lid, plan = _function(templates, "lambdas.transcode.plan.handler")
    statements = _role_statements(templates, plan["Role"]["Fn::GetAtt"][0])
    assert _without(statements, "kms:Decrypt") == 1
    assert any("dynamodb:UpdateItem" in _actions(s) for s in statements)
    with World(templates, WorldOptions(env="Dev")) as world:
        yield world


def test_without_the_catalog_keys_grant_the_plan_cannot_mark_the_asset_and_the_run_fails(
    plan_without_the_data_key: World,
) -> None:
    world = plan_without_the_data_key
    # When a run with one video reaches the plan step (its first catalog write)
    arn = world.start(ONE_VIDEO, name="no-data-key")
    with pytest.raises(PermissionDenied) as err:
        world.wait(arn)

    # Then DynamoDB refused it for the table's customer-managed key: the denial names the plan
    # function, kms:Decrypt and the data key, and no transcode job was submitted
    plan = world.function_name("lambdas.transcode.plan.handler")
    key = world.resolver.attrs[(_data_key(world.templates), "Arn")]
    denial = _denied(err, who=f"function {plan}", action="kms:Decrypt", resource=key)
    assert "no identity-based policy allows it" in denial.reason
    assert world.mediaconvert is not None and world.mediaconvert.jobs == {}


def test_a_log_group_whose_key_logs_may_not_use_fails_the_deploy(
    synthesized: SynthesizedApp,
) -> None:
    # Given the pipeline key's policy without its CloudWatch Logs statement
    templates = _broken(synthesized)
    (key_id,) = {
        r["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
        for r in _resources(templates, "AWS::Logs::LogGroup").values()
    }
    statements = templates[PIPELINE]["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    logs = [s for s in statements if s.get("Sid") == "CloudWatchLogsOfThisStack"]
    assert len(logs) == 1
    statements.remove(logs[0])

    # When the stacks deploy, CloudWatch Logs refuses the first log group (nothing runs)
    with pytest.raises(PermissionDenied) as err, World(templates, WorldOptions(env="Dev")):
        pass

    (denial,) = err.value.denials
    assert denial.action.startswith("kms:")
    assert "CreateLogGroup Dev-Pipeline-" in denial.who
    region = WorldOptions(env="Dev").region
    assert f"logs.{region}.amazonaws.com may not use it" in denial.reason
