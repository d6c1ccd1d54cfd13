"""Analysis callback: Rekognition's SNS notice resumes (or fails) exactly the waiting task."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

import lambdas.analysis.callback as callback_module
from lambdas.analysis.callback import handle_records, handler
from lambdas.analysis.jobs import TaskCallbacks
from tests.lambdas.pipeline.builders import ASSET_ID, aws_client, rekognition_notice, sns_event

JOB_ID = "c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8"
TAG = f"{ASSET_ID}-labels"


@pytest.fixture
def waiting(catalog, start_waiting_task):
    """A labels task waiting on job JOB_ID, its token stored by the start handler."""
    task = start_waiting_task()
    catalog.put_token(TAG, task.token, asset_id=ASSET_ID, feature="labels")
    catalog.set_token_job(TAG, JOB_ID)
    return task


def notice(status: str = "SUCCEEDED", job_id: str = JOB_ID, tag: str | None = TAG) -> dict:
    return rekognition_notice(job_id=job_id, status=status, api="StartLabelDetection", job_tag=tag)


def test_success_notice_resumes_the_task_with_the_job(waiting, catalog, lambda_context):
    # Given a labels task waiting on its job
    # When Rekognition's SUCCEEDED notice arrives through SNS
    result = handler(sns_event(notice()), lambda_context)
    # Then the execution continues with the job reference, and the token is spent
    assert result == {"succeeded": 1}
    assert waiting.outcome() == {
        "status": "SUCCEEDED",
        "output": {"feature": "labels", "job_id": JOB_ID, "status": "SUCCEEDED"},
        "error": None,
    }
    assert catalog.get_token(TAG) is None


@pytest.mark.parametrize("status", ["FAILED", "ERROR"])
def test_failure_notice_fails_the_task_with_a_named_cause(waiting, catalog, sfn_recorder, status):
    # Given a labels task waiting on its job
    # When Rekognition reports the job failed
    result = handle_records(
        sns_event(notice(status))["Records"], catalog=catalog, callbacks=TaskCallbacks(sfn_recorder)
    )
    # Then the task fails with RekognitionJobFailed, which the Map's Catch records for the asset
    assert result == {"failed": 1}
    assert waiting.outcome()["error"] == "RekognitionJobFailed"
    # And the cause names the API, the job and the status
    ((name, call),) = sfn_recorder.calls
    assert name == "send_task_failure" and call["error"] == "RekognitionJobFailed"
    assert "StartLabelDetection" in call["cause"] and JOB_ID in call["cause"]
    assert status in call["cause"] and ASSET_ID in call["cause"]


def test_duplicate_delivery_after_the_token_was_used_is_ignored(waiting, catalog, lambda_context):
    # Given a notice that was already handled (SNS delivers at least once)
    handler(sns_event(notice()), lambda_context)
    # When the same notice is delivered again
    result = handler(sns_event(notice()), lambda_context)
    # Then nothing fails and the execution's result is unchanged
    assert result == {"unknown_tag": 1}
    assert waiting.outcome()["status"] == "SUCCEEDED"


def test_duplicate_delivery_racing_the_delete_finds_the_task_closed(
    waiting, catalog, lambda_context
):
    # Given a notice handled (and the execution moved on) while a second delivery had already
    # read the token
    handler(sns_event(notice()), lambda_context)
    assert waiting.outcome()["status"] == "SUCCEEDED"
    catalog.put_token(TAG, waiting.token, asset_id=ASSET_ID, feature="labels")
    # When the second delivery resumes the (closed) task: Step Functions answers InvalidToken
    result = handler(sns_event(notice()), lambda_context)
    # Then it is swallowed, and the stale token removed
    assert result == {"task_closed": 1}
    assert catalog.get_token(TAG) is None


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_closed_task_errors_are_logged_and_swallowed(catalog, code):
    # Given a stored token whose task already timed out
    catalog.put_token(TAG, "expired-token", asset_id=ASSET_ID, feature="labels")
    sfn = aws_client("stepfunctions")
    with Stubber(sfn) as stubber:
        stubber.add_client_error("send_task_success", service_error_code=code, http_status_code=400)
        # When the notice arrives
        result = handle_records(
            sns_event(notice())["Records"], catalog=catalog, callbacks=TaskCallbacks(sfn)
        )
    # Then nothing is raised and the token is cleaned up
    assert result == {"task_closed": 1}
    assert catalog.get_token(TAG) is None


def test_throttled_step_functions_raises_so_lambda_retries(catalog):
    # Given Step Functions throttling the callback
    catalog.put_token(TAG, "token", asset_id=ASSET_ID, feature="labels")
    sfn = aws_client("stepfunctions")
    with Stubber(sfn) as stubber:
        stubber.add_client_error(
            "send_task_success", service_error_code="ThrottlingException", http_status_code=400
        )
        # When the notice arrives, Then the error propagates (Lambda retries the async event)
        with pytest.raises(Exception, match="ThrottlingException"):
            handle_records(
                sns_event(notice())["Records"], catalog=catalog, callbacks=TaskCallbacks(sfn)
            )
    # And the token is kept for the retry
    assert catalog.get_token(TAG)["task_token"] == "token"


def test_unknown_tag_and_foreign_messages_are_ignored(catalog, sfn_recorder):
    # Given notices this pipeline cannot use
    event = sns_event(
        notice(tag="someone-elses-job"),  # another consumer of the topic
        notice(tag=None),  # a job started without a JobTag
        "not json at all",
        {"Type": "something else"},
    )
    # When they arrive
    result = handle_records(
        event["Records"], catalog=catalog, callbacks=TaskCallbacks(sfn_recorder)
    )
    # Then none reaches Step Functions and nothing fails
    assert result == {"unknown_tag": 1, "malformed": 3}
    assert sfn_recorder.calls == []


def test_notice_for_another_job_of_the_same_tag_is_ignored(waiting, catalog, sfn_recorder):
    # Given a task waiting on JOB_ID, and a late notice for an older job with the same tag
    # When the old notice arrives
    result = handle_records(
        sns_event(notice(job_id="older-job"))["Records"],
        catalog=catalog,
        callbacks=TaskCallbacks(sfn_recorder),
    )
    # Then the waiting task is left alone, with its token
    assert result == {"stale_job": 1}
    assert sfn_recorder.calls == []
    assert catalog.get_token(TAG)["job_id"] == JOB_ID


def test_notice_before_the_job_id_is_recorded_still_resumes(
    catalog, start_waiting_task, lambda_context
):
    # Given a very short job whose notice beats the start handler's set_token_job
    task = start_waiting_task()
    catalog.put_token(TAG, task.token, asset_id=ASSET_ID, feature="labels")
    # When the notice arrives
    result = handler(sns_event(notice()), lambda_context)
    # Then the task is resumed all the same
    assert result == {"succeeded": 1}
    assert task.outcome()["status"] == "SUCCEEDED"


def test_handler_uses_the_deployed_dependencies(monkeypatch, catalog, lambda_context):
    # Given the handler's own dependency factory
    monkeypatch.setattr(
        callback_module,
        "_dependencies",
        lambda: (catalog, TaskCallbacks(aws_client("stepfunctions"))),
    )
    # When an empty delivery arrives (SNS never sends one, but it must not crash)
    # Then nothing happens
    assert handler({"Records": []}, lambda_context) == {}
