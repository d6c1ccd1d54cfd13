"""The ingest unit: searches the sources and streams new clips into the raw zone."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.campaign_config import PixabayApiKey
from constructs_lib.nag import (
    S3_DELETE_ACTIONS,
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    arn_finding,
)
from constructs_lib.props import EMAIL_RE, require
from constructs_lib.units import Fragment, FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import Flow
from lambdas.ingest.settings import Settings as IngestSettings

# The handler starts a new clip only with START_BUDGET_S (120 s) left and stops any step when its
# RESERVE_S (45 s) is reached (lambdas/ingest/budget.py); a shorter timeout could never land one.
MIN_TIMEOUT_SEC = 180
MAX_LAMBDA_TIMEOUT_SEC = 900


@dataclass(frozen=True)
class IngestLimits:
    """What the ingest function accepts and how it identifies itself to the sources.

    Configuration field ``ingest`` of each environment; errors name ``ingest.<field>``.
    """

    max_file_bytes: int = 2 * 1024**3
    max_duration_s: int = 6 * 3600
    # Sent in the User-Agent, as Wikimedia's policy asks, so operators can reach us.
    contact: str = "media-pipeline-ops@example.com"
    timeout_s: int = MAX_LAMBDA_TIMEOUT_SEC
    memory_mib: int = 512
    sources: tuple[str, ...] = ("commons", "pixabay")

    def __post_init__(self) -> None:
        require(self.max_file_bytes > 0, "ingest.max_file_bytes", "must be > 0")
        # Rekognition Video reads files up to 10 GB and 6 hours.
        require(
            self.max_file_bytes <= 10 * 1000**3,
            "ingest.max_file_bytes",
            "Rekognition's limit is 10 GB",
        )
        require(
            0 < self.max_duration_s <= 6 * 3600,
            "ingest.max_duration_s",
            "must be within Rekognition's 6 h",
        )
        require(bool(EMAIL_RE.match(self.contact)), "ingest.contact", "must be an e-mail address")
        require(
            MIN_TIMEOUT_SEC <= self.timeout_s <= MAX_LAMBDA_TIMEOUT_SEC,
            "ingest.timeout_s",
            f"must be {MIN_TIMEOUT_SEC}..{MAX_LAMBDA_TIMEOUT_SEC}: the handler starts a clip only "
            f"with 120 s left and keeps 45 s to report, got {self.timeout_s}",
        )
        require(128 <= self.memory_mib <= 10240, "ingest.memory_mib", "Lambda allows 128..10240")


def ingest_spec(limits: IngestLimits) -> FunctionSpec:
    return FunctionSpec(
        monitoring_name="Ingest",
        construct_id="Function",
        handler="lambdas.ingest.handler.handler",
        description="Searches media sources and streams new clips into the raw zone",
        service="ingest",
        settings=IngestSettings,
        metrics=(
            "IngestRuns",
            "IngestRunsFailed",
            "AssetsIngested",
            "BytesIngested",
            "AssetsSkipped",
            "SourceFailures",
        ),
        timeout_sec=limits.timeout_s,
        memory_mib=limits.memory_mib,
    )


class Ingest(Unit):
    """Deploys ``lambdas/ingest`` with its own least-privilege role.

    The role may read and write only under ``video/`` and ``scratch/`` of the raw bucket, read only
    ``uploads/``, use the catalog table, read the campaign parameter and the Pixabay secret.
    Streaming keeps memory bounded, so 512 MiB is enough even for multi-GiB files; the 15 minute
    timeout bounds one batch. A timed-out batch is not retried: assets it committed before the
    timeout would look already ingested to a retry and never be processed. Instead the function
    watches its own deadline (``lambdas/ingest/budget.py``): it starts a clip only with
    ``START_BUDGET_S`` left, gives up a download, a search or a back-off pause when only the
    reserve is left, and returns what it committed, which the state machine then processes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pixabay_key: PixabayApiKey,
        runtime: UnitRuntime,
        limits: IngestLimits,
    ) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        data_lake, catalog = runtime.data_lake, runtime.catalog
        self.handler = self.add_function(
            ingest_spec(limits),
            self.settings(
                IngestSettings,
                pixabay_secret_arn=pixabay_key.secret_arn,
                contact_email=limits.contact,
                max_file_bytes=limits.max_file_bytes,
                max_duration_s=limits.max_duration_s,
                sources=limits.sources,
            ),
        )
        data_lake.grant_raw_video_read_write(self.handler.function)
        data_lake.grant_raw_image_read_write(self.handler.function)
        data_lake.grant_uploads_read(self.handler.function)
        data_lake.grant_scratch_read_write(self.handler.function)
        catalog.grant_read_write(self.handler.function)
        runtime.campaign_config.grant_read(self.handler.function)
        pixabay_key.grant_read(self.handler.function)

        policy = self.handler.default_policy
        raw = data_lake.raw.node.default_child
        if not isinstance(raw, cdk.CfnResource):
            raise TypeError("the data lake must expose its Cfn bucket")
        acknowledge(
            policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                *S3_DELETE_ACTIONS,
                arn_finding(policy, raw, "/video/*"),
                arn_finding(policy, raw, "/image/*"),
                arn_finding(policy, raw, "/uploads/*"),
                arn_finding(policy, raw, "/scratch/*"),
            ],
            "grant_* action groups scoped to key prefixes of the raw bucket: write new clips "
            "under video/ and images under image/ (and abort its own multipart uploads), read "
            "uploads/, read-write the "
            "scratch/ search cache. Object keys are not known in advance.",
        )

    @property
    def function(self) -> lambda_.IFunction:
        return self.handler.function

    def fragment(self, flow: Flow) -> Fragment:
        """Ingest: search the sources, stream new clips into raw, record them."""
        task = flow.invoke(
            "Ingest",
            self.handler,
            payload=sfn.TaskInput.from_json_path_at("$"),
            result_selector={
                "assets.$": "$.Payload.assets",
                "skipped.$": "$.Payload.skipped",
                "errors.$": "$.Payload.errors",
            },
            result_path="$.ingest",
        )
        return Fragment(start=task, end=task)

    def metric_assets_ingested(self, source: str) -> cloudwatch.Metric:
        return self.metric(self.handler, "AssetsIngested", dimensions={"source": source})

    def metric_bytes_ingested(self, source: str) -> cloudwatch.Metric:
        return self.metric(self.handler, "BytesIngested", dimensions={"source": source})

    def metric_source_failures(self, source: str) -> cloudwatch.Metric:
        return self.metric(self.handler, "SourceFailures", dimensions={"source": source})
