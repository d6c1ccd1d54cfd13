"""What the reprocess handlers read from their environment (filled by their construct)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import CatalogSettings, between, setting

# S3's retrieval tiers that every archive class offers (Expedited is Glacier Flexible Retrieval
# only, and costs by the request; a reprocess is not urgent).
RESTORE_TIERS = ("Standard", "Bulk")


def _tier(value: str) -> str | None:
    return None if value in RESTORE_TIERS else f"must be one of {list(RESTORE_TIERS)}"


@dataclass(frozen=True)
class PrepareSettings(CatalogSettings):
    """Prepare reads the asset's record and its last labels.json from the processed bucket."""

    processed_bucket: str


@dataclass(frozen=True)
class RestoreSettings(CatalogSettings):
    """How a raw object in Glacier Flexible Retrieval or Deep Archive is brought back."""

    restore_tier: str = setting(default="Standard", check=_tier)
    # Days the temporary copy stays readable: long enough for the analysis to read it.
    restore_days: int = setting(default=2, check=between(1, 30))
