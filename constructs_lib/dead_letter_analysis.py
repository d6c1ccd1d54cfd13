"""The dead-letter analyzer unit: every queue read on a schedule, an incident summary, a digest.

It lives in the monitoring stack, like the alarms on the same queues: it reads the pipeline
stack's queues and the monitoring stack's own (failure notices, Discord), and the pipeline
stack must not depend on monitoring. Its function is built like a unit's (``FunctionSpec``,
``PipelineFunction``, a settings class) from ``lambdas/operations``.

The registry of queues (name, URL, kind, where a redrive sends) is the stack output
``DeadLetterQueues``, which ``make redrive`` and the dashboard read, so the analyzer, the
redrive and the alarms name the same queues the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.data_lake import DEAD_LETTER_REPORTS_PREFIX, DataLake
from constructs_lib.dead_letters import DeadLetterRoute
from constructs_lib.functions import (
    METRICS_NAMESPACE,
    DependenciesLayer,
    FunctionSpec,
    PipelineFunction,
)
from constructs_lib.keys import ServiceKey
from constructs_lib.nag import (
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    acknowledge_rule,
    arn_finding,
)
from lambdas.operations.settings import AnalyzerSettings

HANDLER_FOLDER = "operations"
ANALYZER = FunctionSpec(
    monitoring_name="DeadLetterAnalyzer",
    construct_id="Analyzer",
    handler="lambdas.operations.analyzer.handler",
    description="Reads the dead-letter queues without consuming them; writes the incident summary",
    service="operations",
    settings=AnalyzerSettings,
    metrics=("DeadLetterMessages", "DeadLetterMessagesTotal", "DeadLetterMessagesNew"),
    timeout_sec=120,
)
# The dimensions of each per-class count (Powertools adds ``service``): the dashboard finds every
# queue and class the analyzer reports by SEARCH on exactly this set.
DEAD_LETTER_CLASS_DIMENSIONS = ("error_class", "queue", "service")
# What reading without consuming needs: receive, and release (visibility 0) what it received.
PEEK_ACTIONS = ("sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")


class DeadLetterAnalysis(Construct):
    """A scheduled read of ``routes``; the summary under the processed bucket's
    ``operations/dead-letters/``, the digest on ``alerts``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: Mapping[str, DeadLetterRoute],
        data_lake: DataLake,
        alerts: EncryptedTopic,
        key: ServiceKey,
        log_retention_days: int,
        deployment: str,
        every: cdk.Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.routes = dict(routes)
        # Its own copy of the shared layer, as DiscordAlerts: reading the pipeline stack's would
        # pin that layer's version through an export.
        self.layer = DependenciesLayer(self, "Dependencies")
        self.analyzer = PipelineFunction(
            self,
            ANALYZER.construct_id,
            unit=HANDLER_FOLDER,
            spec=ANALYZER,
            settings=AnalyzerSettings(
                queues={
                    name: {"url": r.queue.queue_url, "kind": r.kind, "describes": r.describes}
                    for name, r in self.routes.items()
                },
                processed_bucket=data_lake.processed.bucket_name,
                alerts_topic_arn=alerts.topic_arn,
                deployment=deployment,
            ),
            layers=[self.layer],
            log_retention_days=log_retention_days,
            key=key.key,
            synchronous_reason=(
                "Run by its own schedule every few minutes: an invocation that fails is run "
                "again by the next one, and its Errors alarm reports it; a dead-letter queue "
                "would keep only schedule ticks, which nobody redrives."
            ),
        )
        role = self.analyzer.role
        keys: dict[str, kms.IKey] = {}
        for route in self.routes.values():
            route.queue.grant(role, *PEEK_ACTIONS)
            queue_key = route.queue.encryption_master_key
            if queue_key is not None:
                keys[queue_key.node.path] = queue_key
        for queue_key in keys.values():
            # Receiving from an SSE-KMS queue decrypts its data key.
            queue_key.grant_decrypt(role)
        data_lake.grant_dead_letter_reports(role)
        policy = self.analyzer.default_policy
        processed = data_lake.processed.node.default_child
        acknowledge(
            policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                arn_finding(policy, processed, f"/{DEAD_LETTER_REPORTS_PREFIX}*"),  # type: ignore[arg-type]
            ],
            "S3 access is limited to operations/dead-letters/ of the processed bucket: the "
            "analyzer reads its last summary and writes the next one and its history there.",
        )
        alerts.grant_publish(role)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Dead-letter analysis: classify what waits in the queues",
            schedule=events.Schedule.rate(every or cdk.Duration.minutes(15)),
            targets=[targets.LambdaFunction(self.analyzer.function, retry_attempts=2)],
        )
        acknowledge_rule(
            self.schedule.node.default_child,  # type: ignore[arg-type]
            "Serverless-EventBusDLQ",
            "A schedule tick of the analyzer carries nothing to keep: the next tick reads the "
            "queues again, and a failed invocation raises the analyzer's Errors alarm.",
        )
        cdk.CfnOutput(
            self,
            "DeadLetterQueues",
            key="DeadLetterQueues",
            value=cdk.Stack.of(self).to_json_string(
                {name: route.registry_entry() for name, route in self.routes.items()}
            ),
            description="Dead-letter queues: URL, kind, and where make redrive sends them",
        )

    def metric_messages_by_class(self) -> cloudwatch.MathExpression:
        """One line per queue and error class: what the last analysis counted (a gauge, so the
        period's Maximum). A SEARCH, because the classes are what arrives, not a fixed list."""
        dimensions = ",".join((METRICS_NAMESPACE, *DEAD_LETTER_CLASS_DIMENSIONS))
        return cloudwatch.MathExpression(
            expression=(
                f'SEARCH(\'{{{dimensions}}} MetricName="DeadLetterMessages" '
                f"service=\"{ANALYZER.service}\"', 'Maximum', 900)"
            ),
            period=cdk.Duration.minutes(15),
            # Empty: each line is named by its queue and class alone (CDK's default label, the
            # expression, would prefix every line with the whole SEARCH).
            label="",
        )
