"""Analysis start: the token is stored first, the job is started once, quota errors are typed."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

import lambdas.analysis.start as start_module
from lambdas.analysis.jobs import TaskCallbacks, client_request_token, job_tag
from lambdas.analysis.start import StartRequest, StartSettings, handler, start_analysis
from lambdas.shared.errors import InvalidInput
from lambdas.shared.rekognition import (
    RekognitionLimitExceeded,
    RekognitionRequestRejected,
    RekognitionUnavailable,
    RekognitionVideo,
)
from tests.lambdas.pipeline.builders import (
    ASSET_ID,
    PROCESSED_BUCKET,
    REKOGNITION_ROLE_ARN,
    REKOGNITION_TOPIC_ARN,
    TABLE,
    aws_client,
    label_page,
    model_errors,
    service_model,
)

MP4_KEY = "video/wikimedia/travel/20250101_060000/Lisbon_tram_28/mp4/proxy.mp4"
JOB_ID = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"[:64]
SETTINGS = StartSettings(
    catalog_table=TABLE,
    rekognition_topic_arn=REKOGNITION_TOPIC_ARN,
    rekognition_role_arn=REKOGNITION_ROLE_ARN,
)
START_OPERATIONS = {
    "labels": "start_label_detection",
    "moderation": "start_content_moderation",
    "segments": "start_segment_detection",
}
GET_OPERATIONS = {
    "labels": "get_label_detection",
    "moderation": "get_content_moderation",
    "segments": "get_segment_detection",
}


def payload(feature: str = "labels", task_token: str | None = None, **extra) -> dict:
    """What the waitForTaskToken Lambda task sends."""
    return {
        "task_token": task_token or "token-1",
        "feature": feature,
        "asset_id": ASSET_ID,
        "video": {"bucket": PROCESSED_BUCKET, "key": MP4_KEY},
        **extra,
    }


def expected_start(feature: str) -> dict:
    params = {
        "Video": {"S3Object": {"Bucket": PROCESSED_BUCKET, "Name": MP4_KEY}},
        "ClientRequestToken": f"{ASSET_ID}-{feature}",
        "JobTag": f"{ASSET_ID}-{feature}",
        "NotificationChannel": {
            "SNSTopicArn": REKOGNITION_TOPIC_ARN,
            "RoleArn": REKOGNITION_ROLE_ARN,
        },
    }
    if feature == "labels":
        params["MinConfidence"] = 70.0
    elif feature == "moderation":
        params["MinConfidence"] = 50.0
    else:
        params["SegmentTypes"] = ["TECHNICAL_CUE", "SHOT"]
    return params


def still_running(stubber: Stubber, feature: str) -> None:
    stubber.add_response(
        GET_OPERATIONS[feature],
        {"JobStatus": "IN_PROGRESS", "JobId": JOB_ID},
        {"JobId": JOB_ID, "MaxResults": 1},
    )


@pytest.mark.parametrize("feature", ["labels", "moderation", "segments"])
def test_start_stores_token_first_then_starts_and_records_the_job(catalog, rekognition, feature):
    # Given a waiting analysis task and Rekognition accepting the job
    client, stubber = rekognition
    seen_before_start = []

    def look_at_catalog(model, **_):
        seen_before_start.append((model.name, catalog.get_token(f"{ASSET_ID}-{feature}")))

    event = "before-parameter-build.rekognition"
    client.meta.events.register_first(event, look_at_catalog)
    stubber.add_response(START_OPERATIONS[feature], {"JobId": JOB_ID}, expected_start(feature))
    still_running(stubber, feature)
    # When the start handler runs
    try:
        result = start_analysis(
            StartRequest.parse(payload(feature)),
            settings=SETTINGS,
            catalog=catalog,
            rekognition=RekognitionVideo(client),
            callbacks=TaskCallbacks(aws_client("stepfunctions")),
        )
    finally:
        client.meta.events.unregister(event, look_at_catalog)  # the client is shared
    # Then the token was already stored when Start* was called
    operation, token_item = seen_before_start[0]
    assert operation.startswith("Start")
    assert token_item["task_token"] == "token-1"
    # And the job id is recorded on the token, and the task is left waiting
    stored = catalog.get_token(f"{ASSET_ID}-{feature}")
    assert stored["job_id"] == JOB_ID and stored["feature"] == feature
    assert result == {"job_tag": f"{ASSET_ID}-{feature}", "job_id": JOB_ID, "state": "waiting"}


def test_retried_start_reuses_the_request_token(catalog, rekognition):
    # Given a start that is retried with a new task token (the first Lambda attempt timed out)
    client, stubber = rekognition
    for _ in range(2):
        stubber.add_response("start_label_detection", {"JobId": JOB_ID}, expected_start("labels"))
        still_running(stubber, "labels")
    adapter = RekognitionVideo(client)
    # When both attempts run
    for token in ("token-1", "token-2"):
        start_analysis(
            StartRequest.parse(payload(task_token=token)),
            settings=SETTINGS,
            catalog=catalog,
            rekognition=adapter,
            callbacks=TaskCallbacks(aws_client("stepfunctions")),
        )
    # Then Rekognition saw the same ClientRequestToken (so it returns the same job, not a second)
    # and the latest task's token is the one the callback will resume
    assert catalog.get_token(f"{ASSET_ID}-labels")["task_token"] == "token-2"


@pytest.mark.parametrize(
    "code",
    ["LimitExceededException", "ProvisionedThroughputExceededException", "ThrottlingException"],
)
def test_quota_errors_surface_as_rekognition_limit_exceeded(catalog, rekognition, code):
    # Given Rekognition at its 20 concurrent jobs (or throttling)
    client, stubber = rekognition
    stubber.add_client_error(
        "start_label_detection",
        service_error_code=code,
        service_message="Limit exceeded",
        http_status_code=400,
    )
    # When the start runs
    with pytest.raises(RekognitionLimitExceeded) as raised:
        start_analysis(
            StartRequest.parse(payload()),
            settings=SETTINGS,
            catalog=catalog,
            rekognition=RekognitionVideo(client),
            callbacks=TaskCallbacks(aws_client("stepfunctions")),
        )
    # Then the error's class name is the one the state machine retries with backoff
    assert type(raised.value).__name__ == "RekognitionLimitExceeded"
    assert code in str(raised.value)
    # And no token is left behind for a job that never started
    assert catalog.get_token(f"{ASSET_ID}-labels") is None


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("InvalidS3ObjectException", 400, RekognitionRequestRejected),
        ("VideoTooLargeException", 400, RekognitionRequestRejected),
        ("AccessDeniedException", 400, RekognitionRequestRejected),
        ("IdempotentParameterMismatchException", 400, RekognitionRequestRejected),
        ("InternalServerError", 500, RekognitionUnavailable),
    ],
)
def test_other_errors_are_typed_and_name_the_cause(catalog, rekognition, code, status, error):
    # Given Rekognition refusing the video
    client, stubber = rekognition
    stubber.add_client_error(
        "start_content_moderation",
        service_error_code=code,
        service_message="Unable to get object metadata from S3",
        http_status_code=status,
    )
    # When the start runs
    with pytest.raises(error) as raised:
        start_analysis(
            StartRequest.parse(payload("moderation")),
            settings=SETTINGS,
            catalog=catalog,
            rekognition=RekognitionVideo(client),
            callbacks=TaskCallbacks(aws_client("stepfunctions")),
        )
    # Then the message names the API and the error code
    assert "StartContentModeration" in str(raised.value) and code in str(raised.value)


def test_start_of_an_already_finished_job_resumes_the_task_at_once(
    catalog, rekognition, start_waiting_task
):
    # Given an execution re-driven after this asset's labels job already succeeded:
    # the start returns the old JobId and Rekognition will not notify again
    client, stubber = rekognition
    task = start_waiting_task()
    stubber.add_response("start_label_detection", {"JobId": JOB_ID}, expected_start("labels"))
    stubber.add_response(
        "get_label_detection", label_page([], job_id=JOB_ID), {"JobId": JOB_ID, "MaxResults": 1}
    )
    # When the start runs
    result = start_analysis(
        StartRequest.parse(payload(task_token=task.token)),
        settings=SETTINGS,
        catalog=catalog,
        rekognition=RekognitionVideo(client),
        callbacks=TaskCallbacks(aws_client("stepfunctions")),
    )
    # Then the waiting task is resumed with the job's outcome and the token is spent
    assert result["state"] == "resumed_succeeded"
    assert task.outcome() == {
        "status": "SUCCEEDED",
        "output": {"feature": "labels", "job_id": JOB_ID, "status": "SUCCEEDED"},
        "error": None,
    }
    assert catalog.get_token(f"{ASSET_ID}-labels") is None


def test_status_check_denied_leaves_the_task_waiting(catalog, rekognition):
    # Given a function role without Get* permission
    client, stubber = rekognition
    stubber.add_response("start_segment_detection", {"JobId": JOB_ID}, expected_start("segments"))
    stubber.add_client_error(
        "get_segment_detection", service_error_code="AccessDeniedException", http_status_code=400
    )
    # When the start runs
    result = start_analysis(
        StartRequest.parse(payload("segments")),
        settings=SETTINGS,
        catalog=catalog,
        rekognition=RekognitionVideo(client),
        callbacks=TaskCallbacks(aws_client("stepfunctions")),
    )
    # Then the job is started and the task waits for the SNS notice as usual
    assert result["state"] == "waiting"
    assert catalog.get_token(f"{ASSET_ID}-segments")["job_id"] == JOB_ID


@pytest.mark.parametrize(
    "asset_id",
    ["wikimedia-3f2a9c1e8b7d6a5f4e3d", "upload-" + "x" * 80, "odd id/with spaces+plus"],
)
def test_job_names_fit_rekognition_limits_and_are_stable(asset_id):
    # Given asset ids of every length and character set
    start_shape = service_model("rekognition").operation_model("StartLabelDetection").input_shape
    for feature in ("labels", "moderation", "segments"):
        tag, token = job_tag(asset_id, feature), client_request_token(asset_id, feature)
        # When checked against the model (pattern, length) and the brief's 256-character tag
        params = {"JobTag": tag, "ClientRequestToken": token}
        # Then both are valid, deterministic and distinct per feature
        assert model_errors(params, start_shape) == []
        assert len(tag) <= 256 and len(token) <= 64
        assert (tag, token) == (job_tag(asset_id, feature), client_request_token(asset_id, feature))
    assert len({client_request_token(asset_id, f) for f in ("labels", "moderation")}) == 2


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (payload(feature="faces"), "feature"),
        ({**payload(), "task_token": ""}, "task_token"),
        ({**payload(), "video": {"bucket": PROCESSED_BUCKET}}, "video.key"),
        ({k: v for k, v in payload().items() if k != "asset_id"}, "asset_id"),
    ],
)
def test_bad_payload_is_invalid_input(event, field):
    with pytest.raises(InvalidInput) as raised:
        StartRequest.parse(event)
    assert field in str(raised.value)


def test_handler_starts_the_job_from_the_task_payload(
    catalog, rekognition, monkeypatch, lambda_context
):
    # Given the deployed function's dependencies, with Rekognition stubbed
    client, stubber = rekognition
    stubber.add_response("start_label_detection", {"JobId": JOB_ID}, expected_start("labels"))
    still_running(stubber, "labels")
    monkeypatch.setattr(
        start_module,
        "_dependencies",
        lambda: (
            StartSettings.from_env(),
            catalog,
            RekognitionVideo(client),
            TaskCallbacks(aws_client("stepfunctions")),
        ),
    )
    # When the Lambda task invokes it
    result = handler(payload(), lambda_context)
    # Then the job is started and recorded
    assert result["state"] == "waiting"
    assert catalog.get_token(f"{ASSET_ID}-labels")["job_id"] == JOB_ID


def test_confidence_settings_are_validated():
    with pytest.raises(ValueError, match="MIN_LABEL_CONFIDENCE"):
        StartSettings.from_env(
            {
                "REKOGNITION_TOPIC_ARN": "t",
                "REKOGNITION_ROLE_ARN": "r",
                "MIN_LABEL_CONFIDENCE": "120",
            }
        )


class Unreachable:
    """A client whose connection drops: botocore raises, no HTTP response exists."""

    def start_label_detection(self, **_):
        from botocore.exceptions import EndpointConnectionError

        raise EndpointConnectionError(endpoint_url="https://rekognition.us-east-1.amazonaws.com")


def test_connection_failures_are_retryable_and_leave_no_token(catalog):
    # Given Rekognition unreachable
    # When the start runs
    with pytest.raises(RekognitionUnavailable, match="StartLabelDetection failed"):
        start_analysis(
            StartRequest.parse(payload()),
            settings=SETTINGS,
            catalog=catalog,
            rekognition=RekognitionVideo(Unreachable()),
            callbacks=TaskCallbacks(aws_client("stepfunctions")),
        )
    # Then the token is removed (the retry stores its own) and the error class is retryable
    assert catalog.get_token(f"{ASSET_ID}-labels") is None
