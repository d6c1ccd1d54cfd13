"""The images unit: renditions and facts of each image asset (``lambdas/images/``).

One function with the media layer (Pillow with the HEIF plugin, NumPy): it reads the raw image
under ``image/`` and writes its renditions under ``image/`` of the processed bucket, through
the data lake's image grants (reading registered images, writing renditions and deleting what
a refused image's step wrote, nothing of ``video/``).

Memory: 3,584 MB gives the function two vCPUs (Lambda allots CPU in proportion, one vCPU per
1,769 MB), which the handler's encoder threads use; a 24 MP photo peaks at about 400 MB in
``benchmarks/images.py``, and the rest is headroom for the 100 MP images the unit still takes.

Not yet a step of the workflow (issue 19 goes on): no ingest path registers image assets, so
the state machine has no image branch to call it from; the function is deployed with its
grants, alarms and dashboard widgets so that branch only has to add its states.
"""

from __future__ import annotations

from constructs import Construct

from constructs_lib.nag import S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge, arn_finding
from constructs_lib.units import FunctionSpec, Unit, UnitRuntime
from lambdas.images.settings import ImagesSettings

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
)


class Images(Unit):
    """One function; the image path's first step."""

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
