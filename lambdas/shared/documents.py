"""JSON documents in S3 (labels.json, attribution sidecars), read the same way by every unit."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object as a JSON object; None when it does not exist (or is not an object)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    data = json.loads(body)
    return data if isinstance(data, dict) else None
