"""Run summary: one readable message on the alerts topic, and the counts for the execution."""

from __future__ import annotations

import json

import pytest

from lambdas.notify.summary import RunSummary, message, subject, summarize
from lambdas.notify.summary import handler as summary_handler
from tests.lambdas.pipeline.builders import ACCOUNT, REGION, aws_client

EXECUTION = (
    f"arn:aws:states:{REGION}:{ACCOUNT}:execution:PipelineStateMachine1A2B3C:weekly-2025-01-06"
)
PROCESSED = {
    "asset_id": "wikimedia-aaa",
    "status": "PROCESSED",
    "labels_key": "video/wikimedia/travel/20250106_060000/Tram_labels.json",
    "top_labels": ["Tram", "Street", "Building"],
}
FAILED = {
    "asset_id": "pixabay-bbb",
    "status": "FAILED",
    "reason": "MediaConvert job 1-x failed (error 1030): unsupported codec",
}


@pytest.fixture
def alerts(aws, monkeypatch):
    """The alerts topic, with a queue subscribed so the test can read what was published."""
    sns = aws_client("sns")
    sqs = aws_client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("ALERTS_TOPIC_ARN", topic)

    def received() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    return received


def test_partial_run_publishes_counts_and_reasons(alerts, lambda_context):
    # Given a run with two processed assets, one failure and some ingest skips and errors
    event = {
        "execution": EXECUTION,
        "campaign": "travel",
        "results": [PROCESSED, FAILED, {**PROCESSED, "asset_id": "wikimedia-ccc"}],
        "ingest": {
            "skipped": {"license": 2, "too_large": 1},
            "errors": [{"source": "pixabay", "error": "HTTP 429 after 5 retries"}],
        },
    }
    # When the summary step runs
    counts = summary_handler(event, lambda_context)
    # Then the execution gets the counts
    assert counts == {"processed": 2, "failed": 1, "status": "PARTIAL"}
    # And operators get one readable message
    (published,) = alerts()
    assert published["Subject"] == "[media-pipeline-dev] travel: 2 processed, 1 failed"
    text = published["Message"]
    assert "Media pipeline run: PARTIAL" in text
    assert "Processed: 2" in text and "Failed:    1" in text
    assert "pixabay-bbb: MediaConvert job 1-x failed (error 1030): unsupported codec" in text
    assert "wikimedia-aaa: Tram, Street, Building" in text
    assert "Skipped at ingest: 3 (license: 2, too_large: 1)" in text
    assert "pixabay: HTTP 429 after 5 retries" in text
    assert (
        f"https://{REGION}.console.aws.amazon.com/states/home?region={REGION}"
        f"#/v2/executions/details/{EXECUTION}"
    ) in text


def test_clean_run_succeeds(alerts, lambda_context):
    counts = summary_handler(
        {"execution": "manual-1", "campaign": "tech", "results": [PROCESSED], "ingest": {}},
        lambda_context,
    )
    assert counts == {"processed": 1, "failed": 0, "status": "SUCCEEDED"}
    (published,) = alerts()
    assert "Console:" not in published["Message"]  # a bare name is not linkable


def test_run_without_new_assets_is_empty(alerts, lambda_context):
    # Given a run where ingest found nothing new
    counts = summary_handler(
        {
            "execution": EXECUTION,
            "campaign": "nature",
            "results": [],
            "ingest": {"skipped": {"already_ingested": 4}, "errors": []},
        },
        lambda_context,
    )
    # Then it is EMPTY, and the message says so
    assert counts == {"processed": 0, "failed": 0, "status": "EMPTY"}
    (published,) = alerts()
    assert published["Subject"] == "[media-pipeline-dev] nature: no new assets"
    assert "nothing was transcoded" in published["Message"]


def test_subject_stays_within_sns_limits():
    # Given a long, non-ASCII campaign name and deployment
    summary = RunSummary(
        execution="x",
        campaign="café-" * 30,
        deployment="media-pipeline-prod",
        processed=[PROCESSED],
    )
    # When the subject is built
    text = subject(summary)
    # Then it is one line of printable ASCII under 100 characters
    assert len(text) < 100 and text.isascii() and text.isprintable()


def test_unrecognized_results_count_as_failures():
    summary = summarize(
        {"results": [PROCESSED, None, {"asset_id": "x", "status": "RUNNING"}]}, deployment="d"
    )
    assert summary.counts() == {"processed": 1, "failed": 2, "status": "PARTIAL"}
    assert "x: unrecognized result" in message(summary)


def test_long_failure_lists_are_shortened():
    failures = [{**FAILED, "asset_id": f"a{i}"} for i in range(120)]
    text = message(
        summarize(
            {
                "results": failures,
                "ingest": {"skipped": [{"reason": "license"}, {"reason": "license"}]},
            },
            deployment="d",
        )
    )
    assert "- ... and 70 more" in text
    assert "Skipped at ingest: 2 (license: 2)" in text


# -- failures that must still be read: unrecorded assets, failed runs --------------------------

STACK_TRACE = [
    f'  File "/var/task/lambdas/ingest/service.py", line {n}, in run_campaign\n' for n in range(40)
]


def lambda_error(error_type: str, message: str) -> dict:
    """A Lambda function error as a Catch sees it: about 1 kB of JSON with a stack trace."""
    return {
        "Error": error_type,
        "Cause": json.dumps(
            {
                "errorMessage": message,
                "errorType": error_type,
                "requestId": "9f1c2a8e-0000-4000-8000-000000000042",
                "stackTrace": STACK_TRACE,
            }
        ),
    }


def test_a_failure_the_catalog_did_not_record_is_listed_as_such(alerts, lambda_context):
    # Given one asset whose failure mark-failed could not write to the catalog
    unrecorded = {
        **FAILED,
        "recorded": False,
        "not_recorded": "the catalog could not record it: DynamoDB answered "
        "ProvisionedThroughputExceededException",
    }
    event = {"execution": EXECUTION, "campaign": "travel", "results": [PROCESSED, unrecorded]}

    # When the summary runs
    counts = summary_handler(event, lambda_context)

    # Then the counts and the message say it, so nobody trusts the dashboard's FAILED list alone
    assert counts == {"processed": 1, "failed": 1, "status": "PARTIAL", "not_recorded": 1}
    text = alerts()[0]["Message"]
    assert "Failures not recorded in the catalog: 1" in text
    assert (
        "pixabay-bbb: MediaConvert job 1-x failed (error 1030): unsupported codec (not recorded "
        "in the catalog: the catalog could not record it: DynamoDB answered "
        "ProvisionedThroughputExceededException)"
    ) in text


def test_a_run_that_failed_after_resolve_publishes_a_summary_with_a_readable_cause(
    alerts, lambda_context
):
    # Given a run whose ingest failed: the Run state's Catch hands over the resolved input and
    # the raw Lambda error (about 1 kB with a stack trace)
    error = lambda_error(
        "SourceUnavailable",
        "every source failed: commons: commons.wikimedia.org/w/api.php answered text/html "
        "instead of JSON (body starts '<!DOCTYPE html>'); pixabay: pixabay.com/api/videos/ "
        "answered HTTP 429",
    )
    assert len(error["Cause"]) > 1000
    event = {
        "execution": EXECUTION,
        "run": {"campaign": "travel", "batch_sizes": {"video": 2}, "error": error},
    }

    # When the failure summary runs
    result = summary_handler(event, lambda_context)

    # Then the execution gets a short Error and a Cause that says what failed and why
    assert result["status"] == "FAILED"
    assert result["error"] == "SourceUnavailable"
    assert result["cause"].startswith(
        "The run failed: SourceUnavailable: every source failed: commons: "
        "commons.wikimedia.org/w/api.php answered text/html instead of JSON"
    )
    assert len(result["cause"]) <= 500
    assert "stackTrace" not in result["cause"] and "File " not in result["cause"]
    assert result["published"] is True
    # And operators get the run summary, as for every run that got past Resolve
    (published,) = alerts()
    assert published["Subject"] == "[media-pipeline-dev] travel: run failed"
    text = published["Message"]
    assert text.startswith("Media pipeline run: FAILED\n")
    assert f"Reason: {result['cause']}" in text
    assert "stackTrace" not in text


def test_a_run_that_failed_in_resolve_still_gets_a_readable_cause(alerts, lambda_context):
    # Given the configuration parameter could not be read (Resolve failed, not bad input)
    error = lambda_error(
        "ParameterNotFound",
        "An error occurred (ParameterNotFound) when calling the GetParameter operation: "
        "Parameter /media-pipeline/dev/campaigns not found.",
    )
    # When summarized
    result = summary_handler({"execution": EXECUTION, "run": {"error": error}}, lambda_context)
    # Then the cause names the error and the campaign is reported as unknown
    assert result["cause"].startswith("The run failed: ParameterNotFound: An error occurred")
    assert "unknown campaign" in alerts()[0]["Subject"]


def test_a_failed_run_still_gets_its_cause_when_publishing_fails(lambda_context, monkeypatch):
    # Given an alerts topic that cannot be reached
    monkeypatch.setenv("ALERTS_TOPIC_ARN", f"arn:aws:sns:{REGION}:{ACCOUNT}:gone")
    event = {
        "execution": EXECUTION,
        "run": {"campaign": "travel", "error": {"Error": "States.Timeout"}},
    }
    # When the failure summary runs against it (moto: the topic does not exist)
    from moto import mock_aws

    with mock_aws():
        result = summary_handler(event, lambda_context)
    # Then the cause is still returned for the Fail state, saying the summary was not published
    assert result["cause"] == (
        "The run failed: States.Timeout: the step did not finish within its timeout"
    )
    assert result["published"] is False


def test_summary_lines_name_each_source_once_and_stay_short():
    summary = summarize(
        {
            "results": [{**FAILED, "reason": "x" * 5000}],
            "ingest": {
                "errors": [
                    {"source": "commons", "error": "commons: gave up\non the API"},
                    {"source": "pixabay", "error": "HTTP 429 " + "y" * 5000},
                ]
            },
        },
        deployment="d",
    )
    lines = message(summary).splitlines()
    assert "- commons: gave up on the API" in lines
    assert all(len(line) <= 402 for line in lines), max(len(line) for line in lines)
    assert any(line.startswith("- pixabay: HTTP 429 yyy") and line.endswith("…") for line in lines)
