"""JSON documents in S3 (labels.json, attribution sidecars), read the same way by every unit."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


def read_json_version(
    s3: Any, bucket: str, key: str, version_id: str | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The object (or its version ``version_id``) as a JSON object, and the version read; None
    when it does not exist (or is not an object). A reprocess reads its asset's document once
    and keeps what it read by version, so a later step reads the same bytes."""
    params = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
    try:
        answer = s3.get_object(**params)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404"):
            return None, None
        raise
    data = json.loads(answer["Body"].read())
    version = answer.get("VersionId")
    return (data if isinstance(data, dict) else None), (
        str(version) if version and version != "null" else None
    )


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object as a JSON object; None when it does not exist (or is not an object)."""
    return read_json_version(s3, bucket, key)[0]
