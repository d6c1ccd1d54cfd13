"""Operations: failure notices, alarms, the pipeline-and-cost dashboards, budgets.

Per-resource alarms and widgets (state machines, functions, queues, the catalog, the alerts
topic) come from cdk-monitoring-constructs, which reads each construct's own metrics. Every other
widget is built from ``metric_*`` methods of the constructs that own or emit the metric, so a
renamed metric breaks synthesis or a test, not a dashboard nobody looks at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
import cdk_monitoring_constructs as monitors
import jsii
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_ce as ce
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.data_lake import DataLake
from constructs_lib.dead_letter_analysis import DeadLetterAnalysis
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.finalize import Finalize
from constructs_lib.functions import ALARM_PERIOD, METRICS_NAMESPACE, PipelineFunction
from constructs_lib.ingest import Ingest
from constructs_lib.keys import ServiceKey
from constructs_lib.principals import service_role
from constructs_lib.props import require
from constructs_lib.reprocess import Reprocess
from constructs_lib.state_machine import PipelineStateMachine
from constructs_lib.stories import Stories
from constructs_lib.summarize import Summarize
from constructs_lib.transcode import Transcode
from constructs_lib.units import METRIC_PERIOD, Units

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
# The facade's segments are drawn as on the library's detail dashboard (every widget it has):
# ``DefaultDashboards.DETAIL``'s value, which Python sees only as the member name "DETAIL".
DETAIL = "Detail"
RUNS = "Runs"


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


@jsii.implements(monitors.IDynamicDashboardFactory)
class DashboardSections:
    """The monitoring facade's segments, by section, for ``PipelineDashboard`` to lay out.

    The library's own factory names its dashboards (a replaced one then fails on "already
    exists") and spreads them over detail, summary and alarm dashboards. Here each segment is a
    row of its detail widgets, waiting for unnamed dashboards: the ``RUNS`` section goes on the
    overview, every other one on the resources dashboard.
    """

    def __init__(self) -> None:
        self.rows: dict[str, list[list[cloudwatch.IWidget]]] = {}
        self._title = ""

    def section(self, title: str) -> None:
        """The facade's segments from now on go under ``title``."""
        self._title = title
        self.rows[title] = []

    def add_dynamic_segment(self, segment: monitors.IDynamicDashboardSegment) -> None:
        widgets = segment.widgets_for_dashboard(DETAIL)
        if widgets:  # a segment kept off the dashboards (``add_to_detail_dashboard=False``)
            self.add_row(widgets)

    def add_row(self, widgets: Sequence[cloudwatch.IWidget]) -> None:
        """A row of widgets of our own under the current section."""
        self.rows[self._title].append(list(widgets))

    def get_dashboard(self, _kind: str) -> cloudwatch.Dashboard | None:
        return None


def _at_least(count: int, alarm_id: str, description: str) -> monitors.ErrorCountThreshold:
    """Alarm as soon as one 5-minute period reaches ``count``, with the id (stable logical ids
    in ``cdk diff``) and the description (what the alert says) the alarm had before the library."""
    return monitors.ErrorCountThreshold(
        max_error_count=count,
        comparison_operator_override=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        alarm_name_override=alarm_id,
        alarm_description_override=description,
    )


class PipelineAlarms(Construct):
    """Alarms with thresholds from config; every alarm notifies the alerts topic.

    cdk-monitoring-constructs makes the per-resource alarms (state machines, functions,
    dead-letter queues) and the dashboard sections of the state machines, the catalog and the
    alerts topic (``sections``); the functions and queues, 27 and 8 of them, are drawn as a few
    tables (``function_tables``, ``queue_tables``) instead of the library's widgets for each,
    which cost over a second of every synthesis. Plain CloudWatch makes what the library cannot
    express (no successful run for days, the units' event alarms). ``alarms`` lists them all for
    the status widget; ``add`` takes any later alarm.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        watched: Watched,
        *,
        thresholds: AlarmThresholds,
        catalog: dynamodb.ITable,
        dead_letter_queues: dict[str, sqs.IQueue] | None = None,
        functions: dict[str, PipelineFunction] | None = None,
    ) -> None:
        """``dead_letter_queues`` and ``functions`` add monitoring's own (failure notices, the
        dead-letter analyzer) to the units'; ``catalog`` and the alerts topic get dashboard
        sections, no alarm (the topic cannot report on itself)."""
        super().__init__(scope, construct_id)
        units, alerts = watched.units, watched.alerts
        alerts.grant_publish_to_service("cloudwatch.amazonaws.com")
        self.action = cw_actions.SnsAction(alerts.topic)
        self.sections = DashboardSections()
        # Logical ids leave out "Default": the facade's alarms keep the ids they had as children
        # of this construct, so the move shows in ``cdk diff`` as updates, not replacements.
        # Every alarm's name is overridden with its id, so the (required) prefix names nothing.
        facade = monitors.MonitoringFacade(
            self,
            "Default",
            alarm_factory_defaults=monitors.AlarmFactoryDefaults(
                alarm_name_prefix=construct_id,
                actions_enabled=True,
                datapoints_to_alarm=1,
                action=monitors.SnsAlarmActionStrategy(on_alarm_topic=alerts.topic),
            ),
            metric_factory_defaults=monitors.MetricFactoryDefaults(namespace=METRICS_NAMESPACE),
            dashboard_factory=self.sections,
        )
        machine = watched.workflow.state_machine
        self.sections.section(RUNS)
        for name, state_machine, alarm_id, threshold, description in (
            (
                "Pipeline",
                machine,
                "ExecutionsFailed",
                thresholds.failed_executions,
                "A pipeline execution failed (see the alerts for the cause)",
            ),
            (
                "Reprocess",
                units.one(Reprocess).state_machine,
                "ReprocessRunsFailed",
                1,
                "A reprocess run failed (the asset keeps its previous results; GET "
                "/assets/{asset_id}/results and the alerts name the cause)",
            ),
            (
                "Stories",
                units.one(Stories).state_machine,
                "StoryRunsFailed",
                1,
                "A story render failed (GET /projects/{project_id} and the alerts name the "
                "segment or field; no final video was left)",
            ),
        ):
            facade.monitor_step_function(
                state_machine=state_machine,
                alarm_friendly_name=name,
                human_readable_name=name,
                add_failed_execution_count_alarm={
                    "Critical": _at_least(threshold, alarm_id, description)
                },
            )
        self.sections.section("Functions")
        every_function = {**units.functions(), **(functions or {})}
        for name, fn in every_function.items():
            facade.monitor_lambda_function(
                lambda_function=fn.function,
                alarm_friendly_name=name,
                human_readable_name=name,
                is_iterator=False,
                # The library's alarms, not its seven widgets per function: drawn for every
                # function (27, both environments) they cost about a second of each synthesis
                # (``cdk diff`` on every pull request); ``function_tables`` draws them instead.
                add_to_detail_dashboard=False,
                add_to_summary_dashboard=False,
                add_to_alarm_dashboard=False,
                add_fault_count_alarm={
                    "Critical": _at_least(
                        thresholds.lambda_errors,
                        f"{name}Errors",
                        f"The {name} function reported errors",
                    )
                },
                add_throttles_count_alarm={
                    "Critical": _at_least(
                        thresholds.lambda_throttles,
                        f"{name}Throttles",
                        f"The {name} function was throttled",
                    )
                },
            )
        self.sections.add_row(function_tables(every_function))
        self.sections.section("Dead-letter queues")
        every_queue = {**units.dead_letter_queues(), **(dead_letter_queues or {})}
        for name, queue in every_queue.items():
            facade.monitor_sqs_queue(
                queue=queue,
                alarm_friendly_name=name,
                human_readable_name=name,
                # As the functions: the library's alarm, the queues drawn in three tables.
                add_to_detail_dashboard=False,
                add_to_summary_dashboard=False,
                add_to_alarm_dashboard=False,
                add_queue_max_size_alarm={
                    "Critical": monitors.MaxMessageCountThreshold(
                        max_message_count=0,
                        alarm_name_override=f"{name}NotEmpty",
                        alarm_description_override=(
                            f"Messages are waiting in the {name} dead-letter queue"
                        ),
                        treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                    )
                },
            )
        self.sections.add_row(queue_tables(every_queue))
        self.sections.section("Catalog and alerts")
        facade.monitor_dynamo_table(
            table=catalog, alarm_friendly_name="Catalog", human_readable_name="Catalog"
        )
        facade.monitor_sns_topic(
            topic=alerts.topic, alarm_friendly_name="Alerts", human_readable_name="Alerts"
        )
        self.facade = facade
        # The facade's alarms, read from the construct tree in one call (``created_alarms()``
        # costs a second of jsii round trips per stage). The library names each; unnamed,
        # CloudFormation can replace one (the name would exist) and dev and prod share accounts.
        made = facade.node.find_all()
        self.alarms: list[cloudwatch.IAlarm] = [a for a in made if isinstance(a, cloudwatch.Alarm)]
        for resource in made:
            if isinstance(resource, cloudwatch.CfnAlarm):
                resource.alarm_name = None
        window_hours = min(thresholds.no_success_hours, MAX_ALARM_WINDOW_HOURS)
        days = max(1, window_hours // 24)
        # The library alarms on too few starts, not on too few successes.
        self.no_success = self.add(
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
        for name, event in units.event_alarms().items():
            self.add(
                event.metric.with_(period=cdk.Duration.minutes(5), statistic="Sum").create_alarm(
                    self,
                    name,
                    alarm_description=event.description,
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=(
                        cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
                    ),
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )

    def add(self, alarm: cloudwatch.AlarmBase) -> cloudwatch.AlarmBase:
        """``alarm`` notifies the alerts topic and shows in the status widget."""
        alarm.add_alarm_action(self.action)
        self.alarms.append(alarm)
        return alarm


def summary_tables(
    measures: Sequence[tuple[str, cloudwatch.TableSummaryColumn, list[cloudwatch.IMetric]]],
) -> list[cloudwatch.IWidget]:
    """One table per measure, one row per resource (the metric's label), each cell the measure
    over the dashboard's time range: which of many resources to look at, in a few widgets."""
    return [
        cloudwatch.TableWidget(
            title=title,
            metrics=metrics,
            layout=cloudwatch.TableLayout.HORIZONTAL,
            summary=cloudwatch.TableSummaryProps(columns=[column], hide_non_summary_columns=True),
            full_precision=False,
            width=24 // len(measures),
            height=min(2 + len(metrics), 24),
        )
        for title, column, metrics in measures
    ]


def function_tables(functions: dict[str, PipelineFunction]) -> list[cloudwatch.IWidget]:
    """Invocations, errors, throttles and the worst p99 duration of every function (the
    functions' logs and X-Ray traces show the rest). Each metric is made with its label and
    period, not changed after (``with_``): a jsii round trip less for each of the 108."""
    total, worst = cloudwatch.TableSummaryColumn.SUM, cloudwatch.TableSummaryColumn.MAXIMUM
    fns = {name: fn.function for name, fn in functions.items()}
    every = ALARM_PERIOD
    return summary_tables(
        [
            (
                "Invocations",
                total,
                [f.metric_invocations(label=n, period=every) for n, f in fns.items()],
            ),
            ("Errors", total, [f.metric_errors(label=n, period=every) for n, f in fns.items()]),
            (
                "Throttles",
                total,
                [f.metric_throttles(label=n, period=every) for n, f in fns.items()],
            ),
            (
                "Duration, worst p99 (ms)",
                worst,
                [f.metric_duration(label=n, period=every, statistic="p99") for n, f in fns.items()],
            ),
        ]
    )


def queue_tables(queues: dict[str, sqs.IQueue]) -> list[cloudwatch.IWidget]:
    """What waits in each dead-letter queue (the most at once, the oldest) and what arrived."""
    total, worst = cloudwatch.TableSummaryColumn.SUM, cloudwatch.TableSummaryColumn.MAXIMUM
    every = ALARM_PERIOD
    return summary_tables(
        [
            (
                "Messages waiting (most)",
                worst,
                [
                    q.metric_approximate_number_of_messages_visible(
                        label=n, period=every, statistic="Maximum"
                    )
                    for n, q in queues.items()
                ],
            ),
            (
                "Oldest message (s)",
                worst,
                [
                    q.metric_approximate_age_of_oldest_message(
                        label=n, period=every, statistic="Maximum"
                    )
                    for n, q in queues.items()
                ],
            ),
            (
                "Messages arrived",
                total,
                [
                    q.metric_number_of_messages_sent(label=n, period=every, statistic="Sum")
                    for n, q in queues.items()
                ],
            ),
        ]
    )


def labelled(**metrics: cloudwatch.Metric) -> list[cloudwatch.IMetric]:
    """Each metric drawn under its keyword as the legend label."""
    return [metric.with_(label=label) for label, metric in metrics.items()]


class PipelineDashboard(Construct):
    """Health and cost on one page (``dashboard``), in the order an operator reads it; every
    function and queue (in tables), the catalog and the alerts topic (the monitoring library's
    sections) on a second one (``resources``), linked from the first.

    Per-resource widgets would bury the overview and slow it down in the console;
    ``dashboard.add_widgets`` adds rows at the bottom of the overview.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        watched: Watched,
        *,
        data_lake: DataLake,
        campaigns: tuple[str, ...],
        alarms: Sequence[cloudwatch.IAlarm],
        sections: DashboardSections,
        dead_letters: DeadLetterAnalysis,
    ) -> None:
        super().__init__(scope, construct_id)
        units = watched.units
        ingest, transcode = units.one(Ingest), units.one(Transcode)
        finalize = units.one(Finalize)
        week = cdk.Duration.days(7)
        self.dashboard = cloudwatch.Dashboard(self, "Resource", default_interval=week)
        self.resources = cloudwatch.Dashboard(self, "Resources", default_interval=week)
        region = cdk.Stack.of(self).region
        graph = cloudwatch.GraphWidget
        rows = dict(sections.rows)
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    "# Media pipeline\nRuns, stages, sources and spend. Alarms notify the alerts "
                    "topic; the panel below shows their state. Every function and queue: "
                    f"[resources](https://{region}.console.aws.amazon.com/cloudwatch/home?region="
                    f"{region}#dashboards/dashboard/{self.resources.dashboard_name})."
                ),
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=6)
        )
        _section(self.dashboard, RUNS, rows.pop(RUNS))
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
                left=[cost_per_asset(units).with_(label="per asset (avg)")],
                width=8,
            ),
            graph(
                title="Estimated pipeline cost per campaign (USD)",
                left=[cost_per_asset(units, campaign=c).with_(label=c) for c in campaigns],
                stacked=True,
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="Dead letters by queue and error class (last analysis)",
                left=[dead_letters.metric_messages_by_class()],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=24,
            )
        )
        for title, section in rows.items():
            _section(self.resources, title, section)


def cost_per_asset(units: Units, *, campaign: str | None = None) -> cloudwatch.MathExpression:
    """The estimated USD per processed asset, clips and images (or a campaign's sum per hour),
    plus the Bedrock tokens of the summaries when the deployment makes them.

    Clips, images and summaries are emitted by three functions, so each is FILLed: an hour of
    images only, or of assets the summary skipped, still counts. Over all assets, an hour
    without any is left out (``IF``), not drawn as 0/0.
    """
    finalize, summarize = units.one(Finalize), units.find(Summarize)
    # One graph draws every campaign's expression: their metric ids must differ.
    tag = "" if campaign is None else "_" + re.sub(r"\W", "_", campaign)
    parts: dict[str, cloudwatch.IMetric] = {
        f"clips{tag}": finalize.metric_estimated_cost(campaign=campaign).with_(statistic="Sum"),
        f"images{tag}": finalize.metric_estimated_cost(campaign=campaign, image=True).with_(
            statistic="Sum"
        ),
    }
    if summarize is not None:
        parts[f"summaries{tag}"] = summarize.metric_summary_cost(campaign=campaign).with_(
            statistic="Sum"
        )
    total = " + ".join(f"FILL({name}, 0)" for name in parts)
    if campaign is not None:
        return cloudwatch.MathExpression(
            expression=total, using_metrics=parts, period=METRIC_PERIOD
        )
    counts = {
        "clip_count": finalize.metric_estimated_cost().with_(statistic="SampleCount"),
        "image_count": finalize.metric_estimated_cost(image=True).with_(statistic="SampleCount"),
    }
    assets = "(FILL(clip_count, 0) + FILL(image_count, 0))"
    return cloudwatch.MathExpression(
        expression=f"IF({assets} > 0, ({total}) / {assets})",
        using_metrics={**parts, **counts},
        period=METRIC_PERIOD,
    )


def _section(
    dashboard: cloudwatch.Dashboard, title: str, rows: Sequence[Sequence[cloudwatch.IWidget]]
) -> None:
    """``rows`` under a ``title`` heading, from the next free row on."""
    dashboard.add_widgets(cloudwatch.TextWidget(markdown=f"## {title}", width=24, height=1))
    for row in rows:
        dashboard.add_widgets(*row)


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
