"""Operations: failure notices, alarms, the pipeline-and-cost dashboard, budgets.

Every widget is built from ``metric_*`` methods of the constructs that own or emit the metric, so
a renamed metric breaks synthesis or a test, not a dashboard nobody looks at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_ce as ce
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.data_lake import DataLake
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.finalize import Finalize
from constructs_lib.functions import PipelineFunction
from constructs_lib.ingest import Ingest
from constructs_lib.keys import ServiceKey
from constructs_lib.principals import service_role
from constructs_lib.props import require
from constructs_lib.reprocess import Reprocess
from constructs_lib.state_machine import PipelineStateMachine
from constructs_lib.stories import Stories
from constructs_lib.transcode import Transcode
from constructs_lib.units import Units

SOURCES = ("commons", "pixabay", "upload")
STORAGE_TYPES = (
    "StandardStorage",
    "IntelligentTieringFAStorage",
    "IntelligentTieringIAStorage",
    "IntelligentTieringAIAStorage",
    "GlacierInstantRetrievalStorage",
    "GlacierStorage",
    "DeepArchiveStorage",
)
# CloudWatch evaluates at most 7 days of data in one alarm.
MAX_ALARM_WINDOW_HOURS = 7 * 24
BILLING_REGION = "us-east-1"


@dataclass(frozen=True)
class AlarmThresholds:
    failed_executions: int
    lambda_errors: int
    lambda_throttles: int
    no_success_hours: int


@dataclass(frozen=True)
class Watched:
    """The pipeline as every monitoring construct reads it.

    ``units`` in workflow order (alarms and widgets follow it); ``alerts`` is the one topic every
    alarm, notice and budget reports to; ``deployment`` names this deployment in what they send.
    """

    workflow: PipelineStateMachine
    units: Units
    alerts: EncryptedTopic
    deployment: str


class FailureNotices(Construct):
    """EventBridge rules that turn failures into readable messages on the alerts topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        watched: Watched,
        *,
        key: ServiceKey,
    ) -> None:
        super().__init__(scope, construct_id)
        workflow, alerts, deployment = watched.workflow, watched.alerts, watched.deployment
        self.alerts, self.deployment, self.key = alerts, deployment, key
        region = cdk.Stack.of(self).region
        field = events.EventField.from_path
        # A notice that cannot be delivered is kept (and alarmed on) instead of lost.
        self.dead_letters = dead_letter_queue(self, "Undelivered", key, delivered_by=("events",))
        # EventBridge publishes through a role of its own (which gets the topic's KMS key
        # through grant_publish) instead of a broad topic-policy grant to events.amazonaws.com.
        self.publisher = service_role(
            self,
            "Publisher",
            "events.amazonaws.com",
            "EventBridge publishes failure notices to the alerts topic",
        )
        alerts.grant_publish(self.publisher)
        self.executions = self._notice(
            alerts,
            "ExecutionFailed",
            "Pipeline executions that failed, timed out or were aborted",
            events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                    "stateMachineArn": [
                        workflow.state_machine.state_machine_arn,
                        watched.units.one(Reprocess).state_machine.state_machine_arn,
                        watched.units.one(Stories).state_machine.state_machine_arn,
                    ],
                },
            ),
            f"Media pipeline ({deployment}) execution {field('$.detail.name')} "
            f"{field('$.detail.status')}.\n"
            f"Error: {field('$.detail.error')}\n"
            f"Root cause: {field('$.detail.cause')}\n"
            f"Input (campaign, upload): {field('$.detail.input')}\n"
            f"Console: https://{region}.console.aws.amazon.com/states/home?region="
            f"{region}#/v2/executions/details/{field('$.detail.executionArn')}",
        )
        self.mediaconvert = self._notice(
            alerts,
            "TranscodeFailed",
            "MediaConvert jobs of this deployment that ended in ERROR",
            events.EventPattern(
                source=["aws.mediaconvert"],
                detail_type=["MediaConvert Job State Change"],
                detail={"status": ["ERROR"], "userMetadata": {"deployment": [deployment]}},
            ),
            f"Media pipeline ({deployment}) transcode failed for asset "
            f"{field('$.detail.userMetadata.asset_id')} of campaign "
            f"{field('$.detail.userMetadata.campaign')}.\n"
            f"Root cause: {field('$.detail.errorMessage')} "
            f"(code {field('$.detail.errorCode')})\n"
            f"Console: https://{region}.console.aws.amazon.com/mediaconvert/home?region="
            f"{region}#/jobs/summary/{field('$.detail.jobId')}",
        )

    def _notice(
        self,
        alerts: EncryptedTopic,
        rule_id: str,
        description: str,
        pattern: events.EventPattern,
        text: str,
    ) -> events.Rule:
        """Events matching ``pattern`` reach the alerts topic as ``text``, published with the
        publisher role; an undeliverable one is kept in the dead-letter queue."""
        rule = events.Rule(self, rule_id, description=description, event_pattern=pattern)
        rule.add_target(
            targets.SnsTopic(
                alerts.topic,
                message=events.RuleTargetInput.from_multiline_text(text),
                dead_letter_queue=self.dead_letters,
                authorize_using_role=True,
                role=self.publisher,
            )
        )
        return rule

    def sensitive_data(self, bucket_name: str, severities: tuple[str, ...]) -> events.Rule:
        """Macie findings of ``severities`` about ``bucket_name``, as a readable message."""
        field = events.EventField.from_path
        region = cdk.Stack.of(self).region
        return self._notice(
            self.alerts,
            "SensitiveDataFound",
            "Macie found personal data in files uploaded to the raw bucket",
            events.EventPattern(
                source=["aws.macie"],
                detail_type=["Macie Finding"],
                detail={
                    "severity": {"description": list(severities)},
                    "resourcesAffected": {"s3Bucket": {"name": [bucket_name]}},
                },
            ),
            f"Media pipeline ({self.deployment}): "
            f"{field('$.detail.severity.description')}-severity Macie finding in "
            f"s3://{field('$.detail.resourcesAffected.s3Bucket.name')}/"
            f"{field('$.detail.resourcesAffected.s3Object.key')}\n"
            f"{field('$.detail.title')} {field('$.detail.description')}\n"
            f"Type: {field('$.detail.type')}\n"
            f"Console: https://{region}.console.aws.amazon.com/macie/home?region={region}"
            f"#findings?search=id%3D{field('$.detail.id')}",
        )


class PipelineAlarms(Construct):
    """Alarms with thresholds from config; every alarm notifies the alerts topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        watched: Watched,
        *,
        thresholds: AlarmThresholds,
        dead_letter_queues: dict[str, sqs.IQueue] | None = None,
    ) -> None:
        """Every unit's functions (errors, throttles), dead-letter queues (not empty) and event
        alarms (one event in 5 minutes); ``dead_letter_queues`` adds queues of monitoring's own."""
        super().__init__(scope, construct_id)
        units, alerts = watched.units, watched.alerts
        functions = units.functions()
        dead_letter_queues = {**units.dead_letter_queues(), **(dead_letter_queues or {})}
        action = cw_actions.SnsAction(alerts.topic)
        alerts.grant_publish_to_service("cloudwatch.amazonaws.com")
        self.alarms: list[cloudwatch.Alarm] = []
        machine = watched.workflow.state_machine

        def add(alarm: cloudwatch.Alarm) -> cloudwatch.Alarm:
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)
            return alarm

        def at_least(
            metric: cloudwatch.Metric, alarm_id: str, description: str, threshold: int
        ) -> cloudwatch.Alarm:
            """Alarm as soon as one 5-minute period reaches the threshold; no data is fine."""
            return add(
                metric.create_alarm(
                    self,
                    alarm_id,
                    alarm_description=description,
                    threshold=threshold,
                    evaluation_periods=1,
                    comparison_operator=(
                        cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
                    ),
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )

        self.failed_executions = at_least(
            machine.metric_failed(period=cdk.Duration.minutes(5)),
            "ExecutionsFailed",
            "A pipeline execution failed (see the alerts for the cause)",
            thresholds.failed_executions,
        )
        self.failed_reprocess = at_least(
            units.one(Reprocess).state_machine.metric_failed(period=cdk.Duration.minutes(5)),
            "ReprocessRunsFailed",
            "A reprocess run failed (the asset keeps its previous results; GET "
            "/assets/{asset_id}/results and the alerts name the cause)",
            1,
        )
        self.failed_stories = at_least(
            units.one(Stories).state_machine.metric_failed(period=cdk.Duration.minutes(5)),
            "StoryRunsFailed",
            "A story render failed (GET /projects/{project_id} and the alerts name the segment "
            "or field; no final video was left)",
            1,
        )
        window_hours = min(thresholds.no_success_hours, MAX_ALARM_WINDOW_HOURS)
        days = max(1, window_hours // 24)
        self.no_success = add(
            machine.metric_succeeded(period=cdk.Duration.days(1)).create_alarm(
                self,
                "NoSuccessfulRun",
                alarm_description=(
                    f"No successful pipeline run for {days} day(s): the weekly schedule plus its "
                    "margin (CloudWatch evaluates at most 7 days)"
                ),
                threshold=1,
                evaluation_periods=days,
                datapoints_to_alarm=days,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
        )
        for name, fn in functions.items():
            at_least(
                fn.metric_errors(),
                f"{name}Errors",
                f"The {name} function reported errors",
                thresholds.lambda_errors,
            )
            at_least(
                fn.metric_throttles(),
                f"{name}Throttles",
                f"The {name} function was throttled",
                thresholds.lambda_throttles,
            )
        for name, queue in dead_letter_queues.items():
            at_least(
                queue.metric_approximate_number_of_messages_visible(
                    period=cdk.Duration.minutes(5), statistic="Maximum"
                ),
                f"{name}NotEmpty",
                f"Messages are waiting in the {name} dead-letter queue",
                1,
            )
        for name, event in units.event_alarms().items():
            at_least(
                event.metric.with_(period=cdk.Duration.minutes(5), statistic="Sum"),
                name,
                event.description,
                1,
            )


def labelled(**metrics: cloudwatch.Metric) -> list[cloudwatch.IMetric]:
    """Each metric drawn under its keyword as the legend label."""
    return [metric.with_(label=label) for label, metric in metrics.items()]


class PipelineDashboard(Construct):
    """Health and cost on one page, in the order an operator reads it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        watched: Watched,
        *,
        data_lake: DataLake,
        campaigns: tuple[str, ...],
        alarms: list[cloudwatch.Alarm],
    ) -> None:
        super().__init__(scope, construct_id)
        units = watched.units
        functions = units.functions()
        ingest, transcode = units.one(Ingest), units.one(Transcode)
        finalize = units.one(Finalize)
        machine = watched.workflow.state_machine
        reprocess = units.one(Reprocess).state_machine
        stories = units.one(Stories).state_machine
        hour = cdk.Duration.hours(1)
        self.dashboard = cloudwatch.Dashboard(
            self, "Resource", default_interval=cdk.Duration.days(7)
        )
        graph = cloudwatch.GraphWidget
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    "# Media pipeline\nRuns, stages, sources and spend. Alarms notify the "
                    "alerts topic; the alarm panel at the bottom shows their state."
                ),
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            graph(
                title="Executions",
                left=[
                    machine.metric_started(period=hour),
                    machine.metric_succeeded(period=hour),
                    machine.metric_failed(period=hour),
                ],
                right=[
                    reprocess.metric_started(period=hour, label="Reprocess started"),
                    reprocess.metric_failed(period=hour, label="Reprocess failed"),
                    stories.metric_succeeded(period=hour, label="Stories rendered"),
                    stories.metric_failed(period=hour, label="Stories failed"),
                ],
                width=12,
            ),
            graph(
                title="Execution duration (p50 / p90 / p99)",
                left=[machine.metric_time(statistic=s, period=hour) for s in ("p50", "p90", "p99")],
                width=12,
            ),
        )
        per_function: dict[str, Callable[[PipelineFunction], cloudwatch.Metric]] = {
            "Lambda errors per stage": lambda fn: fn.metric_errors(hour),
            "Lambda throttles per stage": lambda fn: fn.metric_throttles(hour),
            "Lambda duration p90 per stage": lambda fn: fn.metric_duration(),
        }
        self.dashboard.add_widgets(
            *(
                graph(
                    title=title,
                    left=[metric(fn).with_(label=n) for n, fn in functions.items()],
                    width=8,
                )
                for title, metric in per_function.items()
            )
        )
        self.dashboard.add_widgets(
            graph(
                title="MediaConvert jobs",
                left=labelled(
                    completed=transcode.metric_jobs_completed(),
                    errored=transcode.metric_jobs_errored(),
                ),
                width=8,
            ),
            graph(
                title="Video minutes (Rekognition billable / transcoded / transcribed)",
                left=labelled(
                    **{
                        "Rekognition minutes": finalize.metric_minutes_analyzed(),
                        "transcoded minutes": finalize.metric_minutes_transcoded(),
                        "Transcribe minutes": finalize.metric_minutes_transcribed(),
                    }
                ),
                width=8,
            ),
            graph(
                title="Assets processed / failed, labels, moderation flags",
                left=labelled(
                    processed=finalize.metric_assets_processed(),
                    failed=finalize.metric_assets_failed(),
                ),
                right=labelled(
                    labels=finalize.metric_labels_found(),
                    **{"moderation flags": finalize.metric_moderation_flags()},
                ),
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="Ingested per source",
                left=[ingest.metric_assets_ingested(s).with_(label=s) for s in SOURCES],
                right=[ingest.metric_source_failures(s).with_(label=f"{s} down") for s in SOURCES],
                width=12,
            ),
            graph(
                title="Data lake size by storage class",
                left=[
                    data_lake.metric_size_bytes(bucket, storage).with_(label=f"{name} {storage}")
                    for name, bucket in (("raw", data_lake.raw), ("processed", data_lake.processed))
                    for storage in STORAGE_TYPES
                ],
                stacked=True,
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="Estimated AWS charges (account, USD)",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/Billing",
                        metric_name="EstimatedCharges",
                        dimensions_map={"Currency": "USD"},
                        statistic="Maximum",
                        period=cdk.Duration.hours(6),
                        region=BILLING_REGION,
                    )
                ],
                width=8,
            ),
            graph(
                title="Estimated pipeline cost per asset (USD)",
                left=[finalize.metric_estimated_cost().with_(label="per asset (avg)")],
                width=8,
            ),
            graph(
                title="Estimated pipeline cost per campaign (USD)",
                left=[finalize.metric_estimated_cost(campaign=c).with_(label=c) for c in campaigns],
                stacked=True,
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=4)
        )


class CostControls(Construct):
    """A monthly budget with 80 % / 100 % alerts and a cost anomaly monitor, per deployment.

    Both filter on the ``deployment`` tag every resource carries; activate it as a cost
    allocation tag in the Billing console once per account.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        watched: Watched,
        *,
        monthly_budget_usd: int,
        anomaly_threshold_usd: int,
    ) -> None:
        super().__init__(scope, construct_id)
        alerts, deployment = watched.alerts, watched.deployment
        for service in ("budgets.amazonaws.com", "costalerts.amazonaws.com"):
            alerts.grant_publish_to_service(service)
        subscriber = budgets.CfnBudget.SubscriberProperty(
            subscription_type="SNS", address=alerts.topic_arn
        )
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_budget_usd, unit="USD"),
                cost_filters={"TagKeyValue": [f"user:deployment${deployment}"]},
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type="ACTUAL",
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[subscriber],
                )
                for percent in (80, 100)
            ],
        )
        self.anomaly_monitor = ce.CfnAnomalyMonitor(
            self,
            "AnomalyMonitor",
            monitor_name=f"{deployment}-spend",
            monitor_type="CUSTOM",
            monitor_specification=json.dumps(
                {"Tags": {"Key": "deployment", "Values": [deployment], "MatchOptions": ["EQUALS"]}}
            ),
        )
        self.anomaly_subscription = ce.CfnAnomalySubscription(
            self,
            "AnomalySubscription",
            subscription_name=f"{deployment}-spend-alerts",
            frequency="IMMEDIATE",
            monitor_arn_list=[self.anomaly_monitor.attr_monitor_arn],
            subscribers=[
                ce.CfnAnomalySubscription.SubscriberProperty(type="SNS", address=alerts.topic_arn)
            ],
            threshold_expression=json.dumps(
                {
                    "Dimensions": {
                        "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                        "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
                        "Values": [str(anomaly_threshold_usd)],
                    }
                }
            ),
        )


@dataclass(frozen=True)
class SlackChannel:
    """Configuration field ``monitoring.slack``: the channel AWS Chatbot posts the alerts to.

    Both ids come from the Chatbot console once the workspace is authorized there; one value
    holds both, so a configuration cannot name a channel without its workspace.
    """

    workspace_id: str
    channel_id: str

    def __post_init__(self) -> None:
        for name in ("workspace_id", "channel_id"):
            value = getattr(self, name)
            require(
                isinstance(value, str) and value.isalnum(),
                f"monitoring.slack.{name}",
                f"must be the id Chatbot shows (letters and digits), got {value!r}",
            )


class SlackAlerts(Construct):
    """Optional: the alerts topic in a Slack channel through AWS Chatbot."""

    def __init__(
        self, scope: Construct, construct_id: str, watched: Watched, slack: SlackChannel
    ) -> None:
        super().__init__(scope, construct_id)
        self.channel = chatbot.SlackChannelConfiguration(
            self,
            "Resource",
            slack_channel_configuration_name=f"{watched.deployment}-alerts",
            slack_workspace_id=slack.workspace_id,
            slack_channel_id=slack.channel_id,
            notification_topics=[watched.alerts.topic],
            guardrail_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("ReadOnlyAccess")],
        )
