"""Mark failed: one readable root cause per failed asset, and the batch goes on."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from lambdas.finalize.failed import handler, root_cause
from lambdas.shared.catalog import Catalog
from lambdas.transcode.plan import PlanAsset, build_plan
from tests.lambdas.pipeline.builders import (
    DEPLOYMENT,
    PROCESSED_BUCKET,
    ingested_asset,
    mediaconvert_job,
    service_model,
    validate,
)


def mediaconvert_failure_cause(*, wire_casing: bool) -> str:
    """The Cause of a failed createJob.sync: the job description, as SDK or API JSON."""
    plan = build_plan(
        PlanAsset.parse(ingested_asset()), processed_bucket=PROCESSED_BUCKET, deployment=DEPLOYMENT
    )
    job = mediaconvert_job(
        plan["settings"],
        plan["user_metadata"],
        job_id="1735711260123-zz9x8w",
        status="ERROR",
        error_code=1030,
        error_message="Video codec [theora] is not a supported input codec",
    )
    assert validate(job, service_model("mediaconvert").operation_model("GetJob").output_shape) == []
    if not wire_casing:
        return json.dumps(job["Job"])
    # The REST API's own (camelCase) names, as in MediaConvert's job events.
    return json.dumps(
        {
            "id": job["Job"]["Id"],
            "status": "ERROR",
            "errorCode": 1030,
            "errorMessage": job["Job"]["ErrorMessage"],
            "userMetadata": job["Job"]["UserMetadata"],
        }
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            {
                "Error": "RekognitionRequestRejected",
                "Cause": json.dumps(
                    {
                        "errorMessage": "StartLabelDetection failed with "
                        "InvalidS3ObjectException: Unable to get object metadata",
                        "errorType": "RekognitionRequestRejected",
                        "requestId": "5f1e",
                        "stackTrace": ["  File ..."],
                    }
                ),
            },
            "RekognitionRequestRejected: StartLabelDetection failed with "
            "InvalidS3ObjectException: Unable to get object metadata",
        ),
        (
            {"Error": "States.TaskFailed", "Cause": mediaconvert_failure_cause(wire_casing=True)},
            "MediaConvert job 1735711260123-zz9x8w failed (error 1030): "
            "Video codec [theora] is not a supported input codec",
        ),
        (
            {"Error": "States.TaskFailed", "Cause": mediaconvert_failure_cause(wire_casing=False)},
            "MediaConvert job 1735711260123-zz9x8w failed (error 1030): "
            "Video codec [theora] is not a supported input codec",
        ),
        (
            {
                "Error": "RekognitionJobFailed",
                "Cause": "StartContentModeration job abc for asset x (moderation) ended with "
                "status FAILED",
            },
            "RekognitionJobFailed: StartContentModeration job abc for asset x (moderation) "
            "ended with status FAILED",
        ),
        ({"Error": "States.Timeout"}, "States.Timeout: the step did not finish within its timeout"),
        (
            {"Error": "States.HeartbeatTimeout", "Cause": ""},
            "States.HeartbeatTimeout: the step stopped sending heartbeats",
        ),
        (
            {
                "Error": "Lambda.Unknown",
                "Cause": json.dumps(
                    {"errorMessage": "2025-01-01T06:00:00Z abc Task timed out after 900.00 seconds"}
                ),
            },
            "Lambda.Unknown: 2025-01-01T06:00:00Z abc Task timed out after 900.00 seconds",
        ),
        ({"Error": "States.Runtime", "Cause": "{not json"}, "States.Runtime: {not json"),
        (None, "unknown error (no error details were passed on)"),
    ],
)
def test_root_cause_is_one_readable_line(error, reason):
    assert root_cause(error) == reason


def test_failed_asset_is_recorded_with_its_reason(committed_asset, catalog, lambda_context):
    # Given an asset whose transcode failed in MediaConvert
    event = {
        "asset": committed_asset,
        "error": {
            "Error": "States.TaskFailed",
            "Cause": mediaconvert_failure_cause(wire_casing=False),
        },
    }
    # When the Map's Catch hands it to mark-failed
    result = handler(event, lambda_context)
    # Then the catalog shows it FAILED with the root cause, and the batch gets a small result
    reason = (
        "MediaConvert job 1735711260123-zz9x8w failed (error 1030): "
        "Video codec [theora] is not a supported input codec"
    )
    assert result == {
        "asset_id": committed_asset["asset_id"],
        "status": "FAILED",
        "reason": reason,
        "recorded": True,
    }
    item = catalog.get_asset(committed_asset["asset_id"])
    assert (item["status"], item["failure_reason"]) == ("FAILED", reason)
    failed = catalog.campaign_assets("travel", status="FAILED")
    assert [a["asset_id"] for a in failed] == [committed_asset["asset_id"]]


def test_very_long_causes_are_shortened(committed_asset, catalog, lambda_context):
    event = {"asset": committed_asset, "error": {"Error": "X", "Cause": "y " * 5000}}
    result = handler(event, lambda_context)
    assert len(result["reason"]) <= 1000 and result["reason"].endswith("…")


def test_asset_missing_from_the_catalog_still_returns_a_result(catalog, lambda_context):
    # Given a failure for an asset the catalog never saw
    event = {
        "asset": ingested_asset(asset_id="wikimedia-unknown"),
        "error": {"Error": "States.Timeout"},
    }
    # When marked failed
    result = handler(event, lambda_context)
    # Then the batch still gets a FAILED result instead of a second failure, saying it is unrecorded
    assert result["status"] == "FAILED" and result["asset_id"] == "wikimedia-unknown"
    assert result["recorded"] is False
    assert result["not_recorded"] == "asset wikimedia-unknown is not in the catalog"


def test_malformed_catch_payload_does_not_stop_the_batch(catalog, lambda_context):
    result = handler({"error": {"Error": "States.Runtime", "Cause": "bad path"}}, lambda_context)
    assert result == {
        "asset_id": None,
        "status": "FAILED",
        "reason": "States.Runtime: bad path",
        "recorded": False,
        "not_recorded": "the failure names no asset_id",
    }


@pytest.mark.parametrize(
    "failure",
    [
        ClientError(
            {
                "Error": {
                    "Code": "ProvisionedThroughputExceededException",
                    "Message": "The level of configured provisioned throughput for the table was "
                    "exceeded. Consider increasing your provisioning level with the UpdateTable "
                    "API.",
                }
            },
            "TransactWriteItems",
        ),
        ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "GetItem"
        ),
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
    ],
    ids=["throttled", "access-denied", "no-endpoint"],
)
def test_a_catalog_that_cannot_record_the_failure_never_stops_the_batch(
    committed_asset, catalog, lambda_context, monkeypatch, capsys, failure
):
    # Given DynamoDB refusing (or unreachable) when the failure is recorded
    def refuse(self, asset_id, reason):
        raise failure

    monkeypatch.setattr(Catalog, "mark_failed", refuse)
    event = {"asset": committed_asset, "error": {"Error": "States.Timeout"}}

    # When mark-failed runs
    result = handler(event, lambda_context)

    # Then the batch gets its FAILED result, which says the catalog does not know about it
    assert result["status"] == "FAILED"
    assert result["asset_id"] == committed_asset["asset_id"]
    assert result["reason"] == "States.Timeout: the step did not finish within its timeout"
    assert result["recorded"] is False
    assert result["not_recorded"].startswith("the catalog could not record it: ")
    assert len(result["not_recorded"]) <= 300
    # and a FailuresNotRecorded metric goes out for the alarm
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    names = {
        m["Name"] for doc in emitted for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"AssetsFailed", "FailuresNotRecorded"} <= names
