"""What the finalize handlers read from their environment (filled by their construct)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lambdas.shared.settings import CatalogSettings, at_least, between, setting

DEFAULT_MIN_LABEL_CONFIDENCE = 70.0
DEFAULT_TOP_LABELS = 15


@dataclass(frozen=True)
class FinalizeSettings(CatalogSettings):
    processed_bucket: str
    min_label_confidence: float = setting(
        default=DEFAULT_MIN_LABEL_CONFIDENCE, check=between(0, 100)
    )
    top_labels: int = setting(default=DEFAULT_TOP_LABELS, check=at_least(1))
    # Unit prices (``stacks/config.py``) for the per-asset cost estimate; empty: no estimate.
    unit_prices: dict[str, Any] = field(default_factory=dict)
    # ``https://<CloudFront domain>`` when the deployment serves media through CloudFront
    # (``constructs_lib/delivery.py``); empty: labels.json has no delivery URLs.
    delivery_base_url: str = setting(default="")
    # Clips up to this long are in the time-to-labels objective's scope (lambdas/shared/slo.py).
    slo_clip_max_s: int = setting(default=600, check=at_least(1))


@dataclass(frozen=True)
class MarkFailedSettings(CatalogSettings):
    label = "mark-failed"

    raw_bucket: str
    processed_bucket: str
