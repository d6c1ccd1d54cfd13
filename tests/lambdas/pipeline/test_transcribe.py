"""The transcribe unit's handlers: start (token first, one job per name), the EventBridge
callback, and the heartbeat sweep's recovery of an event that never came.

Transcribe is a real botocore client with a Stubber, so every request and answer is checked
against the service model; the catalog, S3 and the waiting execution are moto's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from lambdas.analysis.heartbeat import sweep
from lambdas.analysis.jobs import TaskCallbacks
from lambdas.shared.errors import InvalidInput
from lambdas.shared.keys import AssetKeys
from lambdas.shared.rekognition import RekognitionVideo
from lambdas.shared.transcribe import (
    Transcribe,
    TranscribeLimitExceeded,
    TranscribeRequestRejected,
    TranscriptionJob,
    complete_speech,
    job_name,
)
from lambdas.transcribe import callback, start
from lambdas.transcribe.settings import StartSettings
from tests.lambdas.pipeline.builders import (
    ASSET_ID,
    PROCESSED_BUCKET,
    RAW_KEY,
    TABLE,
    aws_client,
)

DEPLOYMENT = "media-pipeline-test"
NAME = job_name(DEPLOYMENT, ASSET_ID)
PREFIX = AssetKeys(RAW_KEY).speech_prefix
MEDIA = {"bucket": PROCESSED_BUCKET, "key": "video/x/proxy.mp4"}
SETTINGS = StartSettings(
    catalog_table=TABLE,
    deployment=DEPLOYMENT,
    processed_bucket=PROCESSED_BUCKET,
    languages=("en-US", "pt-BR"),
)
URI = f"https://s3.us-east-1.amazonaws.com/{PROCESSED_BUCKET}/{PREFIX}{NAME}"


def _job(status: str, **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "TranscriptionJobName": NAME,
        "TranscriptionJobStatus": status,
        "Media": {"MediaFileUri": f"s3://{MEDIA['bucket']}/{MEDIA['key']}"},
        "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
    }
    if status == "COMPLETED":
        job |= {
            "LanguageCode": "pt-BR",
            "IdentifiedLanguageScore": 0.93,
            "Transcript": {"TranscriptFileUri": f"{URI}.json"},
            "Subtitles": {
                "Formats": ["vtt", "srt"],
                "SubtitleFileUris": [f"{URI}.vtt", f"{URI}.srt"],
            },
        }
    if status == "FAILED":
        job["FailureReason"] = "The media file has no audio."
    return {"TranscriptionJob": {**job, **extra}}


@pytest.fixture
def transcribe() -> Iterator[tuple[Transcribe, Stubber]]:
    client = aws_client("transcribe")
    with Stubber(client) as stubber:
        yield Transcribe(client), stubber
        stubber.assert_no_pending_responses()


def _request(token: str, run: str = "") -> start.StartRequest:
    return start.StartRequest.parse(
        {"task_token": token, "asset_id": ASSET_ID, "raw_key": RAW_KEY, "media": MEDIA, "run": run}
    )


def _start_params(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "TranscriptionJobName": NAME,
        "Media": {"MediaFileUri": f"s3://{MEDIA['bucket']}/{MEDIA['key']}"},
        "OutputBucketName": PROCESSED_BUCKET,
        "OutputKey": PREFIX,
        "Subtitles": {"Formats": ["vtt", "srt"], "OutputStartIndex": 1},
        "Tags": [
            {"Key": "asset_id", "Value": ASSET_ID},
            {"Key": "deployment", "Value": DEPLOYMENT},
        ],
        "IdentifyLanguage": True,
        "LanguageOptions": ["en-US", "pt-BR"],
    }
    return {**params, **changes}


def test_the_token_is_stored_before_the_job_starts_next_to_the_clip(catalog, transcribe):
    service, stubber = transcribe
    stubber.add_response("start_transcription_job", _job("IN_PROGRESS"), _start_params())

    result = start.start_transcription(
        _request("token-1"), settings=SETTINGS, catalog=catalog, transcribe=service, sfn=None
    )

    assert result == {"job_name": NAME, "status": "IN_PROGRESS", "state": "waiting"}
    stored = catalog.get_token(NAME)
    assert (stored["task_token"], stored["feature"], stored["job_id"]) == (
        "token-1",
        "speech",
        NAME,
    )


def test_one_configured_language_is_the_jobs_language_without_identification(catalog, transcribe):
    service, stubber = transcribe
    params = _start_params(LanguageCode="en-US")
    del params["IdentifyLanguage"], params["LanguageOptions"]
    stubber.add_response("start_transcription_job", _job("IN_PROGRESS"), params)
    one = StartSettings(**{**SETTINGS.__dict__, "languages": ("en-US",)})

    start.start_transcription(
        _request("token-1"), settings=one, catalog=catalog, transcribe=service, sfn=None
    )


def test_a_retried_start_re_attaches_and_resumes_a_job_that_already_ended(
    catalog, transcribe, start_waiting_task
):
    task = start_waiting_task()
    service, stubber = transcribe
    stubber.add_client_error(
        "start_transcription_job",
        "ConflictException",
        "The requested job name already exists. Use a different job name.",
        expected_params=_start_params(),
    )
    stubber.add_response("get_transcription_job", _job("COMPLETED"), {"TranscriptionJobName": NAME})

    result = start.start_transcription(
        _request(task.token),
        settings=SETTINGS,
        catalog=catalog,
        transcribe=service,
        sfn=aws_client("stepfunctions"),
    )

    assert result["state"] == "resumed_completed"
    output = task.outcome()["output"]
    assert output == {
        "feature": "speech",
        "job_name": NAME,
        "status": "COMPLETED",
        "language_code": "pt-BR",
        "language_score": 0.93,
        "transcript": {"bucket": PROCESSED_BUCKET, "key": f"{PREFIX}{NAME}.json"},
        "subtitles": {
            "vtt": {"bucket": PROCESSED_BUCKET, "key": f"{PREFIX}{NAME}.vtt"},
            "srt": {"bucket": PROCESSED_BUCKET, "key": f"{PREFIX}{NAME}.srt"},
        },
    }
    assert catalog.get_token(NAME) is None


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("LimitExceededException", TranscribeLimitExceeded),
        ("BadRequestException", TranscribeRequestRejected),
    ],
)
def test_a_refused_start_raises_its_class_and_leaves_no_token(catalog, transcribe, code, error):
    service, stubber = transcribe
    stubber.add_client_error("start_transcription_job", code, "no", expected_params=_start_params())
    with pytest.raises(error, match=code):
        start.start_transcription(
            _request("token-1"), settings=SETTINGS, catalog=catalog, transcribe=service, sfn=None
        )
    assert catalog.get_token(NAME) is None


def test_a_reprocess_names_a_new_job():
    assert job_name(DEPLOYMENT, ASSET_ID, "reprocess-1") != NAME
    assert len(job_name(DEPLOYMENT, "x" * 300)) <= 200


def _event(name: str = NAME, status: str = "COMPLETED") -> dict[str, Any]:
    """What EventBridge delivers for Transcribe."""
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "Transcribe Job State Change",
        "source": "aws.transcribe",
        "account": "123456789012",
        "time": "2026-12-01T08:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"TranscriptionJobName": name, "TranscriptionJobStatus": status},
    }


def test_the_event_resumes_the_task_once_with_the_failure_as_a_result(
    catalog, transcribe, start_waiting_task
):
    task = start_waiting_task()
    catalog.put_token(NAME, task.token, asset_id=ASSET_ID, feature="speech")
    catalog.set_token_job(NAME, NAME)
    service, stubber = transcribe
    stubber.add_response("get_transcription_job", _job("FAILED"), {"TranscriptionJobName": NAME})
    sfn, s3 = aws_client("stepfunctions"), aws_client("s3")

    first = callback.on_event(
        _event(status="FAILED"), catalog=catalog, transcribe=service, sfn=sfn, s3=s3
    )
    again = callback.on_event(
        _event(status="FAILED"), catalog=catalog, transcribe=service, sfn=sfn, s3=s3
    )

    assert (first, again) == ("failed", "unknown_job")
    # A failed transcription does not fail the asset: the task succeeds with the reason.
    outcome = task.outcome()
    assert outcome["status"] == "SUCCEEDED"
    assert outcome["output"]["status"] == "FAILED"
    assert outcome["output"]["reason"] == "The media file has no audio."


def test_a_job_ending_after_its_asset_failed_leaves_no_files(catalog, transcribe, buckets):
    # Given a task closed by its asset's failure (Step Functions answers its token so; moto does
    # not refuse tokens of stopped executions, so it is stubbed with the real error)
    catalog.put_token(NAME, "closed-token", asset_id=ASSET_ID, feature="speech")
    catalog.set_token_job(NAME, NAME)
    for ext in ("json", "vtt", "srt"):
        buckets.put_object(Bucket=PROCESSED_BUCKET, Key=f"{PREFIX}{NAME}.{ext}", Body=b"x")
    service, stubber = transcribe
    stubber.add_response("get_transcription_job", _job("COMPLETED"), {"TranscriptionJobName": NAME})
    sfn = aws_client("stepfunctions")

    with Stubber(sfn) as sfn_stub:
        sfn_stub.add_client_error("send_task_success", "TaskTimedOut", "Task Timed Out")
        state = callback.on_event(
            _event(), catalog=catalog, transcribe=service, sfn=sfn, s3=buckets
        )

    assert state == "task_closed"
    listed = buckets.list_objects_v2(Bucket=PROCESSED_BUCKET, Prefix=PREFIX)
    assert listed.get("KeyCount", 0) == 0
    assert catalog.get_token(NAME) is None


def test_anything_but_a_job_state_change_is_refused():
    with pytest.raises(InvalidInput, match="not a 'Transcribe Job State Change' event"):
        callback.job_of({"detail-type": "Object Created"})
    with pytest.raises(InvalidInput, match="TranscriptionJobName"):
        callback.job_of({"detail-type": "Transcribe Job State Change", "detail": {}})


def test_the_sweep_keeps_a_running_job_alive_and_recovers_a_lost_event(
    catalog, transcribe, start_waiting_task
):
    task = start_waiting_task()
    catalog.put_token(NAME, task.token, asset_id=ASSET_ID, feature="speech")
    catalog.set_token_job(NAME, NAME)
    service, stubber = transcribe
    stubber.add_response(
        "get_transcription_job", _job("IN_PROGRESS"), {"TranscriptionJobName": NAME}
    )
    stubber.add_response("get_transcription_job", _job("COMPLETED"), {"TranscriptionJobName": NAME})
    sfn = aws_client("stepfunctions")
    rekognition = RekognitionVideo(aws_client("rekognition"))

    with Stubber(sfn) as sfn_stub:
        sfn_stub.add_response("send_task_heartbeat", {}, {"taskToken": task.token})
        alive = sweep(catalog, rekognition, TaskCallbacks(sfn), service)
    recovered = sweep(catalog, rekognition, TaskCallbacks(sfn), service)

    assert (alive, recovered) == ({"alive": 1}, {"recovered_speech_completed": 1})
    assert json.loads(json.dumps(task.outcome()["output"]))["language_code"] == "pt-BR"


class _RacingSfn:
    """Step Functions whose SendTaskSuccess lets a second handler run first (the sweep racing
    the event), then answers as Step Functions does for the task that is still open."""

    def __init__(self, racer: Any) -> None:
        self.racer = racer
        self.answered: list[str] = []

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:
        self.answered.append(self.racer())
        return {}


def test_of_the_event_and_the_sweep_racing_only_one_answers_and_no_file_is_removed(
    catalog, buckets
):
    catalog.put_token(NAME, "token-1", asset_id=ASSET_ID, feature="speech")
    catalog.set_token_job(NAME, NAME)
    for ext in ("json", "vtt", "srt"):
        buckets.put_object(Bucket=PROCESSED_BUCKET, Key=f"{PREFIX}{NAME}.{ext}", Body=b"x")
    job = TranscriptionJob.from_answer(_job("COMPLETED")["TranscriptionJob"])
    closed = aws_client("stepfunctions")  # the racer finds no token, so never calls it
    sfn = _RacingSfn(lambda: complete_speech(catalog, closed, NAME, job, buckets))

    first = complete_speech(catalog, sfn, NAME, job, buckets)

    assert (first, sfn.answered) == ("completed", ["unknown_job"])
    listed = buckets.list_objects_v2(Bucket=PROCESSED_BUCKET, Prefix=PREFIX)
    assert listed["KeyCount"] == 3


def test_a_job_still_running_when_its_asset_failed_keeps_its_token_until_it_ends(
    catalog, transcribe, buckets
):
    catalog.put_token(NAME, "closed-token", asset_id=ASSET_ID, feature="speech")
    catalog.set_token_job(NAME, NAME)
    service, stubber = transcribe
    stubber.add_response(
        "get_transcription_job", _job("IN_PROGRESS"), {"TranscriptionJobName": NAME}
    )
    stubber.add_response("get_transcription_job", _job("COMPLETED"), {"TranscriptionJobName": NAME})
    for ext in ("json", "vtt", "srt"):
        buckets.put_object(Bucket=PROCESSED_BUCKET, Key=f"{PREFIX}{NAME}.{ext}", Body=b"x")
    sfn = aws_client("stepfunctions")
    rekognition = RekognitionVideo(aws_client("rekognition"))

    with Stubber(sfn) as sfn_stub:
        sfn_stub.add_client_error("send_task_heartbeat", "TaskTimedOut", "Task Timed Out")
        running = sweep(catalog, rekognition, TaskCallbacks(sfn), service, buckets)
        sfn_stub.add_client_error("send_task_success", "TaskTimedOut", "Task Timed Out")
        ended = sweep(catalog, rekognition, TaskCallbacks(sfn), service, buckets)

    assert (running, ended) == ({"task_closed_job_running": 1}, {"recovered_speech_task_closed": 1})
    assert buckets.list_objects_v2(Bucket=PROCESSED_BUCKET, Prefix=PREFIX)["KeyCount"] == 0
    assert catalog.get_token(NAME) is None


def test_a_job_transcribe_does_not_know_resumes_its_task_with_the_reason(
    catalog, transcribe, start_waiting_task
):
    task = start_waiting_task()
    catalog.put_token(NAME, task.token, asset_id=ASSET_ID, feature="speech")
    catalog.set_token_job(NAME, NAME)
    service, stubber = transcribe
    stubber.add_client_error(
        "get_transcription_job",
        "BadRequestException",
        "The requested job couldn't be found.",
        expected_params={"TranscriptionJobName": NAME},
    )

    counts = sweep(
        catalog,
        RekognitionVideo(aws_client("rekognition")),
        TaskCallbacks(aws_client("stepfunctions")),
        service,
    )

    assert counts == {"recovered_speech_failed": 1}
    output = task.outcome()["output"]
    assert output["status"] == "FAILED" and "has no job" in output["reason"]


def test_a_token_is_taken_once_and_its_job_recorded_only_while_it_exists(catalog):
    catalog.put_token(NAME, "token-1", asset_id=ASSET_ID, feature="speech")
    assert catalog.take_token(NAME)["task_token"] == "token-1"
    assert catalog.take_token(NAME) is None
    catalog.set_token_job(NAME, NAME)  # the job resumed its task first: no stub is left behind
    assert catalog.get_token(NAME) is None
