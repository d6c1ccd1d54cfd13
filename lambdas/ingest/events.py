"""The two events the state machine sends, parsed and validated into typed requests."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.shared.campaign_config import UPLOADS_CAMPAIGN, CampaignConfig, resolve
from lambdas.shared.errors import InvalidInput, shown
from lambdas.shared.keys import UPLOADS_PREFIX, UnsafeKeyError, check_slug

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_LEN = 1024


@dataclass(frozen=True)
class SearchRequest:
    """Event A: search the sources for ``target`` new clips and ``image_target`` new images
    (totals over all sources)."""

    campaign: str
    target: int
    image_target: int = 0


@dataclass(frozen=True)
class UploadRequest:
    """Event B: register one file dropped under ``uploads/``."""

    bucket: str
    key: str
    campaign: str
    # The exact object the event named: its version (versioned buckets) and ETag.
    version_id: str | None = None
    etag: str | None = None


def parse_event(
    event: object, load_config: Callable[[], CampaignConfig]
) -> SearchRequest | UploadRequest:
    """Validate again what the resolve step produced: the function may be invoked directly."""
    if not isinstance(event, Mapping):
        raise InvalidInput(f"event must be a JSON object, got {type(event).__name__}")
    if event.get("upload") is not None:
        return _parse_upload(event, load_config)
    overrides = {name: event[name] for name in ("campaign", "batch_sizes") if name in event}
    resolved = resolve(load_config(), overrides)
    sizes = resolved["batch_sizes"]
    return SearchRequest(
        campaign=resolved["campaign"], target=sizes["video"], image_target=sizes.get("image", 0)
    )


def _parse_upload(
    event: Mapping[str, Any], load_config: Callable[[], CampaignConfig]
) -> UploadRequest:
    upload: object = event["upload"]
    if not isinstance(upload, Mapping):
        raise InvalidInput('upload: must be an object such as {"bucket": "...", "key": "..."}')
    bucket, key = upload.get("bucket"), upload.get("key")
    if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket):
        raise InvalidInput(f"upload.bucket: {shown(bucket)} is not a valid bucket name")
    if not isinstance(key, str) or not key.startswith(UPLOADS_PREFIX) or key == UPLOADS_PREFIX:
        raise InvalidInput(f"upload.key: {shown(key)} must name a file under {UPLOADS_PREFIX}")
    if len(key.encode()) > MAX_KEY_LEN or key.endswith("/"):
        raise InvalidInput(f"upload.key: {shown(key)} is not an object key")
    campaign = event.get("campaign")
    if campaign is None or campaign == UPLOADS_CAMPAIGN:
        campaign = UPLOADS_CAMPAIGN
    else:
        try:
            check_slug("campaign", campaign)
        except UnsafeKeyError as err:
            raise InvalidInput(f"campaign: {err}") from err
        known = load_config().campaigns
        if campaign not in known:
            raise InvalidInput(
                f"campaign: {shown(campaign)} is not one of {[*known, UPLOADS_CAMPAIGN]}"
            )
    version_id, etag = upload.get("version_id"), upload.get("etag")
    for name, value in (("version_id", version_id), ("etag", etag)):
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 1024):
            raise InvalidInput(f"upload.{name}: must be a non-empty string, got {shown(value)}")
    return UploadRequest(
        bucket=bucket, key=key, campaign=campaign, version_id=version_id, etag=etag
    )
