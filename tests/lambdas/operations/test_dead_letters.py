"""The dead-letter analyzer and redrive against moto's SQS, S3, SNS, Lambda and Step Functions.

What each service writes into a dead-letter queue (body and attributes) is reproduced as the
service writes it (``lambdas/operations/dead_letters.py`` documents the three shapes); the e2e
test (``tests/e2e/test_dead_letters.py``) has Lambda's own sends produce them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from moto import mock_aws

from constructs_lib.dead_letter_analysis import ANALYZER, DEAD_LETTER_CLASS_DIMENSIONS
from lambdas.operations import analyzer
from lambdas.operations.dead_letters import (
    LEDGER_PREFIX,
    SUMMARY_KEY,
    RegistryError,
    Route,
    classify,
    parse_registry,
    peek,
)
from lambdas.operations.redrive import Redrive, RedriveError, redrive_name
from tests.lambdas.conftest import client

BUCKET = "processed-test"
S3_EVENT = {
    "version": "0",
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {
        "bucket": {"name": "raw-test"},
        "object": {"key": "uploads/a+b.mp4", "size": 10},
    },
}
NOTICE = {
    "Type": "Notification",
    "MessageId": "m-1",
    "TopicArn": "arn:aws:sns:us-east-1:123456789012:rekognition",
    "Message": json.dumps({"JobId": "job-1", "JobTag": "asset-7", "API": "StartLabelDetection"}),
}
LAMBDA_ERROR = {
    "RequestID": {"DataType": "String", "StringValue": "r-1"},
    "ErrorCode": {"DataType": "Number", "StringValue": "200"},
    "ErrorMessage": {
        "DataType": "String",
        "StringValue": "An error occurred (ThrottlingException) when calling the StartExecution "
        "operation: Rate exceeded",
    },
}
EVENTS_ERROR = {
    name: {"DataType": "String", "StringValue": value}
    for name, value in {
        "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/weekly",
        "TARGET_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline",
        "ERROR_CODE": "NO_PERMISSIONS",
        "ERROR_MESSAGE": "not authorized to start the execution",
    }.items()
}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sqs, s3 = client("sqs"), client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket="raw-test")
        topic = client("sns").create_topic(Name="alerts")["TopicArn"]
        machine = client("stepfunctions").create_state_machine(
            name="pipeline",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        registry = {}
        for name, kind, via, target in (
            (
                "UndeliveredUploadStarts",
                "upload-starts",
                "lambda",
                "arn:aws:lambda:us-east-1:123456789012:function:starter",
            ),
            ("UndeliveredWeeklyRuns", "weekly-runs", "states", machine),
            ("UndeliveredFailureNotices", "failure-notices", "sns", topic),
        ):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            registry[name] = {
                "url": url,
                "arn": arn,
                "kind": kind,
                "describes": f"{kind} kept",
                "via": via,
                "target": target,
            }
        yield {
            "registry": registry,
            "routes": parse_registry(registry),
            "topic": topic,
            "machine": machine,
        }


def put(route: Route, body: str, attributes: dict[str, Any] | None = None) -> str:
    return client("sqs").send_message(
        QueueUrl=route.url, MessageBody=body, MessageAttributes=attributes or {}
    )["MessageId"]


def run_analyzer(aws: dict[str, Any]) -> dict[str, Any]:
    return analyzer.analyze(
        aws["routes"],
        sqs=client("sqs"),
        s3=client("s3"),
        sns=client("sns"),
        bucket=BUCKET,
        topic_arn=aws["topic"],
        deployment="test",
        now=lambda: datetime(2026, 12, 3, 12, tzinfo=UTC),
    )


class Recorder:
    """A Lambda client that keeps what it was asked to invoke (moto runs no functions)."""

    def __init__(self) -> None:
        self.invoked: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.invoked.append(kwargs)
        return {"StatusCode": 202}


def redrive(aws: dict[str, Any], lam: Recorder | None = None) -> Redrive:
    return Redrive(
        aws["routes"],
        sqs=client("sqs"),
        s3=client("s3"),
        ledger_bucket=BUCKET,
        lambda_=lam or Recorder(),
        stepfunctions=client("stepfunctions"),
        sns=client("sns"),
    )


def test_each_service_s_message_is_classified(aws: dict[str, Any]) -> None:
    uploads = aws["routes"]["UndeliveredUploadStarts"]
    put(uploads, json.dumps(S3_EVENT), LAMBDA_ERROR)
    put(uploads, json.dumps(NOTICE))
    put(uploads, json.dumps(S3_EVENT), EVENTS_ERROR)
    put(uploads, "{truncated")
    put(uploads, json.dumps({"source": "acme.orders", "detail-type": "Order", "detail": {}}))
    put(uploads, json.dumps([1, 2]))
    found = {
        (c.source, c.delivered_by, c.error_class, c.subject)
        for c in (classify(m, uploads) for m in peek(client("sqs"), uploads))
    }
    assert found == {
        ("aws.s3", "lambda", "ThrottlingException", "s3://raw-test/uploads/a b.mp4"),
        ("sns", "sns", "Undeliverable", "Rekognition StartLabelDetection job-1 (asset-7)"),
        ("aws.s3", "eventbridge", "NO_PERMISSIONS", "s3://raw-test/uploads/a b.mp4"),
        ("not-json", "sns", "Undeliverable", "{truncated"),
        ("unknown", "sns", "Undeliverable", "acme.orders: Order"),
        ("unknown", "sns", "Undeliverable", "a JSON list"),
    }


def test_peek_consumes_nothing(aws: dict[str, Any]) -> None:
    route = aws["routes"]["UndeliveredUploadStarts"]
    for _ in range(12):
        put(route, json.dumps(S3_EVENT), LAMBDA_ERROR)
    first = peek(client("sqs"), route)
    assert len(first) == 12
    assert {m.message_id for m in peek(client("sqs"), route)} == {m.message_id for m in first}


def test_the_analyzer_writes_the_summary_and_digests_only_what_is_new(aws: dict[str, Any]) -> None:
    uploads = aws["routes"]["UndeliveredUploadStarts"]
    put(uploads, json.dumps(S3_EVENT), LAMBDA_ERROR)
    put(uploads, json.dumps(S3_EVENT), LAMBDA_ERROR)
    summary = run_analyzer(aws)
    assert summary["total"] == 2 and summary["new"] == 2 and summary["digest_sent"]
    (group,) = summary["groups"]
    assert group["count"] == 2 and group["error_class"] == "ThrottlingException"
    assert group["kind"] == "upload-starts" and group["describes"] == "upload-starts kept"
    stored = json.loads(client("s3").get_object(Bucket=BUCKET, Key=SUMMARY_KEY)["Body"].read())
    assert stored["groups"] == summary["groups"] and stored["digest_sent"] is True
    assert stored["queues"]["UndeliveredWeeklyRuns"]["count"] == 0
    history = client("s3").list_objects_v2(Bucket=BUCKET, Prefix="operations/dead-letters/history/")
    assert history["KeyCount"] == 1
    again = run_analyzer(aws)
    assert again["new"] == 0 and again["digest_sent"] is False
    history = client("s3").list_objects_v2(Bucket=BUCKET, Prefix="operations/dead-letters/history/")
    assert history["KeyCount"] == 1, "an unchanged summary is not history"
    put(
        aws["routes"]["UndeliveredWeeklyRuns"],
        json.dumps({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        EVENTS_ERROR,
    )
    third = run_analyzer(aws)
    assert third["new"] == 1 and third["digest_sent"] is True


def test_the_digest_names_the_queue_the_error_and_the_command() -> None:
    from lambdas.operations.dead_letters import group

    route = Route("UndeliveredUploadStarts", "u", "a", "upload-starts", "d", "lambda", "t")
    message = __import__("lambdas.operations.dead_letters", fromlist=["Message"]).Message(
        queue=route.name,
        message_id="m",
        receipt_handle="r",
        body=json.dumps(S3_EVENT),
        sent_at=datetime(2026, 12, 1, tzinfo=UTC),
        receive_count=1,
        attributes={"ErrorMessage": "Unprocessable: not a clip", "RequestID": "x"},
    )
    text = analyzer.digest(
        group([classify(message, route)]), new=1, total=1, bucket="b", deployment="dev"
    )
    assert (
        "UndeliveredUploadStarts (upload-starts): 1 x Unprocessable for s3://raw-test/uploads/a b.mp4"
        in text
    )
    assert "first 2026-12-01T00:00:00Z" in text
    assert "make redrive ENV=<env> QUEUE=UndeliveredUploadStarts" in text


def test_an_unreadable_queue_is_reported_and_the_rest_analyzed(aws: dict[str, Any]) -> None:
    client("sqs").delete_queue(QueueUrl=aws["routes"]["UndeliveredWeeklyRuns"].url)
    put(aws["routes"]["UndeliveredUploadStarts"], json.dumps(S3_EVENT), LAMBDA_ERROR)
    summary = run_analyzer(aws)
    assert "unreadable" in summary["queues"]["UndeliveredWeeklyRuns"]
    assert summary["queues"]["UndeliveredUploadStarts"]["count"] == 1


def test_the_analyzer_counts_each_class_in_its_own_metric(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the service name the deployed function has (Powertools makes it a dimension)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", ANALYZER.service)
    put(aws["routes"]["UndeliveredUploadStarts"], json.dumps(S3_EVENT), LAMBDA_ERROR)
    put(aws["routes"]["UndeliveredUploadStarts"], "not json")
    run_analyzer(aws)
    documents = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    per_class = {
        (d["queue"], d["error_class"]): d["DeadLetterMessages"][0]
        for d in documents
        if "DeadLetterMessages" in d
    }
    assert per_class == {
        ("UndeliveredUploadStarts", "ThrottlingException"): 1.0,
        ("UndeliveredUploadStarts", "Undeliverable"): 1.0,
    }
    # And each count carries exactly the dimensions the dashboard's SEARCH names, so the
    # per-class graph finds every class the analyzer ever reports
    dimension_sets = {
        tuple(sorted(dimensions))
        for d in documents
        if "DeadLetterMessages" in d
        for directive in d["_aws"]["CloudWatchMetrics"]
        for dimensions in directive["Dimensions"]
    }
    assert dimension_sets == {tuple(sorted(DEAD_LETTER_CLASS_DIMENSIONS))}
    assert {d["service"] for d in documents if "DeadLetterMessages" in d} == {ANALYZER.service}


def test_a_dry_run_sends_nothing_and_a_redrive_sends_each_message_once(aws: dict[str, Any]) -> None:
    route = aws["routes"]["UndeliveredUploadStarts"]
    client("s3").put_object(Bucket="raw-test", Key="uploads/a b.mp4", Body=b"x")
    put(route, json.dumps(S3_EVENT), LAMBDA_ERROR)
    lam = Recorder()
    tool = redrive(aws, lam)
    (planned,) = tool.plan(route.name)
    assert planned.action == "send" and json.loads(planned.payload) == S3_EVENT
    assert lam.invoked == [] and len(peek(client("sqs"), route)) == 1
    (outcome,) = tool.apply(route.name)
    assert outcome.result == "sent"
    assert lam.invoked == [
        {"FunctionName": route.target, "InvocationType": "Event", "Payload": json.dumps(S3_EVENT)}
    ]
    assert peek(client("sqs"), route) == []
    ledger = json.loads(
        client("s3")
        .get_object(Bucket=BUCKET, Key=f"{LEDGER_PREFIX}{route.name}/{outcome.message_id}.json")[
            "Body"
        ]
        .read()
    )
    assert ledger["state"] == "sent"


def test_the_same_message_redriven_twice_is_sent_once(aws: dict[str, Any]) -> None:
    """A redrive that sent a message but died before deleting it: the next one finds the claim."""
    route = aws["routes"]["UndeliveredUploadStarts"]
    client("s3").put_object(Bucket="raw-test", Key="uploads/a b.mp4", Body=b"x")
    put(route, json.dumps(S3_EVENT), LAMBDA_ERROR)
    lam = Recorder()
    tool = redrive(aws, lam)
    undeleted: list[Any] = []
    # The crash: sent, then never deleted; the message shows again when its visibility ends.
    tool._delete = lambda route, message: undeleted.append(message)  # type: ignore[method-assign]
    assert [o.result for o in tool.apply(route.name)] == ["sent"]
    client("sqs").change_message_visibility(
        QueueUrl=route.url, ReceiptHandle=undeleted[0].receipt_handle, VisibilityTimeout=0
    )
    outcomes = redrive(aws, lam).apply(route.name)
    (second,) = outcomes
    assert second.result == "already-redriven"
    assert len(lam.invoked) == 1
    assert peek(client("sqs"), route) == []


def test_a_weekly_run_is_started_once_under_a_name_of_its_message(aws: dict[str, Any]) -> None:
    route = aws["routes"]["UndeliveredWeeklyRuns"]
    put(
        route,
        json.dumps({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        EVENTS_ERROR,
    )
    message = peek(client("sqs"), route)[0]
    (outcome,) = redrive(aws).apply(route.name)
    assert outcome.result == "sent" and redrive_name(route, message) in outcome.detail
    (execution,) = client("stepfunctions").list_executions(stateMachineArn=aws["machine"])[
        "executions"
    ]
    assert execution["name"] == redrive_name(route, message)
    # Sent again under the same name while it runs (a ledger lost with its bucket): Step
    # Functions answers the running execution, and no second run starts.
    redrive(aws)._send(redrive(aws)._decide(classify(message, route)))
    executions = client("stepfunctions").list_executions(stateMachineArn=aws["machine"])
    assert len(executions["executions"]) == 1


def test_a_failure_notice_is_published_readable(aws: dict[str, Any]) -> None:
    route = aws["routes"]["UndeliveredFailureNotices"]
    event = {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"name": "run-1", "status": "FAILED"},
    }
    put(route, json.dumps(event), EVENTS_ERROR)
    (planned,) = redrive(aws).plan(route.name)
    assert planned.action == "send"
    assert "execution run-1 FAILED" in planned.payload and "NO_PERMISSIONS" in planned.payload
    (outcome,) = redrive(aws).apply(route.name)
    assert outcome.result == "sent"


def test_what_cannot_be_sent_is_kept_or_reported(aws: dict[str, Any]) -> None:
    route = aws["routes"]["UndeliveredUploadStarts"]
    put(route, "not json at all")
    put(route, json.dumps({"source": "acme.orders", "detail-type": "Order", "detail": {}}))
    put(route, json.dumps(S3_EVENT), LAMBDA_ERROR)  # its object was never there: gone
    lam = Recorder()
    outcomes = {o.subject: o for o in redrive(aws, lam).apply(route.name)}
    assert outcomes["not json at all"].result == "kept"
    assert outcomes["acme.orders: Order"].result == "kept"
    gone = outcomes["s3://raw-test/uploads/a b.mp4"]
    assert gone.result == "discarded" and gone.detail.startswith("object gone")
    assert lam.invoked == []
    assert sorted(m.body for m in peek(client("sqs"), route)) == sorted(
        [
            "not json at all",
            json.dumps({"source": "acme.orders", "detail-type": "Order", "detail": {}}),
        ]
    )


def test_bad_registries_and_queues_are_named(aws: dict[str, Any]) -> None:
    with pytest.raises(
        RedriveError, match=r"no dead-letter queue named 'Nope'.*UndeliveredUploadStarts"
    ):
        redrive(aws).plan("Nope")
    with pytest.raises(RegistryError, match="not JSON"):
        parse_registry("{")
    with pytest.raises(RegistryError, match="queue 'Q': missing url, kind"):
        parse_registry({"Q": {"via": "lambda"}})
    with pytest.raises(RegistryError, match="via must be one of lambda, states, sns"):
        parse_registry({"Q": {"url": "u", "kind": "k", "via": "ftp", "target": "t"}})
    assert parse_registry({"Q": {"url": "u", "kind": "k"}}, routed=False)["Q"].via == ""
