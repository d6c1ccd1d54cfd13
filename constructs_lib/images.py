"""The images unit: renditions, facts and analysis of each image asset (``lambdas/images/``).

Two functions. ``Images`` (the media layer: Pillow with the HEIF plugin, NumPy) reads the raw
image under ``image/`` and writes its renditions under ``image/`` of the processed bucket,
through the data lake's image grants (reading registered images, writing renditions and
deleting what a refused image's step wrote, nothing of ``video/``). ``ImageAnalysis`` calls
Rekognition's DetectLabels, DetectModerationLabels and DetectText on the rendition the first
chose; Rekognition reads the object with the caller's permissions, so it may read the
processed ``image/`` prefix (and decrypt with the data key), nothing else.

Memory: 3,584 MB gives the function two vCPUs (Lambda allots CPU in proportion, one vCPU per
1,769 MB), which the handler's encoder threads use; a 24 MP photo peaks at about 400 MB in
``benchmarks/images.py``, and the rest is headroom for the 100 MP images the unit still takes.

In the workflow (``fragment``): Render image, then Analyse image with the video analysis's
Retry on Rekognition's throttling; Finalize image (the finalize unit) follows.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding
from constructs_lib.units import Fragment, FunctionSpec, Unit, UnitRuntime
from constructs_lib.workflow import REKOGNITION_TRANSIENT, Flow, retry_transient
from lambdas.images.settings import ImageAnalysisSettings, ImagesSettings

# Rekognition Image's synchronous APIs the analysis calls (no resource-level permissions).
DETECT_ACTIONS = (
    "rekognition:DetectLabels",
    "rekognition:DetectModerationLabels",
    "rekognition:DetectText",
)

IMAGES = FunctionSpec(
    monitoring_name="Images",
    construct_id="Function",
    handler="lambdas.images.handler.handler",
    description="Reads an image asset and writes its renditions (sizes x WebP/AVIF/JPEG)",
    service="images",
    settings=ImagesSettings,
    metrics=("ImagesRefused", "ImageRenditionsWritten", "ImageRenditionBytes"),
    memory_mib=3584,
    timeout_sec=300,
    media=True,
    # glibc's malloc keeps up to 8 arenas per core, and the encoders' threads each grow one to
    # the size of a decoded image; two arenas lowered the peak by about 80 MB in
    # benchmarks/images.py without costing speed.
    runtime_environment=(("MALLOC_ARENA_MAX", "2"),),
)
IMAGE_ANALYSIS = FunctionSpec(
    monitoring_name="ImageAnalysis",
    construct_id="Analysis",
    handler="lambdas.images.analyse.handler",
    description="Rekognition's image APIs (labels, moderation, text) on an image's rendition",
    service="image-analysis",
    settings=ImageAnalysisSettings,
    metrics=("ImagesAnalysed", "ImageLabelsFound"),
    timeout_sec=60,
)


class Images(Unit):
    """Render, then analyse: the image path's first two steps."""

    def __init__(self, scope: Construct, construct_id: str, *, runtime: UnitRuntime) -> None:
        super().__init__(scope, construct_id, runtime=runtime)
        self.handler = self.add_function(IMAGES, self.settings(ImagesSettings))
        lake = runtime.data_lake
        lake.grant_raw_image_read(self.handler.function)
        lake.grant_processed_image_write(self.handler.function)
        policy = self.handler.default_policy
        acknowledge(
            policy,
            [
                *S3_READ_ACTIONS,
                *S3_WRITE_ACTIONS,
                arn_finding(policy, lake.raw.node.default_child, "/image/*"),  # type: ignore[arg-type]
                arn_finding(policy, lake.processed.node.default_child, "/image/*"),  # type: ignore[arg-type]
            ],
            "Reads the images registered under image/ of the raw bucket and writes (or takes "
            "back) their renditions under image/ of the processed bucket; keys are per asset.",
        )

        self.analysis = self.add_function(IMAGE_ANALYSIS, self.settings(ImageAnalysisSettings))
        self.analysis.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(DETECT_ACTIONS), resources=["*"])
        )
        lake.grant_processed_image_read(self.analysis.function)
        analysis_policy = self.analysis.default_policy
        acknowledge(
            analysis_policy,
            [
                "Resource::*",
                *S3_READ_ACTIONS,
                arn_finding(analysis_policy, lake.processed.node.default_child, "/image/*"),  # type: ignore[arg-type]
            ],
            "Rekognition's DetectLabels, DetectModerationLabels and DetectText support no "
            "resource-level permissions (Resource must be *; the three actions are listed). "
            "Rekognition reads the S3 object with the caller's permissions, so the function "
            "reads image renditions under image/ of the processed bucket; keys are per asset.",
        )

    def fragment(self, flow: Flow) -> Fragment:
        """Render image (renditions and facts in ``$.image``), then Analyse image (Rekognition's
        sections in ``$.image_analysis``). A refused image raises ``Unprocessable``, which the
        per-asset catch records as the asset's failure."""
        path = sfn.JsonPath
        render = flow.invoke(
            "Render image",
            self.handler,
            payload=sfn.TaskInput.from_object({"asset": path.object_at("$.asset")}),
            result_selector={"result.$": "$.Payload"},
            result_path="$.image",
        )
        analyse = flow.invoke(
            "Analyse image",
            self.analysis,
            payload=sfn.TaskInput.from_object(
                {
                    "asset": path.object_at("$.asset"),
                    "input": path.object_at("$.image.result.analysis_input"),
                }
            ),
            result_selector={"result.$": "$.Payload"},
            result_path="$.image_analysis",
        )
        # Throttling frees up within seconds for synchronous calls: the video analysis's
        # errors, with a shorter first wait.
        retry_transient(
            analyse,
            REKOGNITION_TRANSIENT,
            first=cdk.Duration.seconds(5),
            longest=cdk.Duration.minutes(2),
        )
        render.next(analyse)
        return Fragment(start=render, end=analyse, catchable=(render, analyse))
