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
