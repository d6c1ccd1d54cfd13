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

from lambdas.probe.media import probe
from lambdas.probe.reader import ObjectGone, S3RangeReader
from lambdas.probe.settings import ProbeSettings
from lambdas.shared.assets import head_asset, step_asset
from lambdas.shared.entry import Dependencies, Powertools
from lambdas.shared.errors import Unprocessable

tools = Powertools()
logger, metrics = tools.logger, tools.metrics


def probe_asset(asset: Mapping[str, Any], settings: ProbeSettings, s3: Any) -> dict[str, Any]:
    """The probe's report of the asset's object, or ``Unprocessable`` with its reason."""
    bucket, key = str(asset["bucket"]), str(asset["key"])
    head = head_asset(s3, bucket, key)
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
    return probe_asset(step_asset(event, "probe"), settings, s3)
