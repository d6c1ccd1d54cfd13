"""The transcode unit: plans a MediaConvert job from JSON settings and owns the job role."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding
from constructs_lib.principals import service_role
from constructs_lib.units import FunctionSpec, Unit, UnitRuntime
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

    def plan_step(self, flow: Flow) -> tasks.LambdaInvoke:
        """Plan transcode: the jobs from JSON settings (ladder by the probed height, each job's
        CreateJob idempotency token from the asset, the job and the execution) and what the
        analysis reads (the source when the probe says Rekognition can, else the proxy), in
        ``$.plan``; the workflow's Choice follows ``$.plan.analysis.input``."""
        path = sfn.JsonPath
        return flow.invoke(
            "Plan transcode",
            self.plan,
            payload=sfn.TaskInput.from_object(
                {
                    "asset": path.object_at("$.asset"),
                    "execution": path.execution_name,
                    "probe": path.object_at("$.probe.technical"),
                }
            ),
            result_selector={
                "analysis.$": "$.Payload.analysis",
                "jobs.$": "$.Payload.jobs",
                "outputs.$": "$.Payload.outputs",
            },
            result_path="$.plan",
        )

    def job(
        self,
        flow: Flow,
        construct_id: str,
        job: str,
        *,
        job_id_as: str = "job_id",
        result_path: str = "$.transcode",
        output_path: str | None = "$.transcode",
    ) -> tasks.MediaConvertCreateJob:
        """One planned job (``$.plan.jobs.<job>``) as MediaConvert ``createJob.sync`` with its
        ClientRequestToken; the result is ``{<job_id_as>: <job id>}`` at ``result_path``. The
        defaults suit a job in a Parallel branch, whose output is then ``$.transcode`` alone. The
        job runs as ``mediaconvert_role``; CDK's task grants the state machine ``iam:PassRole``
        of it, for ``mediaconvert.amazonaws.com`` only."""
        path = sfn.JsonPath
        planned = f"$.plan.jobs.{job}"
        task = tasks.MediaConvertCreateJob(
            flow.scope,
            construct_id,
            create_job_request={
                "Role": self.mediaconvert_role.role_arn,
                "Settings": path.object_at(f"{planned}.settings"),
                "UserMetadata": path.object_at(f"{planned}.user_metadata"),
                # Same asset, job and execution, same token: a retried CreateJob whose answer
                # was lost gets the job already created back instead of starting a second one.
                "ClientRequestToken": path.string_at(f"{planned}.client_request_token"),
                "StatusUpdateInterval": "SECONDS_60",
            },
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            # Only the id: the job description repeats the settings, too big to carry along.
            result_selector={f"{job_id_as}.$": "$.Job.Id"},
            result_path=result_path,
            output_path=output_path,
        )
        retry_transient(task, MEDIACONVERT_TRANSIENT)
        return task

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
