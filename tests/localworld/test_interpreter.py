"""Where moto's Step Functions interpreter is made to answer as Step Functions does.

The workflow's Parallel states read ``$[0].job_id`` in their ResultSelector and are caught on a
``.sync`` job's ``States.TaskFailed``; moto answered the first with a list and turned the second
into ``States.Runtime``. Each check runs a small state machine through moto's interpreter with
the local world's patches installed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.transcode.plan import PlanAsset, build_plan
from localworld import interpreter
from localworld.clock import SimClock
from localworld.jsonpath import is_definite
from localworld.mediaconvert import JobFailure, MediaConvertStandIn

ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture
def mediaconvert():
    """A MediaConvert stand-in whose jobs on ``failing.mp4`` end in ERROR (as 1010 does)."""
    clock = SimClock(0.001)
    stand_in = MediaConvertStandIn(
        clock=clock,
        region="us-east-1",
        account="123456789012",
        fail_inputs=[JobFailure(match="failing.mp4")],
    )
    interpreter.activate(clock, stand_in)
    yield stand_in
    clock.cancel_all()


@pytest.fixture
def sfn(mediaconvert):
    interpreter.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def _run(sfn: Any, definition: dict[str, Any], given: Any) -> dict[str, Any]:
    arn = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(given))["executionArn"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.01)
    raise AssertionError("the execution did not end")


def _parallel(branches: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"Type": "Parallel", "Branches": branches, **fields}


def test_a_definite_path_after_an_index_names_one_value(sfn):
    # Given a Parallel whose ResultSelector reads a field of its first branch's output
    branch = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": _parallel(
                [branch, branch],
                ResultSelector={
                    "first.$": "$[0].job_id",
                    "ids.$": "States.Array($[0].job_id, $[1].job_id)",
                    "every.$": "$[*].job_id",
                },
                End=True,
            )
        },
    }
    # When it runs
    done = _run(sfn, definition, {"job_id": "1-abc"})
    # Then the definite path is the value (as on AWS), the wildcard still a list
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == {
        "first": "1-abc",
        "ids": ["1-abc", "1-abc"],
        "every": ["1-abc", "1-abc"],
    }


def test_a_branch_failing_with_a_states_error_is_caught_by_that_error(sfn):
    # Given a Parallel whose branch is a .sync MediaConvert job that ends in ERROR (the task
    # fails with States.TaskFailed), caught by that name
    plan = build_plan(
        PlanAsset("a1", "travel", "raw", "video/x/failing.mp4", 360, 2.0),
        processed_bucket="processed",
        deployment="test",
    )
    job = {
        "Type": "Task",
        "Resource": "arn:aws:states:::mediaconvert:createJob.sync",
        "Parameters": {
            "Role": "arn:aws:iam::123456789012:role/mediaconvert",
            "Settings": plan["settings"],
        },
        "End": True,
    }
    failing = {"StartAt": "Job", "States": {"Job": job}}
    waiting = {"StartAt": "W", "States": {"W": {"Type": "Pass", "End": True}}}
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": _parallel(
                [failing, waiting],
                Catch=[
                    {
                        "ErrorEquals": ["States.TaskFailed"],
                        "ResultPath": "$.error",
                        "Next": "Caught",
                    }
                ],
                End=True,
            ),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    # When it runs
    done = _run(sfn, definition, {})
    # Then the Catch saw the branch's error, not a States.Runtime of the interpreter
    assert done["status"] == "SUCCEEDED", done
    error = json.loads(done["output"])["error"]
    assert error["Error"] == "States.TaskFailed", error
    assert '"Status": "ERROR"' in error["Cause"] or '"Status":"ERROR"' in error["Cause"], error


@pytest.mark.parametrize(
    ("path", "definite"),
    [
        ("$[0].job_id", True),
        ("$.a.b[2].c", True),
        ("$[*].job_id", False),
        ("$.a[?(@.x == 1)].y", False),
        ("$..id", False),
        ("$.a[1:3]", False),
        ("$.a[0,1]", False),
    ],
)
def test_which_paths_are_definite(path, definite):
    assert is_definite(path) is definite
