"""The heartbeat sweep: running jobs keep their task alive, finished ones resume it."""

from __future__ import annotations

from botocore.stub import Stubber

from lambdas.analysis.heartbeat import sweep
from lambdas.analysis.jobs import TaskCallbacks
from lambdas.shared.rekognition import RekognitionVideo
from tests.lambdas.pipeline.builders import ASSET_ID, aws_client, label_page

JOB_ID = "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d"
TAG = f"{ASSET_ID}-labels"


def job_status(stubber: Stubber, status: str) -> None:
    response = {"JobStatus": status, "JobId": JOB_ID}
    if status == "SUCCEEDED":
        response = label_page([], job_id=JOB_ID)
    stubber.add_response("get_label_detection", response, {"JobId": JOB_ID, "MaxResults": 1})


def test_a_running_job_sends_a_heartbeat_and_keeps_the_token(catalog, rekognition):
    # Given a task waiting on a running labels job (moto has no SendTaskHeartbeat for running
    # executions, so Step Functions is stubbed with the real request shape)
    catalog.put_token(TAG, "task-token-1", asset_id=ASSET_ID, feature="labels")
    catalog.set_token_job(TAG, JOB_ID)
    client, stubber = rekognition
    job_status(stubber, "IN_PROGRESS")
    sfn = aws_client("stepfunctions")
    with Stubber(sfn) as sfn_stub:
        sfn_stub.add_response("send_task_heartbeat", {}, {"taskToken": "task-token-1"})
        # When the sweep runs
        counts = sweep(catalog, RekognitionVideo(client), TaskCallbacks(sfn))
        sfn_stub.assert_no_pending_responses()
    # Then the task got its heartbeat and still waits with its token stored
    assert counts == {"alive": 1}
    assert catalog.get_token(TAG) is not None


def test_a_finished_job_whose_notice_was_lost_resumes_the_task(
    catalog, rekognition, start_waiting_task
):
    # Given a task whose job finished but whose SNS notice never arrived
    task = start_waiting_task()
    catalog.put_token(TAG, task.token, asset_id=ASSET_ID, feature="labels")
    catalog.set_token_job(TAG, JOB_ID)
    client, stubber = rekognition
    job_status(stubber, "SUCCEEDED")
    # When the sweep runs
    counts = sweep(catalog, RekognitionVideo(client), TaskCallbacks(aws_client("stepfunctions")))
    # Then the task resumes with the job, as the callback would have done, and the token is gone
    assert list(counts) == ["recovered_succeeded"]
    assert task.outcome()["output"] == {
        "feature": "labels",
        "job_id": JOB_ID,
        "status": "SUCCEEDED",
    }
    assert catalog.get_token(TAG) is None


def test_a_closed_task_is_forgotten_and_a_starting_one_left_alone(catalog, rekognition):
    # Given one token whose task already timed out and one whose job is still being started
    catalog.put_token(TAG, "expired-token", asset_id=ASSET_ID, feature="labels")
    catalog.set_token_job(TAG, JOB_ID)
    catalog.put_token(f"{ASSET_ID}-segments", "new-token", asset_id=ASSET_ID, feature="segments")
    client, stubber = rekognition
    job_status(stubber, "IN_PROGRESS")
    sfn = aws_client("stepfunctions")
    with Stubber(sfn) as sfn_stub:
        sfn_stub.add_client_error("send_task_heartbeat", service_error_code="TaskTimedOut")
        # When the sweep runs
        counts = sweep(catalog, RekognitionVideo(client), TaskCallbacks(sfn))
    # Then the closed task's token is deleted and the starting one is kept for the next sweep
    assert counts == {"task_closed": 1, "starting": 1}
    assert catalog.get_token(TAG) is None
    assert catalog.get_token(f"{ASSET_ID}-segments") is not None


def test_throttled_rekognition_still_sends_the_heartbeat(catalog, rekognition, sfn_recorder):
    catalog.put_token(TAG, "token", asset_id=ASSET_ID, feature="labels")
    catalog.set_token_job(TAG, JOB_ID)
    client, stubber = rekognition
    stubber.add_client_error(
        "get_label_detection", service_error_code="ProvisionedThroughputExceededException"
    )
    sfn = aws_client("stepfunctions")
    with Stubber(sfn) as sfn_stub:
        sfn_stub.add_response("send_task_heartbeat", {}, {"taskToken": "token"})
        counts = sweep(catalog, RekognitionVideo(client), TaskCallbacks(sfn))
    assert counts == {"alive": 1}


def test_pending_tokens_lists_only_waiting_tasks(catalog, committed_asset):
    # Given assets and two stored tokens, When pending tokens are listed,
    # Then only the tokens come back (the index entry is sparse), oldest first
    catalog.put_token("a-labels", "t1", asset_id="a", feature="labels")
    catalog.put_token("b-labels", "t2", asset_id="b", feature="labels")
    assert [t["task_token"] for t in catalog.pending_tokens()] == ["t1", "t2"]
    catalog.delete_token("a-labels")
    assert [t["task_token"] for t in catalog.pending_tokens()] == ["t2"]
