"""Dead letters end to end: a poisoned upload lands in its queue, the analyzer classifies it, the
redrive sends it back once.

The world deploys the monitoring stack too (the analyzer and the ``DeadLetterQueues`` registry),
and Lambda's dead-letter sends are simulated (``localworld.dead_letters``): the upload starter
fails under a Step Functions outage, Lambda retries it twice, and sends the event to the
starter's queue with the starter's own role, which the synthesized IAM must allow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lambdas.operations.dead_letters import LEDGER_PREFIX, SUMMARY_KEY, parse_registry, peek
from lambdas.operations.redrive import Redrive
from localworld import World, WorldOptions
from localworld.runtime import LOG
from tests.conftest import SynthesizedApp

QUEUE = "UndeliveredUploadStarts"


@pytest.fixture(scope="module")
def world(synthesized: SynthesizedApp) -> Iterator[World]:
    with World(synthesized.templates, WorldOptions(env="Dev", monitoring=True)) as local:
        # The analyzer runs when a test says (fire_rule), not every 15 simulated minutes (half
        # a real second here), which would hide messages from a test's own reads meanwhile.
        (rule,) = [name for name in local.deployer.rules if "DeadLetterAnalysis" in name]
        local.client("events").disable_rule(Name=rule)
        yield local


def redrive_of(world: World) -> Redrive:
    return Redrive(
        parse_registry(world.dead_letter_registry),
        sqs=world.client("sqs"),
        s3=world.client("s3"),
        ledger_bucket=world.processed_bucket,
        lambda_=world.client("lambda"),
        stepfunctions=world.client("stepfunctions"),
        sns=world.client("sns"),
    )


def analyze(world: World) -> dict:
    (answer,) = world.fire_rule("DeadLetterAnalysis")
    assert answer["error"] is None, answer["payload"]
    return world.read_json(world.processed_bucket, SUMMARY_KEY)


def upload_executions(world: World) -> list[dict]:
    return [e for e in world.executions() if e["name"].startswith("upload-")]


def test_the_registry_names_one_queue_per_kind_of_message(world: World) -> None:
    registry = parse_registry(world.dead_letter_registry)
    kinds = [route.kind for route in registry.values()]
    assert len(kinds) == len(set(kinds)), kinds
    assert {
        "upload-starts",
        "weekly-runs",
        "rekognition-notices",
        "heartbeat-sweeps",
        "transcribe-events",
        "restore-events",
        "story-manifests",
        "failure-notices",
    } <= set(kinds)
    urls = [route.url for route in registry.values()]
    assert len(urls) == len(set(urls)), "two kinds share a queue"


def test_a_poisoned_upload_is_classified_and_redriven_once(world: World) -> None:
    sqs = world.client("sqs")
    redrive = redrive_of(world)
    route = redrive.route(QUEUE)
    key = "uploads/poisoned clip.mp4"
    event = world.upload(key, b"\x00\x00\x00\x18ftypmp42 not really a clip")
    starter_calls = len(LOG.of("lambdas.trigger.handler.handler"))
    with world.start_execution_outage():
        (answer,) = world.deliver_event(event)
    assert answer["error"] == "Unhandled" and answer["dead_lettered"] is True, answer
    # The first try and Lambda's two retries, all refused by the outage.
    assert len(LOG.of("lambdas.trigger.handler.handler")) - starter_calls == 3
    assert upload_executions(world) == []

    before = len(world.notifications())
    summary = analyze(world)
    (group,) = [g for g in summary["groups"] if g["queue"] == QUEUE]
    assert group["kind"] == "upload-starts"
    assert group["source"] == "aws.s3"
    assert group["subject"] == f"s3://{world.raw_bucket}/{key}"
    assert group["error_class"] == "ServiceUnavailable"
    assert group["delivered_by"] == "lambda"
    assert group["count"] == 1 and group["first_seen"] == group["last_seen"]
    assert summary["new"] >= 1 and summary["digest_sent"] is True
    digest = world.notifications()[before:]
    (text,) = [n["message"] for n in digest if QUEUE in n["message"]]
    assert key in text and "ServiceUnavailable" in text
    assert f"make redrive ENV=<env> QUEUE={QUEUE}" in text
    # Read without consuming: the message is still there, and a second pass sends no digest.
    assert len(peek(sqs, route)) == 1
    again = analyze(world)
    assert again["new"] == 0 and again["digest_sent"] is False
    assert len(world.notifications()) == before + 1

    # The dry run lists what would be sent, and sends nothing.
    (planned,) = redrive.plan(QUEUE)
    assert planned.action == "send" and planned.target == route.target
    assert json.loads(planned.payload) == event
    assert len(peek(sqs, route)) == 1 and upload_executions(world) == []

    (outcome,) = redrive.apply(QUEUE)
    assert outcome.result == "sent", outcome
    (execution,) = upload_executions(world)
    assert world.wait(execution["executionArn"]).status in ("SUCCEEDED", "FAILED")
    assert peek(sqs, route) == []
    ledger = world.read_json(
        world.processed_bucket, f"{LEDGER_PREFIX}{QUEUE}/{outcome.message_id}.json"
    )
    assert ledger["state"] == "sent" and ledger["subject"] == group["subject"]

    # Redriven again: nothing left to send, nothing started.
    assert redrive.apply(QUEUE) == []
    # The same event kept twice (EventBridge delivers at least once): sent again, yet the
    # starter names the run after the object, so no second run starts.
    sqs.send_message(QueueUrl=route.url, MessageBody=json.dumps(event))
    (duplicate,) = redrive.apply(QUEUE)
    assert duplicate.result == "sent"
    assert len(upload_executions(world)) == 1


def test_a_message_for_a_gone_object_is_reported_not_looped(world: World) -> None:
    sqs, s3 = world.client("sqs"), world.client("s3")
    redrive = redrive_of(world)
    route = redrive.route(QUEUE)
    key = "uploads/deleted before the redrive.mp4"
    event = world.upload(key, b"\x00\x00\x00\x18ftypmp42 gone soon")
    with world.start_execution_outage():
        world.deliver_event(event)
    s3.delete_object(
        Bucket=world.raw_bucket, Key=key, VersionId=event["detail"]["object"]["version-id"]
    )
    (planned,) = [p for p in redrive.plan(QUEUE) if p.classified.subject.endswith(key)]
    assert planned.action == "keep" and planned.reason.startswith("object gone"), planned
    starts = len(LOG.of("lambdas.trigger.handler.handler"))
    (outcome,) = redrive.apply(QUEUE)
    assert outcome.result == "discarded" and key in outcome.detail
    assert len(LOG.of("lambdas.trigger.handler.handler")) == starts, "sent anyway"
    assert peek(sqs, route) == []
    ledger = world.read_json(
        world.processed_bucket, f"{LEDGER_PREFIX}{QUEUE}/{outcome.message_id}.json"
    )
    assert ledger["state"] == "discarded"


def test_an_unreadable_message_is_classified_and_kept(world: World) -> None:
    sqs = world.client("sqs")
    redrive = redrive_of(world)
    route = redrive.route("UndeliveredTranscribeEvents")
    sqs.send_message(QueueUrl=route.url, MessageBody="<not json>")
    sqs.send_message(
        QueueUrl=route.url,
        MessageBody=json.dumps({"source": "acme.billing", "detail": {}, "detail-type": "Invoice"}),
    )
    summary = analyze(world)
    groups = {g["source"]: g for g in summary["groups"] if g["queue"] == route.name}
    assert set(groups) == {"not-json", "unknown"}
    assert groups["not-json"]["subject"] == "<not json>"
    assert groups["unknown"]["subject"] == "acme.billing: Invoice"
    outcomes = redrive.apply(route.name)
    assert [o.result for o in outcomes] == ["kept", "kept"]
    assert len(peek(sqs, route)) == 2
