"""What the jobs API handler reads from its environment (its construct fills it).

Sizes are bytes. ``ADMIN_PRINCIPALS`` is a JSON list of IAM ARNs (a list rather than a
comma-separated value because IAM user and role names may themselves contain commas).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property

from lambdas.shared.campaign_config import UPLOADS_CAMPAIGN
from lambdas.shared.keys import UnsafeKeyError, check_slug
from lambdas.shared.media_types import IMAGE_CONTENT_TYPES
from lambdas.shared.settings import CatalogSettings, at_least, between, setting

KIB, MIB, GIB = 1024, 1024**2, 1024**3
# S3's limits: parts of a multipart upload are 5 MiB to 5 GiB (the last may be smaller), at most
# 10,000 of them; one PUT carries at most 5 GiB.
MIN_PART_BYTES = 5 * MIB
MAX_PART_BYTES = 5 * GIB
MAX_PARTS = 10_000
MAX_SINGLE_PUT_BYTES = 5 * GIB
# Every part URL of an upload is in the answer to ``POST /jobs``; about 700 bytes each, so this
# keeps that answer far below Lambda's 6 MB response limit.
MAX_PARTS_PER_UPLOAD = 1_000
# SigV4 presigned URLs live at most seven days (and no longer than the signing credentials).
MAX_URL_EXPIRY_S = 7 * 24 * 3600

DEFAULT_CONTENT_TYPES = (
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    # What the images unit renders, but not image/heif: phones name their photos .heic.
    *sorted(IMAGE_CONTENT_TYPES - {"image/heif"}),
)  # not video/ogg: MediaConvert reads no Ogg Theora, and ingest refuses .ogv uploads
_MEDIA_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")
_ARN_RE = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:\S+$")


def _media_types(value: tuple[str, ...]) -> str | None:
    if not value:
        return "must name at least one media type"
    bad = [item for item in value if not _MEDIA_TYPE_RE.match(item)]
    return f"has invalid media types {bad}" if bad else None


def _arn_list(value: str) -> str | None:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return "must be a JSON list of IAM ARNs"
    if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
        return "must be a JSON list of IAM ARNs"
    bad = [item for item in parsed if not _ARN_RE.match(item)]
    return f"has values that are not IAM ARNs {bad}" if bad else None


def _campaign(value: str) -> str | None:
    try:
        check_slug("campaign", value)
    except UnsafeKeyError as err:
        return str(err)
    return None


@dataclass(frozen=True)
class ApiSettings(CatalogSettings):
    raw_bucket: str
    processed_bucket: str
    # The campaign configuration parameter (``lambdas/shared/campaign_config.py``).
    config_parameter: str
    # The reprocess workflow ``POST /assets/{asset_id}/reprocess`` starts.
    reprocess_state_machine_arn: str
    # Story projects (``POST /projects``): their uploads and status.
    projects_bucket: str
    # Larger uploads are multipart; at most a single PUT's 5 GiB.
    multipart_threshold_bytes: int = setting(
        default=100 * MIB, check=between(1, MAX_SINGLE_PUT_BYTES)
    )
    part_size_bytes: int = setting(default=16 * MIB, check=between(MIN_PART_BYTES, MAX_PART_BYTES))
    max_upload_bytes: int = setting(default=10 * GIB, check=at_least(1))
    url_expiry_s: int = setting(default=3600, check=between(60, MAX_URL_EXPIRY_S))
    max_body_bytes: int = setting(default=16 * KIB, check=between(256, 1024 * KIB))
    allowed_content_types: tuple[str, ...] = setting(
        default=DEFAULT_CONTENT_TYPES, check=_media_types
    )
    admin_principals: str = setting(default="[]", check=_arn_list)
    # The Cognito group (claim ``cognito:groups``) whose members may read every job.
    admin_group: str | None = None
    # Campaign of a job that names none.
    default_campaign: str = setting(default=UPLOADS_CAMPAIGN, check=_campaign)

    def __post_init__(self) -> None:
        if isinstance(self.part_size_bytes, int) and isinstance(self.max_upload_bytes, int):
            parts = -(-self.max_upload_bytes // self.part_size_bytes)
            if parts > MAX_PARTS_PER_UPLOAD:
                raise self.error(
                    f"{self.label} configuration: MAX_UPLOAD_BYTES {self.max_upload_bytes} "
                    f"needs {parts} parts of PART_SIZE_BYTES {self.part_size_bytes}; at most "
                    f"{MAX_PARTS_PER_UPLOAD} are allowed, so raise PART_SIZE_BYTES"
                )

    @cached_property
    def admins(self) -> frozenset[str]:
        """The IAM principals that may read every job (``admin_principals``, parsed)."""
        return frozenset(json.loads(self.admin_principals))
