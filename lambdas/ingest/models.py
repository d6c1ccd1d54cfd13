"""Plain data passed between the sources, the ingest service and the handler."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lambdas.ingest import values
from lambdas.ingest.values import InvalidValue

MAX_ID_LEN = 256
MAX_FILE_NAME_LEN = 1024
MAX_MIME_LEN = 100
MAX_ATTRIBUTION_TEXT = 2000
MAX_ATTRIBUTION_ITEMS = 20


@dataclass(frozen=True)
class Candidate:
    """One file a source offers, with everything needed to decide, fetch and credit it.

    ``checksum`` is the version token that makes the asset id: Commons' SHA-1 of the file (plus
    the derivative key when a WebM transcode is fetched instead), Pixabay's
    ``pixabay:<id>:<rendition size>`` since Pixabay publishes no checksum.

    Building one checks every field (``InvalidValue``, a ``ValueError`` naming the field): a
    source, this one or a future one, cannot hand the service a NaN duration, a 10**40 width, an
    unbounded title or a non-https URL, which would otherwise fail deep inside the catalog
    commit. Sources shorten free text first; what is still out of bounds is refused.
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
    # How far the downloaded length may be from ``size_bytes`` (0: exact, as Commons' is).
    size_tolerance_bytes: int = 0
    expected_sha1: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        for name in ("source", "source_id", "checksum"):
            _bounded(name, getattr(self, name), MAX_ID_LEN)
        _bounded("title", self.title, values.MAX_TITLE)
        _bounded("file_name", self.file_name, MAX_FILE_NAME_LEN)
        _bounded("mime", self.mime, MAX_MIME_LEN)
        _bounded("license", self.license, values.MAX_TEXT)
        # Which hosts and schemes a download may use is the source's HostPolicy (https only for
        # Commons and Pixabay); here it must just be a bounded web address.
        values.web_url("download_url", self.download_url, schemes=("https", "http"))
        for name in ("license_url", "source_page_url"):
            values.web_url(name, getattr(self, name), optional=True, schemes=("https", "http"))
        if self.duration_s is not None:
            values.number("duration_s", self.duration_s, maximum=values.MAX_DURATION_S)
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                values.whole(name, getattr(self, name), maximum=values.MAX_DIMENSION)
        if self.size_bytes is not None:
            values.whole("size_bytes", self.size_bytes, maximum=values.MAX_SIZE_BYTES)
        tolerance = self.size_tolerance_bytes
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
            raise InvalidValue(
                f"size_tolerance_bytes must be a whole number >= 0, got {tolerance!r}"
            )
        if self.expected_sha1 is not None:
            values.sha1("expected_sha1", self.expected_sha1)
        for key, value in self.attribution.items():
            _attribution_value(f"attribution.{key}", value)


def _bounded(name: str, value: object, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{name} must be non-empty text, got {values.shown(value)}")
    if len(value) > limit:
        raise InvalidValue(f"{name} is longer than {limit} characters")


def _attribution_value(name: str, value: object) -> None:
    """Attribution is a flat document of short texts, flags and short lists of texts."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTION_TEXT:
            raise InvalidValue(f"{name} is longer than {MAX_ATTRIBUTION_TEXT} characters")
        return
    if isinstance(value, list) and len(value) <= MAX_ATTRIBUTION_ITEMS:
        for item in value:
            if not isinstance(item, str) or len(item) > values.MAX_TEXT:
                raise InvalidValue(f"{name} must hold short texts, got {values.shown(item)}")
        return
    raise InvalidValue(f"{name} must be text, a flag or a short list, got {values.shown(value)}")


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
    size_bytes: int
    # Known from the source's search answer; an upload's are left to the probe.
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    # ``video`` or ``image``: the workflow's first choice per asset.
    media_type: str = "video"

    def to_output(self) -> dict[str, Any]:
        return asdict(self)
