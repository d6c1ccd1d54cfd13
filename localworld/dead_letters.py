"""What Lambda, EventBridge and SNS do with a delivery they give up on: the dead-letter queue.

moto keeps ``DeadLetterConfig``s but sends nothing to them; without this the pipeline's queues,
their alarms, the analyzer and the redrive could not be exercised locally. The world calls:

* ``lambda_gave_up`` when an asynchronous invocation (an EventBridge or SNS delivery, an
  ``InvocationType=Event`` call such as the redrive's) failed: Lambda tries it again
  ``ASYNC_RETRIES`` times, as its default ``MaximumRetryAttempts``, and when every try failed
  sends the event to the function's ``DeadLetterConfig`` queue **with the function's execution
  role** (its ``sqs:SendMessage`` grant and the queue key are checked as IAM would), with
  Lambda's message attributes ``RequestID``, ``ErrorCode`` (the invoke's HTTP status, ``200``)
  and ``ErrorMessage`` (the first 1 KB of the function's error message).
* ``events_gave_up`` when EventBridge could not invoke a rule's target (the function's resource
  policy refused it): the event goes to the target's ``DeadLetterConfig`` queue as
  ``events.amazonaws.com`` (the queue's policy is checked, with the rule as ``aws:SourceArn``)
  with EventBridge's attributes ``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE``,
  ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION`` and ``RETRY_ATTEMPTS``.

Not faithful: the retries run at once, not one and two minutes later as Lambda's do, and
EventBridge's own retries of a target it cannot reach are not repeated (its policy refuses every
time, so the outcome is the same); SNS's redrive of a subscription it cannot deliver is not
simulated (the world's SNS refuses those deliveries and records the denial); the key policy's
statement for EventBridge is not evaluated for its sends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from localworld import iam

ASYNC_RETRIES = 2
ERROR_MESSAGE_BYTES = 1024


class DeadLetters:
    """One world's dead-letter deliveries; every message sent is kept in ``sent``."""

    def __init__(
        self,
        *,
        client: Callable[[str], Any],
        region: str,
        function_queues: dict[str, str],
        invoke: Callable[[str, str], tuple[bool, Any]],
    ) -> None:
        """``function_queues``: function ARN -> its ``DeadLetterConfig`` queue ARN;
        ``invoke(function_arn, body)`` runs the function once and answers (errored, payload)."""
        self.client, self.region = client, region
        self.function_queues = function_queues
        self.invoke = invoke
        self.sent: list[dict[str, Any]] = []

    def lambda_gave_up(self, function_arn: str, body: str, error: Any) -> bool:
        """Retry an async invocation that failed; on the last failure, dead-letter it.

        Answers whether the event ended in the queue (False: a retry succeeded, or the
        function has no dead-letter queue and Lambda drops the event)."""
        for _ in range(ASYNC_RETRIES):
            errored, error_again = self.invoke(function_arn, body)
            if not errored:
                return False
            error = error_again
        # A qualified ARN (":$LATEST") names the same function and its configuration.
        queue_arn = self.function_queues.get(":".join(function_arn.split(":")[:7]))
        if not queue_arn:
            return False
        message = error.get("errorMessage", "") if isinstance(error, dict) else str(error or "")
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {
                "DataType": "String",
                "StringValue": message.encode()[:ERROR_MESSAGE_BYTES].decode(errors="ignore")
                or "Unhandled",
            },
        }
        permissions = iam.active()
        identity = permissions.function_identity(function_arn) if permissions is not None else None
        sqs = identity.client("sqs", self.region) if identity is not None else self.client("sqs")
        self._send(sqs, queue_arn, body, attributes, sender="lambda", function=function_arn)
        return True

    def events_gave_up(
        self, rule_arn: str, target: dict[str, Any], body: str, code: str, message: str
    ) -> bool:
        """EventBridge could not deliver ``body`` to ``target``: its dead-letter queue, if any."""
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue_arn:
            return False
        permissions = iam.active()
        if permissions is not None:
            check = iam.Check(
                "sqs:SendMessage",
                queue_arn,
                (("aws:SourceArn", rule_arn),),
                policy_of=queue_arn,
            )
            if permissions.allowed_for_service("events.amazonaws.com", check) is not None:
                return False  # EventBridge loses it (and the denial is recorded)
        retries = str((target.get("RetryPolicy") or {}).get("MaximumRetryAttempts", 185))
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in {
                "RULE_ARN": rule_arn,
                "TARGET_ARN": str(target["Arn"]),
                "ERROR_CODE": code,
                "ERROR_MESSAGE": message,
                "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
                "RETRY_ATTEMPTS": retries,
            }.items()
        }
        self._send(self.client("sqs"), queue_arn, body, attributes, sender="events", rule=rule_arn)
        return True

    def _send(
        self, sqs: Any, queue_arn: str, body: str, attributes: dict[str, Any], **who: str
    ) -> None:
        # The queue's URL is the world's lookup; only the send is the service's call.
        account, name = queue_arn.split(":")[4], queue_arn.split(":")[5]
        url = self.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)[
            "QueueUrl"
        ]
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
        self.sent.append({"queue": queue_arn, "body": body, **who})


def body_of(payload: str | bytes) -> str:
    return payload.decode() if isinstance(payload, bytes) else payload


def error_payload(raw: bytes | str | None) -> Any:
    try:
        return json.loads(raw or b"null")
    except json.JSONDecodeError:
        return {"errorMessage": body_of(raw or b"")}
