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
from constructs_lib.catalog import AssetCatalog
from constructs_lib.data_lake import DataLake
from constructs_lib.dead_letters import dead_letter_queue
from constructs_lib.functions import DependenciesLayer, PipelineFunction
from constructs_lib.nag import (
    S3_READ_ACTIONS,
    acknowledge,
    arn_finding,
    render,
)
from constructs_lib.principals import account_service_principal

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
NO_RESOURCE_LEVEL = (
    "Rekognition Video Start*/Get* operations support no resource-level permissions "
    "(service authorization reference), so Resource must be *; the actions are listed one by one."
)


class Analysis(Construct):
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
        data_lake: DataLake,
        catalog: AssetCatalog,
        layer: DependenciesLayer,
        deployment: str,
        log_retention_days: int,
        min_label_confidence: int = 70,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = EncryptedTopic(self, "CompletionTopic", description="Rekognition completion")
        self.rekognition_role = iam.Role(
            self,
            "RekognitionRole",
            assumed_by=account_service_principal(self, "rekognition.amazonaws.com"),
            description="Lets Rekognition Video publish job completion to the pipeline's topic",
        )
        self.topic.grant_publish(self.rekognition_role)

        common = {
            "CATALOG_TABLE": catalog.table_name,
            "DEPLOYMENT": deployment,
            "MIN_LABEL_CONFIDENCE": str(min_label_confidence),
        }
        self.start = PipelineFunction(
            self,
            "Start",
            unit="analysis",
            handler="lambdas.analysis.start.handler",
            layer=layer,
            log_retention_days=log_retention_days,
            service="analysis",
            description="Stores the task token and starts one Rekognition Video job",
            environment={
                **common,
                "REKOGNITION_TOPIC_ARN": self.topic.topic_arn,
                "REKOGNITION_ROLE_ARN": self.rekognition_role.role_arn,
            },
        )
        self.start.role.add_to_principal_policy(
            # Get* lets a re-driven start see a job that already finished and resume at once.
            iam.PolicyStatement(actions=[*START_ACTIONS, *GET_ACTIONS], resources=["*"])
        )
        self.rekognition_role.grant_pass_role(self.start.role)
        # Rekognition reads the MP4 proxy with the caller's permissions.
        data_lake.processed.grant_read(self.start.role, "video/*")
        catalog.grant_read_write(self.start.function)

        # A completion notice that cannot be delivered or handled must not vanish: the task would
        # then wait until its timeout. Such notices are kept for inspection and redrive.
        self.undelivered = dead_letter_queue(self, "UndeliveredNotices")
        self.callback = PipelineFunction(
            self,
            "Callback",
            unit="analysis",
            handler="lambdas.analysis.callback.handler",
            layer=layer,
            log_retention_days=log_retention_days,
            service="analysis-callback",
            description="Resumes the waiting task when Rekognition reports completion",
            environment=common,
            async_dead_letter_queue=self.undelivered,
        )
        self.topic.topic.add_subscription(
            subscriptions.LambdaSubscription(
                self.callback.function, dead_letter_queue=self.undelivered
            )
        )
        catalog.grant_read_write(self.callback.function)

        # Heartbeat sweep: keeps waiting tasks alive and recovers lost completion notices.
        self.heartbeat = PipelineFunction(
            self,
            "Heartbeat",
            unit="analysis",
            handler="lambdas.analysis.heartbeat.handler",
            layer=layer,
            log_retention_days=log_retention_days,
            service="analysis-heartbeat",
            description="Sends heartbeats for running Rekognition jobs, resumes finished ones",
            environment=common,
            async_dead_letter_queue=self.undelivered,
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
                    dead_letter_queue=self.undelivered,
                    retry_attempts=2,
                )
            ],
        )

        processed = data_lake.processed.node.default_child
        acknowledge(
            self.start.default_policy,
            [
                "Resource::*",
                *S3_READ_ACTIONS,
                arn_finding(self.start.default_policy, processed, "/video/*"),  # type: ignore[arg-type]
            ],
            NO_RESOURCE_LEVEL + " S3 read is limited to the processed video/ prefix Rekognition "
            "reads the proxy from.",
        )
        acknowledge(
            self.heartbeat.default_policy,
            ["Resource::*"],
            NO_RESOURCE_LEVEL + " The sweep reads one result per waiting job.",
        )

    def metric_notices_recovered(self) -> cloudwatch.Metric:
        """Jobs the heartbeat sweep resumed because their SNS completion notice never came."""
        return self.heartbeat.metric_custom("AnalysisNoticesRecovered")

    def grant_callbacks(self, state_machine: sfn.IStateMachine) -> None:
        """Only this state machine's tasks can be resumed by the callback."""
        state_machine.grant_task_response(self.callback.function)
        state_machine.grant_task_response(self.heartbeat.function)
        # The start function also resumes a task whose job had already finished (a re-driven
        # execution). It is referenced by the state machine, so a Ref back to the machine would
        # be circular; its name is CloudFormation's "<LogicalId>-<random>", so the ARN is scoped
        # by that prefix instead.
        stack = cdk.Stack.of(state_machine)
        cfn = state_machine.node.default_child
        if not isinstance(cfn, cdk.CfnResource):
            raise TypeError("state machine has no CfnResource")
        logical_id = stack.get_logical_id(cfn)
        arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=f"{logical_id}-*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
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
