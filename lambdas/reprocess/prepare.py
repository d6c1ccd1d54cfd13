"""Reprocess, step 1: what a new analysis of a stored asset reads, and whether it must wait.

A reprocess runs Rekognition and finalize again on an asset the pipeline already processed,
without uploading or transcoding it again. Everything the first run decided is in the asset's
last ``labels.json`` (the renditions' keys, the MediaConvert jobs, the probe's report, and which
object Rekognition read: the source itself or the MP4 proxy), so this step rebuilds the state
the pipeline's Finalize reads from it, and says whether the object to analyse is archived
(Glacier Flexible Retrieval or Deep Archive: not readable until restored) and, if so, whether a
restore is already under way or done.

A reprocess may run only some of the analyses (``features``): the state machine skips the
others' branches, and Finalize takes their sections from the document read here, by the version
read (``previous``), whatever is written to the key in between.

Only a PROCESSED asset can be reprocessed: a FAILED one has no renditions left (mark-failed
removes them) and, failing in probe or transcode, would fail again the same way; it is refused
with ``NotReprocessable`` naming its status and reason.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from lambdas.reprocess.settings import PrepareSettings
from lambdas.shared.catalog import Catalog
from lambdas.shared.documents import read_json_version
from lambdas.shared.entry import Powertools
from lambdas.shared.errors import InvalidInput, require_strings
from lambdas.shared.rekognition import FEATURES, rerun_features

tools = Powertools()
logger = tools.logger

ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
# What the pipeline passes along as ``$.asset`` (ingest's answer), taken from the record.
ASSET_FIELDS = (
    "asset_id", "source", "source_id", "campaign", "bucket", "key", "size_bytes", "duration_s",
    "width", "height", "version_id", "job_id",
)  # fmt: skip
_ONGOING = re.compile(r'ongoing-request="(true|false)"')


class NotReprocessable(Exception):
    """The asset cannot be reprocessed (unknown, not PROCESSED, or its results are gone)."""


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def archive_state(head: Mapping[str, Any]) -> str:
    """``available`` (readable now), ``archived`` (needs a restore), ``restoring`` or
    ``restored`` (a temporary copy is readable), from a HeadObject answer."""
    if head.get("StorageClass") not in ARCHIVE_CLASSES:
        return "available"
    ongoing = _ONGOING.search(str(head.get("Restore") or ""))
    if ongoing is None:
        return "archived"
    return "restoring" if ongoing.group(1) == "true" else "restored"


def _analysed(document: Mapping[str, Any]) -> dict[str, Any]:
    processing = document.get("processing") or {}
    analysed = processing.get("analysed")
    if isinstance(analysed, Mapping) and analysed.get("input") in ("source", "proxy"):
        return {
            "input": analysed["input"],
            "video": {"bucket": analysed["bucket"], "key": analysed["key"]},
            "reason": str(analysed.get("reason") or ""),
        }
    # A document from before schema 2.2 does not say; the MP4 proxy is what Rekognition can
    # always read.
    renditions = document.get("renditions") or {}
    return {
        "input": "proxy",
        "video": {"bucket": renditions.get("bucket"), "key": renditions.get("mp4_key")},
        "reason": "the first run's labels.json does not say what was analysed; the proxy is read",
    }


def prepare(
    asset_id: str,
    *,
    settings: PrepareSettings,
    catalog: Catalog,
    s3: Any,
    features: tuple[str, ...] = FEATURES,
) -> dict[str, Any]:
    record = catalog.get_asset(asset_id)
    if record is None:
        raise NotReprocessable(f"asset {asset_id} is not in the catalog")
    status = record.get("status")
    if status != "PROCESSED" or not record.get("labels_key"):
        reason = record.get("failure_reason")
        raise NotReprocessable(
            f"asset {asset_id} is {status}"
            + (f" ({reason})" if reason else "")
            + "; only a processed asset can be reprocessed (upload the file again instead)"
        )
    labels_key = str(record["labels_key"])
    document, version_id = read_json_version(s3, settings.processed_bucket, labels_key)
    if document is None:
        raise NotReprocessable(
            f"asset {asset_id}: its labels document {record['labels_key']} is gone from the "
            "processed bucket, so its renditions cannot be trusted; upload the file again"
        )
    renditions, thumbnails = document.get("renditions") or {}, document.get("thumbnails") or {}
    analysis = _analysed(document)
    video = analysis["video"]
    try:
        head = s3.head_object(Bucket=video["bucket"], Key=video["key"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise NotReprocessable(
                f"asset {asset_id}: s3://{video['bucket']}/{video['key']}, which its analysis "
                "reads, no longer exists"
            ) from err
        raise
    state = archive_state(head)
    asset = {name: _plain(record[name]) for name in ASSET_FIELDS if record.get(name) is not None}
    logger.info(
        "reprocess prepared",
        extra={
            "asset_id": asset_id,
            "analysed": analysis["input"],
            "archive": state,
            "features": list(features),
        },
    )
    return {
        "asset_id": asset_id,
        "asset": asset,
        "plan": {
            "outputs": {
                "mp4_key": renditions.get("mp4_key"),
                "hls_manifest_key": renditions.get("hls_manifest_key"),
                "thumbnails_prefix": thumbnails.get("prefix"),
            },
            "analysis": analysis,
            "rerun": {feature: feature in features for feature in FEATURES},
        },
        # What the analyses that do not run again keep their results from.
        "previous": {
            "labels_key": labels_key,
            "version_id": version_id,
            "run": ((document.get("processing") or {}).get("run") or {}).get("name"),
            "generated_at": document.get("generated_at"),
        },
        "work": {
            "transcode_job_ids": list(
                (document.get("processing") or {}).get("transcode_job_ids") or []
            )
        },
        "probe": {"technical": document.get("technical")},
        "restore": {
            # Archived or still restoring: the run waits for S3's "Object Restore Completed".
            "needed": state in ("archived", "restoring"),
            "state": state,
            "storage_class": head.get("StorageClass") or "STANDARD",
            "bucket": video["bucket"],
            "key": video["key"],
        },
    }


@functools.cache
def _dependencies() -> tuple[PrepareSettings, Catalog, Any]:
    settings = PrepareSettings.from_env()
    return settings, Catalog(settings.catalog_table), boto3.client("s3")


@tools.entry
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise InvalidInput("reprocess input must be an object")
    require_strings(event, ("asset_id",))
    try:
        features = rerun_features(event.get("features"))
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    settings, catalog, s3 = _dependencies()
    return prepare(
        str(event["asset_id"]), settings=settings, catalog=catalog, s3=s3, features=features
    )
