"""Dead-letter queues: where events, notices and async invocations that failed are kept."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from constructs_lib.keys import ServiceKey
from constructs_lib.nag import acknowledge_dead_letter_queue

RETENTION = cdk.Duration.days(14)  # SQS's maximum: time to notice the alarm and redrive


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
