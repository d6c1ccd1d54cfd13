"""A project's objects in the projects bucket: reading them to /tmp, its status, its work files.

A render reads every image and the narration from S3 to local files (PyAV and Pillow decode
files; streaming them from S3 would gain nothing for files that are read whole), one invocation
at a time, and each handler removes what it downloaded. ``status.json`` is what the jobs API and
the dashboard show for a project; it is rewritten at each stage.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lambdas.shared.documents import read_json
from lambdas.shared.errors import InvalidInput, shown
from lambdas.shared.projects import head, now, read_status, write_status
from lambdas.shared.story_manifest import PROJECTS_PREFIX, ManifestError, project_key

__all__ = [
    "delete_prefix",
    "download",
    "head",
    "now",
    "project_key",
    "read_plan",
    "read_status",
    "scratch",
    "write_status",
]


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A private folder under /tmp, removed whatever happens (a warm function keeps /tmp)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def download(
    s3: Any,
    bucket: str,
    key: str,
    path: Path,
    *,
    what: str,
    max_bytes: int,
    version_id: str | None = None,
) -> dict[str, Any]:
    """``key`` to ``path`` after checking it is there and not too large; ``ManifestError``
    names ``what`` (the segment, the narration) otherwise. Returns the head it checked."""
    found = head(s3, bucket, key, version_id=version_id)
    if found is None:
        raise ManifestError(f"{what}: s3://{bucket}/{key} is missing")
    size = int(found.get("ContentLength", 0))
    if size > max_bytes:
        raise ManifestError(f"{what}: {size} bytes is over the limit of {max_bytes}")
    if size == 0:
        raise ManifestError(f"{what}: s3://{bucket}/{key} is empty")
    extra = {"VersionId": found["VersionId"]} if found.get("VersionId") else None
    s3.download_file(bucket, key, str(path), ExtraArgs=extra)
    return found


def delete_prefix(s3: Any, bucket: str, prefix: str) -> int:
    """Delete the current objects under ``prefix`` (a run's work files); returns how many.

    The bucket is versioned, so these leave delete markers and noncurrent versions, which the
    bucket's lifecycle expires a day later (``ExpireProjects``)."""
    if not prefix.startswith(PROJECTS_PREFIX) or "/work/" not in prefix:
        raise InvalidInput(f"refusing to delete {shown(prefix)}: only a run's work/ prefix")
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def read_plan(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """The run's plan (``plan.json``, which Plan story wrote before any chunk ran)."""
    plan = read_json(s3, bucket, key)
    if plan is None:
        raise InvalidInput(f"plan: s3://{bucket}/{key} is missing or not a JSON object")
    return plan
