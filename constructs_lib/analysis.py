"""The analysis unit: Rekognition Video jobs that resume the workflow by callback, not polling."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.nag import (
    S3_READ_ACTIONS,
    acknowledge,
    arn_finding,
    render,
)
from constructs_lib.principals import service_role
from constructs_lib.units import EventConcurrency, FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import REKOGNITION_TRANSIENT, Flow, machine_name_arn, retry_transient
from lambdas.analysis.settings import StartSettings
from lambdas.shared.settings import CatalogSettings

START_ACTIONS = (
    "rekognition:StartLabelDetection",
    "rekognition:StartContentModeration",
    "rekognition:StartSegmentDetection",
)
GET_ACTIONS = (
    "rekognition:GetLabelDetection",
    "rekognition:GetContentModeration",
    "rekognition:GetSegmentDetection",
)
# The sweep runs this often; a waiting task fails after HEARTBEAT_TIMEOUT_MIN without a beat
# (three missed sweeps plus margin).
HEARTBEAT_INTERVAL_MIN = 10
HEARTBEAT_TIMEOUT_MIN = 35
FEATURES = ("labels", "moderation", "segments")
START = FunctionSpec(
    monitoring_name="AnalysisStart",
    construct_id="Start",
    handler="lambdas.analysis.start.handler",
    description="Stores the task token and starts one Rekognition Video job",
    service="analysis",
    settings=StartSettings,
    metrics=("AnalysisJobsStarted", "AnalysisStartsThrottled"),
)
CALLBACK = FunctionSpec(
    monitoring_name="AnalysisCallback",
    construct_id="Callback",
    handler="lambdas.analysis.callback.handler",
    description="Resumes the waiting task when Rekognition reports completion",
    service="analysis-callback",
    settings=CatalogSettings,
    metrics=("AnalysisJobsSucceeded", "AnalysisJobsFailed"),
)
HEARTBEAT = FunctionSpec(
    monitoring_name="AnalysisHeartbeat",
    construct_id="Heartbeat",
    handler="lambdas.analysis.heartbeat.handler",
    description="Sends heartbeats for running Rekognition jobs, resumes finished ones",
    service="analysis-heartbeat",
    settings=CatalogSettings,
    metrics=("AnalysisTasksAlive", "AnalysisNoticesRecovered"),
)
NO_RESOURCE_LEVEL = (
    "Rekognition Video Start*/Get* operations support no resource-level permissions "
    "(service authorization reference), so Resource must be *; the actions are listed one by one."
)


class Analysis(Unit):
    """Start Lambda (stores the task token, starts the job) and callback Lambda (SNS -> token).

    Rekognition publishes completion to an encrypted topic through a role it assumes; the callback
    resolves the waiting task with ``SendTaskSuccess``/``SendTaskFailure``. Waiting costs no state
    transitions, however long the analysis takes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: UnitRuntime,
        min_label_confidence: int = 70,
        min_moderation_confidence: int = 50,
        concurrency: EventConcurrency | None = None,
    ) -> None:
        concurrency = concurrency or EventConcurrency()
        super().__init__(scope, construct_id, runtime=runtime)
        data_lake, catalog = runtime.data_lake, runtime.catalog
        self.topic = EncryptedTopic(self, "CompletionTopic", description="Rekognition completion")
        self.rekognition_role = service_role(
            self,
            "RekognitionRole",
            "rekognition.amazonaws.com",
            "Lets Rekognition Video publish job completion to the pipeline's topic",
        )
        self.topic.grant_publish(self.rekognition_role)

        self.start = self.add_function(
            START,
            self.settings(
                StartSettings,
                rekognition_topic_arn=self.topic.topic_arn,
                rekognition_role_arn=self.rekognition_role.role_arn,
                min_label_confidence=min_label_confidence,
                min_moderation_confidence=min_moderation_confidence,
            ),
        )
        self.start.role.add_to_principal_policy(
            # Get* lets a re-driven start see a job that already finished and resume at once.
            iam.PolicyStatement(actions=[*START_ACTIONS, *GET_ACTIONS], resources=["*"])
        )
        # The notification role may be handed to Rekognition only (not grant_pass_role, which
        # would let the function pass it to any service).
        self.start.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.rekognition_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "rekognition.amazonaws.com"}},
            )
        )
        # Rekognition reads the video with the caller's permissions: the source itself when the
        # probe says it can, else the MP4 proxy.
        data_lake.grant_raw_video_read(self.start.role)
        data_lake.grant_processed_video_read(self.start.role)
        catalog.grant_read_write(self.start.function)

        # A completion notice that cannot be delivered or handled must not vanish: the task would
        # then wait until its timeout. Such notices are kept for inspection and redrive.
        self.undelivered = dead_letter_queue(
            self, "UndeliveredNotices", runtime.key, delivered_by=("sns", "events")
        )
        catalog_settings = self.settings(CatalogSettings)
        self.callback = self.add_function(
            CALLBACK,
            catalog_settings,
            async_dead_letter_queue=self.undelivered,
            reserved_concurrency=concurrency.analysis_callback,
        )
        self.topic.topic.add_subscription(
            subscriptions.LambdaSubscription(
                self.callback.function, dead_letter_queue=self.undelivered
            )
        )
        catalog.grant_read_write(self.callback.function)
        self.route_dead_letters(
            "UndeliveredRekognitionNotices",
            self.undelivered,
            kind="rekognition-notices",
            describes="Rekognition Video completion notices the callback did not handle",
            via="lambda",
            target=self.callback.function.function_arn,
        )

        # Heartbeat sweep: keeps waiting tasks alive and recovers lost completion notices.
        # Its own queue: a sweep is redriven by invoking the sweep, not the callback.
        self.undelivered_sweeps = dead_letter_queue(
            self, "UndeliveredHeartbeats", runtime.key, delivered_by=("events",)
        )
        self.heartbeat = self.add_function(
            HEARTBEAT,
            catalog_settings,
            async_dead_letter_queue=self.undelivered_sweeps,
            reserved_concurrency=concurrency.analysis_heartbeat,
        )
        self.heartbeat.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(GET_ACTIONS), resources=["*"])
        )
        catalog.grant_read_write(self.heartbeat.function)
        self.heartbeat_rule = events.Rule(
            self,
            "HeartbeatSchedule",
            description="Heartbeat sweep over waiting analysis tasks",
            schedule=events.Schedule.rate(cdk.Duration.minutes(HEARTBEAT_INTERVAL_MIN)),
            targets=[
                targets.LambdaFunction(
                    self.heartbeat.function,
                    dead_letter_queue=self.undelivered_sweeps,
                    retry_attempts=2,
                )
            ],
        )
        self.route_dead_letters(
            "UndeliveredHeartbeats",
            self.undelivered_sweeps,
            kind="heartbeat-sweeps",
            describes="Scheduled heartbeat sweeps that did not run (the next one sweeps again)",
            via="lambda",
            target=self.heartbeat.function.function_arn,
        )

        raw = data_lake.raw.node.default_child
        processed = data_lake.processed.node.default_child
        acknowledge(
            self.start.default_policy,
            [
                "Resource::*",
                *S3_READ_ACTIONS,
                arn_finding(self.start.default_policy, raw, "/video/*"),  # type: ignore[arg-type]
                arn_finding(self.start.default_policy, processed, "/video/*"),  # type: ignore[arg-type]
            ],
            NO_RESOURCE_LEVEL + " S3 read is limited to the video/ prefixes Rekognition reads "
            "from: the raw source (when it can read it as it is) and the processed proxy.",
        )
        acknowledge(
            self.heartbeat.default_policy,
            ["Resource::*"],
            NO_RESOURCE_LEVEL + " The sweep reads one result per waiting job.",
        )

        self.event_alarm(
            "AnalysisNoticesRecovered",
            self.metric_notices_recovered(),
            "The heartbeat sweep resumed an analysis whose Rekognition completion notice never "
            "came: check the completion topic, its subscription and the callback function (each "
            "lost notice delays its asset by up to 10 minutes)",
        )

    def metric_notices_recovered(self) -> cloudwatch.Metric:
        """Jobs the heartbeat sweep resumed because their SNS completion notice never came."""
        return self.metric(self.heartbeat, "AnalysisNoticesRecovered")

    def branches(
        self, flow: Flow, on: str, *, run_path: str | None = None
    ) -> list[sfn.TaskStateBase]:
        """Analyze labels | moderation | segments of ``$.plan.analysis.video`` (``on`` names it
        in the state names: the source or the proxy), one Parallel branch each, each waiting
        for Rekognition's SNS completion through a task token (no polling); the heartbeat sweep
        keeps them alive and recovers lost notices. Rekognition's concurrent-job quota and
        service faults: wait and try again rather than fail the asset (a failed asset is not
        picked up again). ``run_path`` (a reprocess) names the run, so its jobs are new ones."""
        path = sfn.JsonPath
        starts: list[sfn.TaskStateBase] = []
        for feature in FEATURES:
            start = flow.invoke(
                f"Analyze {feature} ({on})",
                self.start,
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                payload=sfn.TaskInput.from_object(
                    {
                        "task_token": path.task_token,
                        "feature": feature,
                        "asset_id": path.string_at("$.asset.asset_id"),
                        "video": path.object_at("$.plan.analysis.video"),
                        **({"run": path.string_at(run_path)} if run_path else {}),
                    }
                ),
                task_timeout=sfn.Timeout.duration(cdk.Duration.hours(flow.timeouts.analysis_hours)),
                heartbeat_timeout=sfn.Timeout.duration(cdk.Duration.minutes(HEARTBEAT_TIMEOUT_MIN)),
            )
            retry_transient(
                start,
                REKOGNITION_TRANSIENT,
                first=cdk.Duration.seconds(30),
                attempts=8,
                longest=cdk.Duration.minutes(15),
            )
            starts.append(start)
        return starts

    def grant_callbacks(self, state_machine: sfn.IStateMachine) -> None:
        """Only this state machine's tasks can be resumed by the callback."""
        state_machine.grant_task_response(self.callback.function)
        state_machine.grant_task_response(self.heartbeat.function)
        # The start function also resumes a task whose job had already finished (a re-driven
        # execution). It is referenced by the state machine, so a Ref back to the machine would
        # be circular; its name is CloudFormation's "<LogicalId>-<random>", so the ARN is scoped
        # by that prefix instead.
        arn = machine_name_arn(state_machine)
        self.start.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:SendTaskSuccess", "states:SendTaskFailure"], resources=[arn]
            )
        )
        acknowledge(
            self.start.default_policy,
            [f"Resource::{render(self.start.default_policy, arn)}"],
            "The pipeline's own state machine, named <LogicalId>-<random> by CloudFormation; a "
            "Ref would make the machine and this function depend on each other.",
        )
