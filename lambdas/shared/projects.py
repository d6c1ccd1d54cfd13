"""A story project's ``status.json``: what the jobs API and the dashboard show of a project.

Written by the jobs API when the project is made (``WAITING_FOR_UPLOADS``, with its owner), then
by each stage of its render (``RENDERING``, ``SUCCEEDED`` or ``FAILED`` with the reason). Each
write keeps what an earlier one recorded of who and when (``owner``, ``created_at``), so the
owner check of ``GET /projects/{id}`` holds through every stage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas.shared.assets import GONE
from lambdas.shared.documents import read_json
from lambdas.shared.story_manifest import status_key

KEPT = ("owner", "created_at")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def head(s3: Any, bucket: str, key: str, *, version_id: str | None = None) -> dict[str, Any] | None:
    """The object's metadata, or None when it is not there."""
    extra = {"VersionId": version_id} if version_id else {}
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key, **extra))
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in GONE:
            return None
        raise


def read_status(s3: Any, bucket: str, project_id: str) -> dict[str, Any] | None:
    return read_json(s3, bucket, status_key(project_id))


def write_status(s3: Any, bucket: str, project_id: str, status: Mapping[str, Any]) -> None:
    previous = read_status(s3, bucket, project_id) or {}
    document = {
        "project_id": project_id,
        **{name: previous[name] for name in KEPT if name in previous},
        **status,
        "updated_at": now(),
    }
    s3.put_object(
        Bucket=bucket,
        Key=status_key(project_id),
        Body=json.dumps(document).encode(),
        ContentType="application/json",
    )
