"""Plain data passed between the sources, the ingest service and the handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Candidate:
    """One file a source offers, with everything needed to decide, fetch and credit it.

    ``checksum`` is the version token that makes the asset id: Commons' SHA-1 of the file (plus
    the derivative key when a WebM transcode is fetched instead), Pixabay's
    ``pixabay:<id>:<rendition size>`` since Pixabay publishes no checksum.
    """

    source: str
    source_id: str
    checksum: str
    title: str
    file_name: str
    download_url: str
    mime: str
    license: str
    license_url: str | None
    source_page_url: str | None
    attribution: dict[str, Any] = field(default_factory=dict)
    size_bytes: int | None = None
    expected_sha1: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Rejected:
    """A search hit the source itself turned down (non-free license, missing fields...)."""

    source: str
    source_id: str
    reason: str
    detail: str


@dataclass(frozen=True)
class IngestedAsset:
    """A new asset in the raw zone and the catalog; ``to_output`` is what the state machine gets."""

    bucket: str
    key: str
    asset_id: str
    source: str
    campaign: str
    duration_s: float | None
    size_bytes: int
    width: int | None
    height: int | None

    def to_output(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "asset_id": self.asset_id,
            "source": self.source,
            "campaign": self.campaign,
            "duration_s": self.duration_s,
            "size_bytes": self.size_bytes,
            "width": self.width,
            "height": self.height,
        }
