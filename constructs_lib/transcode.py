"""The transcode unit: plans a MediaConvert job from JSON settings and owns the job role."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding
from constructs_lib.principals import service_role
from constructs_lib.units import Fragment, FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import MEDIACONVERT_TRANSIENT, Flow, retry_transient
from lambdas.transcode.settings import PlanSettings

PLAN = FunctionSpec(
    monitoring_name="PlanTranscode",
    construct_id="Plan",
    handler="lambdas.transcode.plan.handler",
    description="Builds MediaConvert job settings for one asset",
    service="transcode",
    settings=PlanSettings,
    metrics=("TranscodeJobsPlanned",),
)


class Transcode(Unit):
    """``lambdas/transcode/plan.py`` plus the role MediaConvert assumes to read and write S3.

    The MediaConvert role can read the raw bucket and write renditions under ``video/`` of the
    processed bucket; nothing else. The job itself is created by the state machine (``.sync``).
    """

    def __init__(self, scope: Construct, construct_id: str, *, runtime: UnitRuntime) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        data_lake, catalog = runtime.data_lake, runtime.catalog
        self.mediaconvert_role = service_role(
            self,
            "MediaConvertRole",
            "mediaconvert.amazonaws.com",
            "Assumed by MediaConvert jobs of the media pipeline",
        )
        data_lake.grant_raw_video_read(self.mediaconvert_role)
        data_lake.grant_processed_write(self.mediaconvert_role)
        self.plan = self.add_function(
            PLAN,
            self.settings(PlanSettings),
        )
        catalog.grant_read_write(self.plan.function)

        raw = data_lake.raw.node.default_child
        processed = data_lake.processed.node.default_child
        policy = self.mediaconvert_role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                arn_finding(policy, raw, "/video/*"),  # type: ignore[arg-type]
                arn_finding(policy, processed, "/video/*"),  # type: ignore[arg-type]
            ],
            "MediaConvert reads the clips registered under video/ of the raw bucket and "
            "writes renditions under video/ of the processed bucket; keys are per asset.",
        )

    def fragment(self, flow: Flow) -> Fragment:
        """Plan transcode (settings from JSON, ladder by height, CreateJob's idempotency token
        from the asset and the execution), then Transcode (MediaConvert ``createJob.sync`` with
        that ClientRequestToken). The job runs as ``mediaconvert_role``; CDK's task grants the
        state machine ``iam:PassRole`` of it, for ``mediaconvert.amazonaws.com`` only."""
        path = sfn.JsonPath
        plan = flow.invoke(
            "Plan transcode",
            self.plan,
            payload=sfn.TaskInput.from_object(
                {"asset": path.object_at("$.asset"), "execution": path.execution_name}
            ),
            result_selector={
                "settings.$": "$.Payload.settings",
                "user_metadata.$": "$.Payload.user_metadata",
                "outputs.$": "$.Payload.outputs",
                "client_request_token.$": "$.Payload.client_request_token",
            },
            result_path="$.plan",
        )
        job = tasks.MediaConvertCreateJob(
            flow.scope,
            "Transcode",
            create_job_request={
                "Role": self.mediaconvert_role.role_arn,
                "Settings": path.object_at("$.plan.settings"),
                "UserMetadata": path.object_at("$.plan.user_metadata"),
                # Same asset and execution, same token: a retried CreateJob whose answer was
                # lost gets the job already created back instead of starting a second one.
                "ClientRequestToken": path.string_at("$.plan.client_request_token"),
                "StatusUpdateInterval": "SECONDS_60",
            },
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"job_id.$": "$.Job.Id", "status.$": "$.Job.Status"},
            result_path="$.transcode",
        )
        retry_transient(job, MEDIACONVERT_TRANSIENT)
        plan.next(job)
        return Fragment(start=plan, end=job, catchable=(plan, job))

    def _queue_metric(self, name: str) -> cloudwatch.Metric:
        queue = cdk.Stack.of(self).format_arn(
            service="mediaconvert", resource="queues", resource_name="Default"
        )
        return cloudwatch.Metric(
            namespace="AWS/MediaConvert",
            metric_name=name,
            dimensions_map={"Queue": queue},
            statistic="Sum",
            period=cdk.Duration.hours(1),
        )

    def metric_jobs_completed(self) -> cloudwatch.Metric:
        return self._queue_metric("JobsCompletedCount")

    def metric_jobs_errored(self) -> cloudwatch.Metric:
        return self._queue_metric("JobsErroredCount")
