"""Step 3a: look inside each new asset before anything is paid for.

The probe reads the object's headers, index and first frame with ranged GETs (never the whole
file) and answers the technical metadata plus two decisions: can MediaConvert read it, can
Rekognition Video read it as it is. A file the pipeline cannot process (no decodable video, a
truncated file, a text file named ``.mp4``, longer than the limit) raises ``Unprocessable`` with
the probe's reason: the state machine's catch ends that asset FAILED with that reason before any
MediaConvert or Rekognition call, and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from lambdas.probe.media import probe
from lambdas.probe.reader import ObjectGone, S3RangeReader
from lambdas.probe.settings import ProbeSettings
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import InvalidInput, bounded, require_strings

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


class Unprocessable(ValueError):
    """The file cannot be processed; the message is the probe's reason, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(bounded(message))


def _asset(event: object) -> Mapping[str, Any]:
    asset = event.get("asset") if isinstance(event, Mapping) else None
    if not isinstance(asset, Mapping):
        raise InvalidInput('probe input must be {"asset": {...}} with bucket, key and asset_id')
    require_strings(asset, ("bucket", "key", "asset_id"), "asset.")
    return asset


def probe_asset(asset: Mapping[str, Any], settings: ProbeSettings, s3: Any) -> dict[str, Any]:
    """The probe's report of the asset's object, or ``Unprocessable`` with its reason."""
    bucket, key = str(asset["bucket"]), str(asset["key"])
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            raise Unprocessable(f"s3://{bucket}/{key} no longer exists") from err
        raise
    size = int(head["ContentLength"])
    reader = S3RangeReader(
        s3,
        bucket,
        key,
        version_id=head.get("VersionId"),
        size=size,
        etag=head.get("ETag"),
        max_bytes=settings.max_read_bytes,
    )
    try:
        report = probe(reader, size_bytes=size, name=key, max_duration_s=settings.max_duration_s)
    except ObjectGone as err:
        raise Unprocessable(f"s3://{bucket}/{key} was deleted while it was probed") from err
    metrics.add_metric(name="ProbeBytesRead", unit=MetricUnit.Bytes, value=reader.bytes_read)
    if report.refusal is not None:
        metrics.add_metric(name="AssetsRefused", unit=MetricUnit.Count, value=1)
        logger.warning(
            "asset refused by the probe",
            extra={"asset_id": asset["asset_id"], "reason": report.refusal},
        )
        raise Unprocessable(f"{key}: {report.refusal}")
    logger.info(
        "asset probed",
        extra={"asset_id": asset["asset_id"], "bytes_read": reader.bytes_read, "size": size},
    )
    return report.to_dict()


_dependencies = Dependencies(ProbeSettings, lambda _settings: boto3.client("s3"))


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, s3 = _dependencies()
    return probe_asset(_asset(event), settings, s3)
