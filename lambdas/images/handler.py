"""The images unit's step: read an image asset, write its renditions, say what it is.

Input ``{"asset": {"bucket", "key", "asset_id", ...}}`` (the raw object under ``image/``);
output the image's facts (``lambdas/images/facts.py``), every rendition with its key, bytes and
measured quality, and the rendition Rekognition's image APIs read (``analysis_input``).

The object is read whole (an image is decoded whole anyway), after a HeadObject that refuses a
file over ``max_source_bytes`` without reading it, and of the exact version the head saw. What
cannot be rendered raises ``Unprocessable`` with the reason, which the per-asset catch records
as the asset's failure; the renditions already written are deleted first, whatever the error,
so a refused or failed image leaves no rendition in the processed zone (a delete marker over
each, as the video cleanup leaves: the data lake grants no permanent deletes, and Housekeeping
expires noncurrent versions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from lambdas.images.facts import ImageRefused
from lambdas.images.render import Rendition, for_analysis, render
from lambdas.images.settings import ImagesSettings
from lambdas.shared.assets import GONE, head_asset, step_asset
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import Unprocessable
from lambdas.shared.keys import AssetKeys

tools = Powertools()
logger, metrics = tools.logger, tools.metrics
# Renditions are never rewritten under the same key with other content (a reprocess writes the
# same bytes), so browsers and CloudFront may keep them.
CACHE_CONTROL = "public, max-age=86400"
MIB = 1024 * 1024


def _read(s3: Any, bucket: str, key: str, limit: int) -> bytes:
    head = head_asset(s3, bucket, key)
    size = int(head["ContentLength"])
    if size > limit:
        raise Unprocessable(
            f"{key}: the image is {size / MIB:.1f} MiB, more than the {limit / MIB:.0f} MiB "
            "this pipeline reads"
        )
    version = {"VersionId": head["VersionId"]} if head.get("VersionId") else {}
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key, **version)["Body"].read()
    except ClientError as err:
        if err.response["Error"]["Code"] in GONE:
            raise Unprocessable(f"s3://{bucket}/{key} was deleted while it was read") from err
        raise
    return body


def render_asset(asset: Mapping[str, Any], settings: ImagesSettings, s3: Any) -> dict[str, Any]:
    """Write the asset's renditions; their record, or ``Unprocessable`` with the reason."""
    bucket, key = str(asset["bucket"]), str(asset["key"])
    keys = AssetKeys(key)
    source = _read(s3, bucket, key, settings.max_source_bytes)
    written: dict[tuple[str, str], str] = {}

    def store(rendition: Rendition) -> None:
        target = keys.image_rendition(rendition.size, rendition.extension)
        s3.put_object(
            Bucket=settings.processed_bucket,
            Key=target,
            Body=rendition.data,
            ContentType=rendition.mime_type,
            CacheControl=CACHE_CONTROL,
        )
        written[(rendition.size, rendition.format)] = target

    try:
        rendered = render(source, sink=store)
        chosen = for_analysis(rendered.renditions)
    except ImageRefused as err:
        _remove(s3, settings.processed_bucket, list(written.values()))
        metrics.add_metric(name="ImagesRefused", unit=MetricUnit.Count, value=1)
        logger.warning("image refused", extra={"asset_id": asset["asset_id"], "reason": str(err)})
        raise Unprocessable(f"{key}: {err}") from err
    except BaseException:
        _remove(s3, settings.processed_bucket, list(written.values()))
        raise
    renditions = [{**r.as_dict(), "key": written[(r.size, r.format)]} for r in rendered.renditions]
    metrics.add_metric(name="ImageRenditionsWritten", unit=MetricUnit.Count, value=len(renditions))
    metrics.add_metric(
        name="ImageRenditionBytes",
        unit=MetricUnit.Bytes,
        value=sum(r.size_bytes for r in rendered.renditions),
    )
    logger.info(
        "image rendered",
        extra={"asset_id": asset["asset_id"], "renditions": len(renditions), "bytes": len(source)},
    )
    return {
        "image": rendered.facts.as_dict(),
        "source_bytes": len(source),
        "renditions": renditions,
        "analysis_input": {
            "bucket": settings.processed_bucket,
            "key": written[(chosen.size, chosen.format)],
            "width": chosen.width,
            "height": chosen.height,
            "format": chosen.format,
        },
    }


def _remove(s3: Any, bucket: str, keys: list[str]) -> None:
    """Delete what this invocation wrote (a refused image leaves no rendition behind)."""
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if answer.get("Errors"):
            failed = ", ".join(e.get("Key", "?") for e in answer["Errors"])
            logger.error("renditions could not be removed", extra={"keys": failed})
            raise RuntimeError(f"renditions of a failed image could not be removed: {failed}")


_dependencies = Dependencies(ImagesSettings, lambda _settings: boto3.client("s3"))


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, s3 = _dependencies()
    return render_asset(step_asset(event, "images"), settings, s3)
