"""The transcode unit: plans a MediaConvert job from JSON settings and owns the job role."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.catalog import AssetCatalog
from constructs_lib.data_lake import DataLake
from constructs_lib.functions import DependenciesLayer, PipelineFunction
from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding
from constructs_lib.principals import account_service_principal


class Transcode(Construct):
    """``lambdas/transcode/plan.py`` plus the role MediaConvert assumes to read and write S3.

    The MediaConvert role can read the raw bucket and write renditions under ``video/`` of the
    processed bucket; nothing else. The job itself is created by the state machine (``.sync``).
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.mediaconvert_role = iam.Role(
            self,
            "MediaConvertRole",
            assumed_by=account_service_principal(self, "mediaconvert.amazonaws.com"),
            description="Assumed by MediaConvert jobs of the media pipeline",
        )
        data_lake.grant_raw_video_read(self.mediaconvert_role)
        data_lake.grant_processed_write(self.mediaconvert_role)
        self.plan = PipelineFunction(
            self,
            "Plan",
            unit="transcode",
            handler="lambdas.transcode.plan.handler",
            layer=layer,
            log_retention_days=log_retention_days,
            service="transcode",
            description="Builds MediaConvert job settings for one asset",
            environment={
                "CATALOG_TABLE": catalog.table_name,
                "PROCESSED_BUCKET": data_lake.processed.bucket_name,
                "DEPLOYMENT": deployment,
                "MEDIACONVERT_ROLE_ARN": self.mediaconvert_role.role_arn,
            },
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
