"""The upload starter: one execution per uploaded object, however often the event arrives."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.shared.errors import InvalidInput
from lambdas.trigger.handler import execution_name, parse_event, start

BUCKET = "raw-bucket"


def object_created(key: str, *, sequencer: str = "0065A1B2C3D4E5F601", size: int = 2048) -> dict:
    """An EventBridge "Object Created" event as S3 sends it (shape from the S3 documentation)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-26T06:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": key,
                "size": size,
                "etag": "b1946ac92492d2347c6235b4d2611184",
                "sequencer": sequencer,
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


@pytest.fixture
def state_machine():
    # Pin the plain backend: executions stay RUNNING, as a real one would while in progress.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(
            RoleName="sfn",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
        arn = sfn.create_state_machine(
            name="pipeline", definition=json.dumps(definition), roleArn=role
        )["stateMachineArn"]
        yield sfn, arn


def test_the_same_event_twice_starts_one_execution(state_machine):
    # Given an upload event delivered twice (EventBridge delivers at least once)
    sfn, arn = state_machine
    event = object_created("uploads/dash cam/clip 01.mp4")
    # When the starter handles both deliveries
    first = start(parse_event(event), state_machine_arn=arn, client=sfn)
    second = start(parse_event(event), state_machine_arn=arn, client=sfn)
    # Then one execution exists, started with the upload as input. (Step Functions answers a
    # repeat of a running execution with the same ARN, and a closed one with
    # ExecutionAlreadyExists, which the starter treats as done.)
    assert first["started"] is True
    assert second["name"] == first["name"]
    assert second.get("execution_arn", first["execution_arn"]) == first["execution_arn"]
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions] == [first["name"]]
    described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"]) == {
        "upload": {
            "bucket": BUCKET,
            "key": "uploads/dash cam/clip 01.mp4",
            "size": 2048,
            "etag": "b1946ac92492d2347c6235b4d2611184",
        }
    }


def test_a_repeat_after_the_run_ended_is_not_an_error():
    # Given the run for an upload has already ended: Step Functions then answers a start with
    # the same name ExecutionAlreadyExists (documented for closed Standard executions)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    request = parse_event(object_created("uploads/b.mp4"))
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline"
    with Stubber(sfn) as stubber:
        stubber.add_client_error(
            "start_execution",
            service_error_code="ExecutionAlreadyExists",
            http_status_code=400,
            expected_params={
                "stateMachineArn": arn,
                "name": request["name"],
                "input": json.dumps(request["input"]),
            },
        )
        # When the same event arrives again, Then nothing new starts and no error is raised
        result = start(request, state_machine_arn=arn, client=sfn)
    assert result == {"started": False, "name": request["name"]}


def test_other_step_functions_errors_propagate_so_eventbridge_retries():
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    request = parse_event(object_created("uploads/c.mp4"))
    with Stubber(sfn) as stubber:
        stubber.add_client_error("start_execution", service_error_code="ThrottlingException")
        with pytest.raises(ClientError, match="ThrottlingException"):
            start(
                request, state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:x", client=sfn
            )


def test_a_new_version_of_the_same_key_starts_a_new_run(state_machine):
    sfn, arn = state_machine
    start(
        parse_event(object_created("uploads/a.mp4", sequencer="01")),
        state_machine_arn=arn,
        client=sfn,
    )
    start(
        parse_event(object_created("uploads/a.mp4", sequencer="02")),
        state_machine_arn=arn,
        client=sfn,
    )
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 2


def test_execution_names_are_valid_and_deterministic():
    name = execution_name(BUCKET, "uploads/" + "x" * 900, "seq")
    assert name == execution_name(BUCKET, "uploads/" + "x" * 900, "seq")
    assert len(name) <= 80 and name.replace("-", "").isalnum()
    assert name != execution_name(BUCKET, "uploads/other.mp4", "seq")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"source": "aws.events", "detail": {}}, "Object Created"),
        ({"source": "aws.s3", "detail": {"bucket": {}, "object": {}}}, "bucket.name or object.key"),
        (object_created("video/commons/x.mp4"), "not under 'uploads/'"),
    ],
)
def test_other_events_are_rejected_with_a_clear_error(event, message):
    with pytest.raises(InvalidInput, match=message):
        parse_event(event)


def test_the_event_key_is_url_decoded_once():
    # Given S3's event for "uploads/a b+c.mp4" (form-encoded: space as +, + as %2B)
    event = object_created("uploads/a+b%2Bc.mp4")

    # When the trigger reads it
    upload = parse_event(event)["input"]["upload"]

    # Then the run names the real key
    assert upload["key"] == "uploads/a b+c.mp4"


def test_the_run_names_the_exact_version_the_event_is_about():
    # Given an event from the versioned raw bucket
    event = object_created("uploads/clip.mp4")
    event["detail"]["object"]["version-id"] = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"

    # When the trigger reads it
    request = parse_event(event)

    # Then the run's input carries that version and ETag, and its name is per version
    upload = request["input"]["upload"]
    assert upload["version_id"] == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert upload["etag"] == "b1946ac92492d2347c6235b4d2611184"
    other = object_created("uploads/clip.mp4")
    other["detail"]["object"]["version-id"] = "another-version"
    assert parse_event(other)["name"] != request["name"]
