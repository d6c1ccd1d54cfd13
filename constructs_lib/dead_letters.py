"""Dead-letter queues: where events, notices and async invocations that failed are kept.

Each queue holds one kind of message with one way back (``DeadLetterRoute``): the events of one
rule for one function, the notices of one topic, the weekly run's start. An operator can then
redrive a whole queue (``make redrive``) without sorting its messages by hand, and the analyzer
(``constructs_lib/dead_letter_analysis.py``) can say what each message was for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from constructs_lib.keys import ServiceKey
from constructs_lib.nag import acknowledge_dead_letter_queue

RETENTION = cdk.Duration.days(14)  # SQS's maximum: time to notice the alarm and redrive

# How a message goes back: invoke the function asynchronously, start the state machine, or
# publish to the topic (``lambdas/operations/redrive.py``).
Via = Literal["lambda", "states", "sns"]


@dataclass(frozen=True)
class DeadLetterRoute:
    """One queue's kind of message and where a redrive sends it.

    ``kind`` is a short slug the analyzer and the redrive report (``upload-starts``);
    ``describes`` says in words what a message there is (the digest shows it); ``target`` is
    the ARN of the function, state machine or topic the message was meant for.
    """

    queue: sqs.IQueue
    kind: str
    describes: str
    via: Via
    target: str

    def registry_entry(self) -> dict[str, str]:
        """What the analyzer and the redrive read (``DeadLetterQueues`` output)."""
        return {
            "url": self.queue.queue_url,
            "arn": self.queue.queue_arn,
            "kind": self.kind,
            "describes": self.describes,
            "via": self.via,
            "target": self.target,
        }


def dead_letter_queue(
    scope: Construct, construct_id: str, key: ServiceKey, *, delivered_by: tuple[str, ...]
) -> sqs.Queue:
    """A TLS-only queue, encrypted with the stack's key, that keeps failed deliveries for the
    longest SQS allows.

    Every such queue is alarmed when not empty (``PipelineAlarms``), so what lands here is seen
    and can be redriven instead of being lost. ``delivered_by`` names the services that send to
    it as themselves (``events``, ``sns``): they can deliver to a queue encrypted with a
    customer-managed key only where its key policy lets them (``ServiceKey.allow_delivery``);
    with the AWS-managed SQS key they could not deliver at all. Lambda's own dead-letter sends
    use the function's role, which ``PipelineFunction`` grants the queue's key.
    """
    for service in delivered_by:
        key.allow_delivery(service)
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key.key,
        enforce_ssl=True,
        retention_period=RETENTION,
    )
    acknowledge_dead_letter_queue(queue)
    return queue
