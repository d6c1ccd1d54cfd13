"""The finalize unit: labels.json from every Rekognition result page, catalog updates."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.analysis import GET_ACTIONS, NO_RESOURCE_LEVEL
from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding
from constructs_lib.units import Fragment, FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import REKOGNITION_TRANSIENT, Flow, retry_transient
from lambdas.finalize.settings import FinalizeSettings, MarkFailedSettings

FINALIZE = FunctionSpec(
    monitoring_name="Finalize",
    construct_id="Function",
    handler="lambdas.finalize.handler.handler",
    description="Pages through Rekognition results and writes <stem>_labels.json",
    service="finalize",
    settings=FinalizeSettings,
    metrics=(
        "AssetsProcessed",
        "AssetsReprocessed",
        "VideoMinutesTranscoded",
        "VideoMinutesAnalyzed",
        "TranscribeMinutes",
        "LabelsFound",
        "LabelDetections",
        "ModerationFlags",
        "EstimatedCostUSD",
    ),
    # Paging many thousands of detections takes time; memory stays bounded by design.
    timeout_sec=300,
    memory_mib=512,
)
FINALIZE_IMAGE = FunctionSpec(
    monitoring_name="FinalizeImage",
    construct_id="Image",
    handler="lambdas.finalize.image.handler",
    description="Writes an image's <stem>_labels.json and records it in the catalog",
    service="finalize-image",
    settings=FinalizeSettings,
    metrics=(
        "AssetsProcessed",
        "ImagesProcessed",
        "LabelsFound",
        "ModerationFlags",
        "EstimatedCostUSD",
    ),
)
MARK_FAILED = FunctionSpec(
    monitoring_name="MarkFailed",
    construct_id="MarkFailed",
    handler="lambdas.finalize.failed.handler",
    description="Records a failed asset with its root cause and removes its renditions",
    service="finalize",
    settings=MarkFailedSettings,
    metrics=("AssetsFailed", "FailuresNotRecorded", "RenditionsLeft"),
)


class Finalize(Unit):
    """Finalize (labels.json, catalog) and mark-failed (root cause, renditions removed)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: UnitRuntime,
        unit_prices: dict[str, float] | None = None,
        min_label_confidence: int = 70,
        top_labels: int = 15,
        delivery_base_url: str = "",
        slo_clip_max_s: int = 600,
    ) -> None:
        """``slo_clip_max_s``: clips up to this long are in the time-to-labels objective."""
        super().__init__(scope, construct_id, runtime=runtime)
        data_lake, catalog = runtime.data_lake, runtime.catalog
        # Clips and images are published by the same rules (labels kept, prices, delivery).
        published = self.settings(
            FinalizeSettings,
            min_label_confidence=min_label_confidence,
            top_labels=top_labels,
            unit_prices=dict(unit_prices or {}),
            delivery_base_url=delivery_base_url,
            slo_clip_max_s=slo_clip_max_s,
        )
        self.finalize = self.add_function(
            FINALIZE,
            published,
        )
        self.finalize.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(GET_ACTIONS), resources=["*"])
        )
        data_lake.grant_raw_video_read(self.finalize.function)
        data_lake.grant_processed_video_read(self.finalize.function)
        data_lake.grant_processed_write(self.finalize.function)
        catalog.grant_read_write(self.finalize.function)

        self.finalize_image = self.add_function(FINALIZE_IMAGE, published)
        data_lake.grant_raw_image_read(self.finalize_image.function)
        data_lake.grant_processed_image_put(self.finalize_image.function)
        catalog.grant_read_write(self.finalize_image.function)

        self.mark_failed = self.add_function(
            MARK_FAILED,
            self.settings(MarkFailedSettings),
        )
        catalog.grant_read_write(self.mark_failed.function)
        data_lake.grant_processed_cleanup(self.mark_failed.function)
        data_lake.grant_raw_asset_list(self.mark_failed.function)

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
        image_policy = self.finalize_image.default_policy
        acknowledge(
            image_policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                arn_finding(image_policy, raw, "/image/*"),  # type: ignore[arg-type]
                arn_finding(image_policy, processed, "/image/*"),  # type: ignore[arg-type]
            ],
            "S3 access is limited to image/: it reads attribution sidecars (raw) and writes "
            "the image's labels document (processed, put only); keys are per asset.",
        )
        failed_policy = self.mark_failed.default_policy
        acknowledge(
            failed_policy,
            [
                arn_finding(failed_policy, processed, "/video/*"),  # type: ignore[arg-type]
                arn_finding(failed_policy, processed, "/image/*"),  # type: ignore[arg-type]
            ],
            "Mark-failed deletes (s3:DeleteObject only: versioning keeps the bytes recoverable) "
            "or tags a failed asset's renditions; which asset fails is known at run time, so "
            "the grant covers the video/ and image/ prefixes, where every asset's keys live.",
        )

        self.event_alarm(
            "FailuresNotRecorded",
            self.metric_failures_not_recorded(),
            "Mark-failed could not record an asset's failure in the catalog (DynamoDB refused or "
            "was unreachable): the dashboard does not show it; the run summary lists it with the "
            "reason",
        )
        self.event_alarm(
            "RenditionsLeft",
            self.metric_renditions_left(),
            "Mark-failed could neither delete nor tag a failed asset's renditions: they stay in "
            "the processed bucket unreferenced; the asset's catalog record (renditions_left) "
            "lists what is left",
        )

    def fragment(self, flow: Flow, *, kind: str = "pipeline") -> Fragment:
        """Finalize: page every result, write <stem>_labels.json, update the catalog and record
        the run's result version (``kind``: the pipeline's first pass or a reprocess)."""
        path = sfn.JsonPath
        task = flow.call(
            "Finalize",
            self.finalize,
            {
                "asset": path.object_at("$.asset"),
                "transcode": {
                    "outputs": path.object_at("$.plan.outputs"),
                    "job_ids": path.list_at("$.work.transcode_job_ids"),
                },
                "analysed": path.object_at("$.plan.analysis"),
                "analysis": path.list_at("$.work.analysis"),
                "probe": path.object_at("$.probe.technical"),
                "run": {"name": path.string_at("$$.Execution.Name"), "kind": kind},
                # A reprocess keeps the sections of the analyses it did not run from here.
                **({"previous": path.object_at("$.previous")} if kind == "reprocess" else {}),
            },
        )
        retry_transient(
            task,
            REKOGNITION_TRANSIENT,
            first=cdk.Duration.seconds(10),
            longest=cdk.Duration.minutes(5),
        )
        return Fragment(start=task, end=task, catchable=(task,))

    def image_fragment(self, flow: Flow) -> Fragment:
        """Finalize image: the image's labels.json and its catalog record (PROCESSED,
        ``type=image``, its top labels indexed); the asset's result is the state."""
        path = sfn.JsonPath
        task = flow.call(
            "Finalize image",
            self.finalize_image,
            {
                "asset": path.object_at("$.asset"),
                "image": path.object_at("$.image.result"),
                "analysis": path.object_at("$.image_analysis.result"),
                "run": {"name": path.string_at("$$.Execution.Name"), "kind": "pipeline"},
            },
        )
        return Fragment(start=task, end=task, catchable=(task,))

    def mark_failed_fragment(self, flow: Flow) -> Fragment:
        """Mark failed (catalog + root cause); the batch goes on. Mark failed never raises for
        what it records; if the step itself fails (throttled past its retries, a broken
        deployment) the asset still ends with a FAILED result that says it is not in the
        catalog."""
        path = sfn.JsonPath
        task = flow.call(
            "Mark failed",
            self.mark_failed,
            {"asset": path.object_at("$.asset"), "error": path.object_at("$.error")},
        )
        task.add_catch(
            sfn.Pass(
                flow.scope,
                "Failure not recorded",
                parameters={
                    "asset_id": path.string_at("$.asset.asset_id"),
                    "status": "FAILED",
                    "reason": "the asset failed, and the step recording its failure failed "
                    "too; the execution's history shows both errors",
                    "recorded": False,
                    "not_recorded": path.format(
                        "the mark-failed step failed ({})", path.string_at("$.mark_error.Error")
                    ),
                },
            ),
            errors=["States.ALL"],
            result_path="$.mark_error",
        )
        return Fragment(start=task, end=task)

    def metric_minutes_analyzed(self) -> cloudwatch.Metric:
        """Rekognition billable minutes (video minutes x 3 features)."""
        return self.metric(self.finalize, "VideoMinutesAnalyzed")

    def metric_minutes_transcribed(self) -> cloudwatch.Metric:
        """Transcribe billable minutes (the audio of each completed transcription)."""
        return self.metric(self.finalize, "TranscribeMinutes")

    def metric_minutes_transcoded(self) -> cloudwatch.Metric:
        return self.metric(self.finalize, "VideoMinutesTranscoded")

    def metric_assets_processed(self) -> cloudwatch.Metric:
        return self.metric(self.finalize, "AssetsProcessed")

    def metric_assets_failed(self) -> cloudwatch.Metric:
        return self.metric(self.mark_failed, "AssetsFailed")

    def metric_renditions_left(self) -> cloudwatch.Metric:
        """Failed assets whose renditions mark-failed could neither delete nor tag for expiry
        (their catalog record names the prefixes, ``renditions_left``)."""
        return self.metric(self.mark_failed, "RenditionsLeft")

    def metric_failures_not_recorded(self) -> cloudwatch.Metric:
        """Failed assets mark-failed could not write to the catalog (they show only in the run
        summary, not on the dashboard)."""
        return self.metric(self.mark_failed, "FailuresNotRecorded")

    def metric_labels_found(self) -> cloudwatch.Metric:
        return self.metric(self.finalize, "LabelsFound")

    def metric_moderation_flags(self) -> cloudwatch.Metric:
        return self.metric(self.finalize, "ModerationFlags")

    def metric_estimated_cost(
        self, *, campaign: str | None = None, image: bool = False
    ) -> cloudwatch.Metric:
        """Estimated USD per processed clip (or image: ``image``), Average, or per campaign (Sum
        by campaign). Clips and images are estimated by different functions."""
        function = self.finalize_image if image else self.finalize
        if campaign is None:
            return self.metric(function, "EstimatedCostUSD", statistic="Average")
        return self.metric(
            function, "EstimatedCostUSD", dimensions={"campaign": campaign}, statistic="Sum"
        )
