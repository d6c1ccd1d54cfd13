"""Send a dead-letter queue's messages back where they were going, once each.

``plan`` is the dry run: every message of the queue, classified, with what a redrive would do
(``send`` to the route's target, or ``keep`` it with the reason: not JSON, an unknown source, an
object that is gone). ``apply`` does it, message by message:

1. A message that cannot be sent is reported. Unreadable ones stay in the queue for a person.
   One whose object is gone is recorded in the ledger as discarded and deleted: redriving it
   would only fail again and come back, a loop.
2. A message to send is first claimed in the ledger (``operations/dead-letters/redriven/<queue>/
   <message id>.json``, written only if absent: S3's ``If-None-Match: *``). A second redrive of
   the same message finds the claim and sends nothing. Then it is sent, deleted from the queue,
   and the claim marked sent.
3. What the targets do with a message sent twice (the same event kept twice) is their own
   idempotency: the upload and manifest starters name executions after the object, a weekly
   run redriven is named after its message, so no run starts twice.

How a message is sent follows its route's ``via``: ``lambda`` invokes the function
asynchronously with the event (an SNS envelope is wrapped as the Lambda event SNS would have
sent); ``states`` starts the machine with the rule's input; ``sns`` publishes the kept event as a
readable notice (EventBridge's input transformer cannot be run again from here).

Runs with the operator's credentials (``scripts/redrive.py``, the dashboard), never in a Lambda:
sending to every target of the pipeline is not a permission any function should hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas.operations.dead_letters import (
    LEDGER_PREFIX,
    PEEK_VISIBILITY_S,
    Classified,
    Message,
    RegistryError,
    Route,
    classify,
    iso,
    peek,
    release,
    s3_object,
)

# Long enough to send a batch, short enough that a crashed redrive's messages return soon.
APPLY_VISIBILITY_S = 120
GONE_CODES = ("404", "NoSuchKey", "NoSuchVersion", "NotFound")
S3_OBJECT_EVENTS = ("Object Created", "Object Restore Completed")


class RedriveError(RuntimeError):
    """The redrive cannot go on (unknown queue, a route it cannot send by)."""


@dataclass(frozen=True)
class Planned:
    """One message and what a redrive does with it."""

    classified: Classified
    action: str  # "send" or "keep"
    reason: str
    # For a send: the target, and what it gets.
    target: str = ""
    payload: str = ""

    def to_dict(self) -> dict[str, Any]:
        c = self.classified
        return {
            "message_id": c.message.message_id,
            "queue": c.route.name,
            "kind": c.route.kind,
            "source": c.source,
            "subject": c.subject,
            "error_class": c.error_class,
            "sent_at": iso(c.message.sent_at),
            "action": self.action,
            "reason": self.reason,
            "target": self.target,
        }


@dataclass(frozen=True)
class Outcome:
    """What ``apply`` did with one message."""

    message_id: str
    subject: str
    result: str  # sent, already-redriven, discarded, kept, failed
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {
            "message_id": self.message_id,
            "subject": self.subject,
            "result": self.result,
            "detail": self.detail,
        }


def redrive_name(route: Route, message: Message) -> str:
    """A started execution's name, the same for every redrive of one message."""
    digest = hashlib.sha256(
        f"{route.name}\x1f{message.message_id}".encode(), usedforsecurity=False
    ).hexdigest()[:40]
    return f"redrive-{digest}"


class Redrive:
    """The redrive of one deployment's queues, with the clients of whoever runs it."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        sqs: Any,
        s3: Any,
        ledger_bucket: str,
        lambda_: Any = None,
        stepfunctions: Any = None,
        sns: Any = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.routes = routes
        self.sqs, self.s3, self.ledger_bucket = sqs, s3, ledger_bucket
        self.lambda_, self.stepfunctions, self.sns = lambda_, stepfunctions, sns
        self.now = now

    def route(self, queue: str) -> Route:
        route = self.routes.get(queue)
        if route is None:
            raise RedriveError(
                f"no dead-letter queue named {queue!r}; the queues are: "
                + ", ".join(sorted(self.routes))
            )
        if not route.via or not route.target:
            raise RegistryError(f"queue {queue!r}: the registry names no target to redrive to")
        return route

    # -- the dry run ------------------------------------------------------------------------------
    def plan(self, queue: str) -> list[Planned]:
        """What a redrive of ``queue`` would do now, message by message (nothing is sent)."""
        route = self.route(queue)
        return [self._decide(classify(m, route)) for m in peek(self.sqs, route)]

    def _decide(self, c: Classified) -> Planned:
        if c.source == "not-json":
            return Planned(
                c, "keep", "the body is not JSON: nothing to send; read it and delete it"
            )
        if c.source == "unknown":
            return Planned(c, "keep", f"unknown source ({c.subject}): not sent where it may not go")
        gone = self._object_gone(c.event)
        if gone:
            return Planned(c, "keep", gone)
        route = c.route
        if route.via == "lambda":
            return Planned(c, "send", "invoke", route.target, json.dumps(_lambda_event(c.event)))
        if route.via == "states":
            return Planned(c, "send", "start execution", route.target, route.input or "{}")
        return Planned(c, "send", "publish notice", route.target, _notice(c))

    def _object_gone(self, event: Any) -> str:
        """Why an S3 event's object cannot be processed any more ('' when it is there)."""
        located = s3_object(event)
        if located is None or event.get("detail-type") not in S3_OBJECT_EVENTS:
            return ""
        bucket, key, version_id = located
        params: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            self.s3.head_object(**params)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in GONE_CODES:
                version = f" (version {params['VersionId']})" if "VersionId" in params else ""
                return f"object gone: s3://{bucket}/{params['Key']}{version} no longer exists"
            raise
        return ""

    # -- the redrive ------------------------------------------------------------------------------
    def apply(self, queue: str) -> list[Outcome]:
        """Redrive every message of ``queue`` as ``plan`` says; each message at most once."""
        route = self.route(queue)
        outcomes: list[Outcome] = []
        seen: set[str] = set()
        # Kept messages stay hidden until the pass is done, so the next receive answers only
        # messages not handled yet; then they are released for a person to read.
        kept: list[Message] = []
        try:
            self._pass(route, outcomes, seen, kept)
        finally:
            release(self.sqs, route, kept)
        return outcomes

    def _pass(
        self, route: Route, outcomes: list[Outcome], seen: set[str], kept: list[Message]
    ) -> None:
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=route.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=APPLY_VISIBILITY_S,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch = [
                Message.from_sqs(route.name, raw)
                for raw in answer.get("Messages") or []
                if raw["MessageId"] not in seen
            ]
            if not batch:
                return
            for message in batch:
                seen.add(message.message_id)
                outcome = self._one(self._decide(classify(message, route)))
                outcomes.append(outcome)
                if outcome.result in ("kept", "failed"):
                    kept.append(message)

    def _one(self, planned: Planned) -> Outcome:
        c = planned.classified
        message, route = c.message, c.route
        ledger_key = f"{LEDGER_PREFIX}{route.name}/{message.message_id}.json"
        record = {
            "queue": route.name,
            "message_id": message.message_id,
            "subject": c.subject,
            "error_class": c.error_class,
            "kept_since": iso(message.sent_at),
            "target": planned.target or route.target,
        }
        if planned.action == "keep":
            if not planned.reason.startswith("object gone"):
                return Outcome(message.message_id, c.subject, "kept", planned.reason)
            # Recorded, then removed: sent again it would only fail and come back.
            self._claim(ledger_key, {**record, "state": "discarded", "reason": planned.reason})
            self._delete(route, message)
            return Outcome(message.message_id, c.subject, "discarded", planned.reason)
        earlier = self._claim(ledger_key, {**record, "state": "sending", "at": iso(self.now())})
        if earlier is not None:
            state = earlier.get("state")
            if state in ("sent", "discarded"):
                self._delete(route, message)
                return Outcome(
                    message.message_id,
                    c.subject,
                    "already-redriven",
                    f"{state} at {earlier.get('at', '?')}: nothing sent again",
                )
            return Outcome(
                message.message_id,
                c.subject,
                "kept",
                f"an earlier redrive claimed it at {earlier.get('at', '?')} and did not finish; "
                f"check its target, then delete s3://{self.ledger_bucket}/{ledger_key} to retry",
            )
        try:
            detail = self._send(planned)
        except ClientError as err:
            self.s3.delete_object(Bucket=self.ledger_bucket, Key=ledger_key)
            code = err.response.get("Error", {}).get("Code", "error")
            return Outcome(message.message_id, c.subject, "failed", f"{code}: {err}")
        self._delete(route, message)
        self._put(ledger_key, {**record, "state": "sent", "at": iso(self.now()), "detail": detail})
        return Outcome(message.message_id, c.subject, "sent", detail)

    def _send(self, planned: Planned) -> str:
        route = planned.classified.route
        if route.via == "lambda":
            self.lambda_.invoke(
                FunctionName=planned.target, InvocationType="Event", Payload=planned.payload
            )
            return f"invoked {planned.target.rsplit(':', 1)[-1]} asynchronously"
        if route.via == "states":
            name = redrive_name(route, planned.classified.message)
            try:
                started = self.stepfunctions.start_execution(
                    stateMachineArn=planned.target, name=name, input=planned.payload
                )
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                    return f"execution {name} had already started: nothing started twice"
                raise
            return f"started {started['executionArn']}"
        self.sns.publish(
            TopicArn=planned.target,
            Subject=f"Redriven notice from {route.name}"[:100],
            Message=planned.payload,
        )
        return "published to the alerts topic"

    def _claim(self, key: str, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """Write the ledger entry if none exists; else answer the earlier one."""
        try:
            self.s3.put_object(
                Bucket=self.ledger_bucket,
                Key=key,
                Body=json.dumps(record).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                raise
            earlier = self.s3.get_object(Bucket=self.ledger_bucket, Key=key)
            found = json.loads(earlier["Body"].read())
            return found if isinstance(found, dict) else {}
        return None

    def _put(self, key: str, record: Mapping[str, Any]) -> None:
        self.s3.put_object(
            Bucket=self.ledger_bucket,
            Key=key,
            Body=json.dumps(record).encode(),
            ContentType="application/json",
        )

    def _delete(self, route: Route, message: Message) -> None:
        self.sqs.delete_message(QueueUrl=route.url, ReceiptHandle=message.receipt_handle)


def _lambda_event(event: Any) -> Any:
    """What the function would have been invoked with: an SNS envelope kept by SNS's own
    dead-letter queue becomes the Lambda event SNS sends; anything else is already it."""
    if isinstance(event, Mapping) and event.get("Type") == "Notification" and "TopicArn" in event:
        return {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": f"{event['TopicArn']}:redriven",
                    "Sns": dict(event),
                }
            ]
        }
    return event


def _notice(c: Classified) -> str:
    """A failure notice kept by EventBridge, as the readable message the rule would have sent."""
    event = c.event if isinstance(c.event, Mapping) else {}
    detail = event.get("detail") if isinstance(event.get("detail"), Mapping) else {}
    return "\n".join(
        [
            f"Redriven from {c.route.name} (kept since {iso(c.message.sent_at)}; it could not be "
            f"delivered then: {c.error_class}).",
            f"{event.get('detail-type', 'Event')} from {event.get('source', '?')}: {c.subject}",
            f"Detail: {json.dumps(detail, sort_keys=True)[:3000]}",
        ]
    )


__all__ = ["PEEK_VISIBILITY_S", "Outcome", "Planned", "Redrive", "RedriveError", "redrive_name"]
