"""The finalize unit: labels.json from every Rekognition result page, catalog updates."""

from __future__ import annotations

import json

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.alerts import EncryptedTopic
from constructs_lib.analysis import GET_ACTIONS, NO_RESOURCE_LEVEL
from constructs_lib.catalog import AssetCatalog
from constructs_lib.data_lake import DataLake
from constructs_lib.functions import DependenciesLayer, PipelineFunction
from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding


class Finalize(Construct):
    """Finalize, mark-failed and run-summary handlers (``lambdas/finalize``, ``lambdas/notify``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_lake: DataLake,
        catalog: AssetCatalog,
        alerts: EncryptedTopic,
        layer: DependenciesLayer,
        deployment: str,
        log_retention_days: int,
        unit_prices: dict[str, float] | None = None,
        min_label_confidence: int = 70,
        top_labels: int = 15,
    ) -> None:
        super().__init__(scope, construct_id)
        env = {
            "CATALOG_TABLE": catalog.table_name,
            "RAW_BUCKET": data_lake.raw.bucket_name,
            "PROCESSED_BUCKET": data_lake.processed.bucket_name,
            "DEPLOYMENT": deployment,
        }
        self.finalize = PipelineFunction(
            self,
            "Function",
            unit="finalize",
            handler="lambdas.finalize.handler.handler",
            layer=layer,
            log_retention_days=log_retention_days,
            service="finalize",
            # Paging many thousands of detections takes time; memory stays bounded by design.
            timeout_sec=300,
            memory_mib=512,
            description="Pages through Rekognition results and writes <stem>_labels.json",
            environment={
                **env,
                "MIN_LABEL_CONFIDENCE": str(min_label_confidence),
                "TOP_LABELS": str(top_labels),
                "UNIT_PRICES": json.dumps(unit_prices or {}, sort_keys=True),
            },
        )
        self.finalize.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(GET_ACTIONS), resources=["*"])
        )
        data_lake.grant_raw_video_read(self.finalize.function)
        data_lake.grant_processed_video_read(self.finalize.function)
        data_lake.grant_processed_write(self.finalize.function)
        catalog.grant_read_write(self.finalize.function)

        self.mark_failed = PipelineFunction(
            self,
            "MarkFailed",
            unit="finalize",
            handler="lambdas.finalize.failed.handler",
            layer=layer,
            log_retention_days=log_retention_days,
            service="finalize",
            description="Records a failed asset with its root cause and removes its renditions",
            environment=env,
        )
        catalog.grant_read_write(self.mark_failed.function)
        data_lake.grant_processed_video_cleanup(self.mark_failed.function)
        data_lake.grant_raw_video_list(self.mark_failed.function)

        self.summary = PipelineFunction(
            self,
            "Summary",
            unit="notify",
            handler="lambdas.notify.summary.handler",
            layer=layer,
            log_retention_days=log_retention_days,
            service="notify",
            description="Publishes the run summary to the alerts topic",
            environment={"ALERTS_TOPIC_ARN": alerts.topic_arn, "DEPLOYMENT": deployment},
        )
        alerts.grant_publish(self.summary.function)

        raw = data_lake.raw.node.default_child
        processed = data_lake.processed.node.default_child
        policy = self.finalize.default_policy
        acknowledge(
            policy,
            [
                "Resource::*",
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                arn_finding(policy, raw, "/video/*"),  # type: ignore[arg-type]
                arn_finding(policy, processed, "/video/*"),  # type: ignore[arg-type]
            ],
            NO_RESOURCE_LEVEL + " S3 access is limited to video/: it reads attribution sidecars "
            "(raw), lists thumbnails and writes labels documents (processed); keys are per asset.",
        )
        failed_policy = self.mark_failed.default_policy
        acknowledge(
            failed_policy,
            [arn_finding(failed_policy, processed, "/video/*")],  # type: ignore[arg-type]
            "Mark-failed deletes (s3:DeleteObject only: versioning keeps the bytes recoverable) "
            "or tags a failed asset's renditions; which asset fails is known at run time, so "
            "the grant covers the video/ prefix, where every asset's keys live.",
        )

    def metric_minutes_analyzed(self) -> cloudwatch.Metric:
        """Rekognition billable minutes (video minutes x 3 features)."""
        return self.finalize.metric_custom("VideoMinutesAnalyzed")

    def metric_minutes_transcoded(self) -> cloudwatch.Metric:
        return self.finalize.metric_custom("VideoMinutesTranscoded")

    def metric_assets_processed(self) -> cloudwatch.Metric:
        return self.finalize.metric_custom("AssetsProcessed")

    def metric_assets_failed(self) -> cloudwatch.Metric:
        return self.mark_failed.metric_custom("AssetsFailed")

    def metric_renditions_left(self) -> cloudwatch.Metric:
        """Failed assets whose renditions mark-failed could neither delete nor tag for expiry
        (their catalog record names the prefixes, ``renditions_left``)."""
        return self.mark_failed.metric_custom("RenditionsLeft")

    def metric_failures_not_recorded(self) -> cloudwatch.Metric:
        """Failed assets mark-failed could not write to the catalog (they show only in the run
        summary, not on the dashboard)."""
        return self.mark_failed.metric_custom("FailuresNotRecorded")

    def metric_labels_found(self) -> cloudwatch.Metric:
        return self.finalize.metric_custom("LabelsFound")

    def metric_moderation_flags(self) -> cloudwatch.Metric:
        return self.finalize.metric_custom("ModerationFlags")

    def metric_estimated_cost(self, *, campaign: str | None = None) -> cloudwatch.Metric:
        """Estimated USD per processed asset (Average) or per campaign (Sum by campaign)."""
        if campaign is None:
            return self.finalize.metric_custom("EstimatedCostUSD", statistic="Average")
        return self.finalize.metric_custom(
            "EstimatedCostUSD", dimensions={"campaign": campaign}, statistic="Sum"
        )
