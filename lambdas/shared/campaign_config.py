"""The campaign configuration document kept in SSM Parameter Store.

Shape (written by the stateful stack, changed by the dashboard)::

    {"active_campaign": "travel",
     "campaigns": ["travel", "tech", "nature"],
     "batch_sizes": {"video": 2, "image": 0}}

``batch_sizes.image`` may be missing (a parameter written before images existed): it is 0, so
a deployment searches images only once someone asks for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from lambdas.shared.errors import InvalidInput, shown
from lambdas.shared.keys import UnsafeKeyError, check_slug
from lambdas.shared.media_types import IMAGE, MEDIA_TYPES, VIDEO

MIN_BATCH, MAX_BATCH = 1, 50
# A run always looks for videos; images only when asked.
MIN_BATCHES = {VIDEO: MIN_BATCH, IMAGE: 0}
# Files people drop under uploads/ belong to no theme; they are filed under this campaign.
UPLOADS_CAMPAIGN = "uploads"


@dataclass(frozen=True)
class CampaignConfig:
    active_campaign: str
    campaigns: tuple[str, ...]
    batch_sizes: dict[str, int]

    def to_json(self) -> str:
        return json.dumps(
            {
                "active_campaign": self.active_campaign,
                "campaigns": list(self.campaigns),
                "batch_sizes": self.batch_sizes,
            },
            sort_keys=True,
        )


def check_batch_size(media: str, value: Any) -> int:
    if media not in MEDIA_TYPES:
        raise InvalidInput(
            f"batch_sizes: unknown media type {shown(media)}; expected {MEDIA_TYPES}"
        )
    low = MIN_BATCHES[media]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_BATCH:
        raise InvalidInput(
            f"batch_sizes.{media}: must be a whole number from {low} to {MAX_BATCH}, "
            f"got {shown(value)}"
        )
    return value


def parse(document: str | dict[str, Any]) -> CampaignConfig:
    """Validate the stored document; a hand-edited parameter fails with the field named."""
    try:
        data = json.loads(document) if isinstance(document, str) else document
    except json.JSONDecodeError as err:
        raise InvalidInput(f"campaign configuration is not JSON: {err}") from err
    if not isinstance(data, dict):
        raise InvalidInput("campaign configuration must be a JSON object")
    campaigns = data.get("campaigns")
    if not isinstance(campaigns, list) or not campaigns:
        raise InvalidInput("campaigns: must be a non-empty list of campaign names")
    try:
        for name in campaigns:
            check_slug("campaign", name)
    except UnsafeKeyError as err:
        raise InvalidInput(f"campaigns: {err}") from err
    active = data.get("active_campaign")
    if active not in campaigns:
        raise InvalidInput(f"active_campaign: {shown(active)} is not one of {campaigns}")
    sizes = data.get("batch_sizes")
    if not isinstance(sizes, dict) or "video" not in sizes:
        raise InvalidInput("batch_sizes: must be an object with a 'video' entry")
    checked = {media: check_batch_size(media, value) for media, value in sizes.items()}
    checked.setdefault(IMAGE, 0)
    return CampaignConfig(str(active), tuple(campaigns), checked)


def resolve(config: CampaignConfig, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Merge execution input overrides over the stored configuration, validating each one."""
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise InvalidInput("execution input must be a JSON object")
    unknown = set(overrides) - {"campaign", "batch_sizes"}
    if unknown:
        raise InvalidInput(
            f"unknown input field(s) {shown(sorted(unknown))}; allowed: campaign, batch_sizes"
        )
    campaign = overrides.get("campaign", config.active_campaign)
    if campaign not in config.campaigns:
        raise InvalidInput(f"campaign: {shown(campaign)} is not one of {list(config.campaigns)}")
    sizes = dict(config.batch_sizes)
    extra = overrides.get("batch_sizes", {})
    if not isinstance(extra, dict):
        raise InvalidInput('batch_sizes: must be an object such as {"video": 2}')
    for media, value in extra.items():
        sizes[media] = check_batch_size(media, value)
    return {"campaign": campaign, "batch_sizes": sizes}


class CampaignConfigStore:
    """Reads and writes the parameter; the dashboard and the handlers share this code."""

    def __init__(self, parameter_name: str, *, client: Any | None = None) -> None:
        self.name = parameter_name
        self._ssm = client or boto3.client("ssm")

    def load(self) -> CampaignConfig:
        value = self._ssm.get_parameter(Name=self.name)["Parameter"]["Value"]
        return parse(value)

    def save(self, config: CampaignConfig) -> None:
        parse(config.to_json())
        self._ssm.put_parameter(Name=self.name, Value=config.to_json(), Overwrite=True)
