"""The story starter (one render per manifest version) and the failure recorder (nothing left)."""

from __future__ import annotations

import json

import pytest

from lambdas.shared.projects import read_status, write_status
from lambdas.stories.failed import record_failure
from lambdas.stories.settings import StoriesSettings
from lambdas.stories.starter import execution_name, parse_event
from tests.lambdas.conftest import client

BUCKET = "projects-test"


def manifest_event(key: str, version: str | None = "3HL4kqtJlcpXroDTDmJ") -> dict:
    obj = {"key": key, "size": 512, "etag": "b1946ac9", "sequencer": "0065A1B2C3D4E5F601"}
    if version:
        obj["version-id"] = version
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"version": "0", "bucket": {"name": BUCKET}, "object": obj},
    }


def test_one_manifest_version_is_one_execution_name():
    first = parse_event(manifest_event("projects/harbour-1/manifest.json"), BUCKET)
    again = parse_event(manifest_event("projects/harbour-1/manifest.json"), BUCKET)
    newer = parse_event(manifest_event("projects/harbour-1/manifest.json", "v2"), BUCKET)
    assert first == again
    assert first["name"] != newer["name"]
    assert first["name"].startswith("story-harbour-1-") and len(first["name"]) <= 80
    assert first["input"] == {
        "project_id": "harbour-1",
        "manifest": {
            "bucket": BUCKET,
            "key": "projects/harbour-1/manifest.json",
            "version_id": "3HL4kqtJlcpXroDTDmJ",
        },
    }
    assert execution_name("harbour-1", BUCKET, "k", "v") == execution_name(
        "harbour-1", BUCKET, "k", "v"
    )


def test_the_starter_starts_once_and_refuses_other_objects(aws_mock, monkeypatch):
    from lambdas.stories import starter

    sfn = client("stepfunctions")
    iam = client("iam")
    role = iam.create_role(
        RoleName="sfn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    arn = sfn.create_state_machine(
        name="Stories",
        definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
        roleArn=role,
    )["stateMachineArn"]
    monkeypatch.setenv("PROJECTS_BUCKET", BUCKET)
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    starter._dependencies.cache_clear()
    monkeypatch.setattr(starter, "_sfn", lambda: sfn)

    class Context:
        function_name, memory_limit_in_mb = "starter", 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:starter"
        aws_request_id = "req"

    event = manifest_event("projects/harbour-1/manifest.json")
    first = starter.handler(event, Context())
    # EventBridge delivered twice: Step Functions answers the running execution again (same
    # name, same input), and a finished one with ExecutionAlreadyExists; never a second run.
    again = starter.handler(event, Context())
    assert first["started"] is True
    assert again["name"] == first["name"]
    assert again.get("execution_arn", first["execution_arn"]) == first["execution_arn"]
    sfn.stop_execution(executionArn=first["execution_arn"])
    assert starter.handler(event, Context())["started"] is False
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    nested = starter.handler(manifest_event("projects/a-b/c/manifest.json"), Context())
    assert nested["started"] is False and "is not a manifest" in nested["refused"]
    starter._dependencies.cache_clear()


@pytest.fixture
def projects(aws_mock) -> str:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return BUCKET


def test_a_failure_records_the_reason_and_takes_back_only_its_own_run(projects):
    s3 = client("s3")
    settings = StoriesSettings(projects_bucket=projects)
    write_status(s3, projects, "harbour-1", {"status": "WAITING_FOR_UPLOADS", "owner": "alice"})
    # An earlier render's video stays current; this run wrote a newer one, then failed.
    earlier = s3.put_object(
        Bucket=projects, Key="videos/harbour-1_final_video.mp4", Body=b"old",
        Metadata={"run": "run-1"},
    )  # fmt: skip
    s3.put_object(
        Bucket=projects, Key="videos/harbour-1_final_video.mp4", Body=b"new",
        Metadata={"run": "run-2"},
    )  # fmt: skip
    s3.put_object(
        Bucket=projects, Key="videos/harbour-1_final_video.json", Body=b"{}",
        Metadata={"run": "run-2"},
    )  # fmt: skip
    for name in ("plan.json", "chunk-00000.mp4", "focus/0000.jpg"):
        s3.put_object(Bucket=projects, Key=f"projects/harbour-1/work/run-2/{name}", Body=b"x")
    s3.put_object(Bucket=projects, Key="projects/harbour-1/images/a.jpg", Body=b"keep")
    error = {
        "Error": "ManifestError",
        "Cause": json.dumps(
            {"errorType": "ManifestError", "errorMessage": "segment 2 (images/b.jpg): missing"}
        ),
    }
    answer = record_failure(
        {"project_id": "harbour-1", "run": "run-2", "error": error}, settings, s3
    )
    assert answer == {"reason": "ManifestError: segment 2 (images/b.jpg): missing"}
    status = read_status(s3, projects, "harbour-1")
    assert status["status"] == "FAILED" and status["reason"] == answer["reason"]
    assert status["owner"] == "alice"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=projects)["Contents"]]
    assert not [k for k in keys if "/work/" in k]
    assert "projects/harbour-1/images/a.jpg" in keys  # the project's own files stay
    # the record this run wrote is taken back too (there was none before it)
    assert "videos/harbour-1_final_video.json" not in keys
    current = s3.get_object(Bucket=projects, Key="videos/harbour-1_final_video.mp4")
    assert current["Body"].read() == b"old"
    assert current["VersionId"] == earlier["VersionId"]


def test_a_failure_before_a_project_was_named_cleans_nothing(projects):
    answer = record_failure(
        {"project_id": None, "run": "r", "error": {"Error": "InvalidInput", "Cause": "bad key"}},
        StoriesSettings(projects_bucket=projects),
        client("s3"),
    )
    assert answer == {"reason": "InvalidInput: bad key"}
