"""The data lake key layout, in one place.

Every object name the pipeline writes is derived here, so the raw and processed zones stay in step
and names stay predictable (``video/<source>/<campaign>/<YYYYMMDD_HHMMSS>/<file>``, and
``image/...`` beside it), which is what people browsing the bucket and lifecycle rules filtering
on prefixes rely on.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

from lambdas.shared.errors import shown

VIDEO_PREFIX = "video/"
IMAGE_PREFIX = "image/"
UPLOADS_PREFIX = "uploads/"
SCRATCH_PREFIX = "scratch/"
CACHE_PREFIX = "scratch/cache/"

MAX_FILE_NAME_LEN = 120
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_UNSAFE_RUN_RE = re.compile(r"[^A-Za-z0-9._-]+")


class UnsafeKeyError(ValueError):
    """A name cannot be turned into a safe, readable S3 key."""


def check_slug(kind: str, value: str) -> str:
    """Sources and campaigns become key segments, so they must be short lowercase slugs."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise UnsafeKeyError(
            f"{kind} {shown(value)} is not a valid name: use 1-40 lowercase letters, digits or '-'"
        )
    return value


def safe_file_name(title: str, *, max_len: int = MAX_FILE_NAME_LEN) -> str:
    """Make a readable ASCII file name from an arbitrary title.

    Accents are folded (``Café`` -> ``Cafe``), path separators, control characters and other
    punctuation become ``_``, leading dots are dropped (no ``..`` or hidden names) and the stem is
    shortened so the whole name fits ``max_len`` while the extension survives.
    """
    if not isinstance(title, str) or not title.strip():
        raise UnsafeKeyError("file name is empty")
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    folded = folded.replace("/", "_").replace("\\", "_")
    # Titles like "File:Foo.webm" keep only the part after the namespace colon.
    if ":" in folded:
        folded = folded.split(":", 1)[1] if folded.lower().startswith("file:") else folded
    cleaned = _UNSAFE_RUN_RE.sub("_", folded)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip("._-")
    if not cleaned:
        raise UnsafeKeyError(f"file name {shown(title)} has no usable characters")
    path = PurePosixPath(cleaned)
    suffix = path.suffix.lower() if len(path.suffix) <= 6 else ""
    stem = cleaned[: len(cleaned) - len(path.suffix)] if suffix else cleaned
    stem = stem.strip("._-") or "file"
    room = max_len - len(suffix)
    if len(stem) > room:
        digest = hashlib.sha256(stem.encode(), usedforsecurity=False).hexdigest()[:8]
        stem = stem[: room - 9].rstrip("._-") + "_" + digest
    return stem + suffix


def batch_folder(at: datetime) -> str:
    """Folder name of one ingest batch; UTC so names sort in time order across regions."""
    return at.astimezone(UTC).strftime("%Y%m%d_%H%M%S")


@dataclass(frozen=True)
class AssetKeys:
    """All keys that belong to one asset, derived from its raw key."""

    raw: str

    @property
    def folder(self) -> str:
        return self.raw.rsplit("/", 1)[0]

    @property
    def stem(self) -> str:
        return PurePosixPath(self.raw).stem

    @property
    def attribution(self) -> str:
        return f"{self.folder}/{self.stem}_attribution.json"

    @property
    def labels(self) -> str:
        return f"{self.folder}/{self.stem}_labels.json"

    @property
    def renditions_prefix(self) -> str:
        return f"{self.folder}/{self.stem}/"

    @property
    def mp4_prefix(self) -> str:
        return f"{self.renditions_prefix}mp4/"

    @property
    def hls_prefix(self) -> str:
        return f"{self.renditions_prefix}hls/"

    @property
    def thumbnails_prefix(self) -> str:
        return f"{self.renditions_prefix}thumbnails/"

    @property
    def images_prefix(self) -> str:
        """An image's renditions (every size in every format)."""
        return f"{self.renditions_prefix}images/"

    def image_rendition(self, size: str, extension: str) -> str:
        """One rendition of an image: ``<stem>/images/<stem>_<size>.<extension>``."""
        return f"{self.images_prefix}{self.stem}_{size}.{extension}"

    @property
    def speech_prefix(self) -> str:
        """Transcribe's output (transcript JSON, VTT and SRT), named after its job."""
        return f"{self.renditions_prefix}speech/"


def raw_key(
    source: str, campaign: str, at: datetime, file_name: str, media_type: str = "video"
) -> str:
    """Key of an ingested file in the raw zone: ``<video|image>/<source>/<campaign>/<batch>/``."""
    check_slug("source", source)
    check_slug("campaign", campaign)
    prefix = {"video": VIDEO_PREFIX, "image": IMAGE_PREFIX}.get(media_type)
    if prefix is None:
        raise UnsafeKeyError(f"media type {shown(media_type)} is not video or image")
    return f"{prefix}{source}/{campaign}/{batch_folder(at)}/{safe_file_name(file_name)}"


def asset_id(source: str, source_id: str, checksum: str) -> str:
    """Deterministic asset id: the same source item with the same content is the same asset.

    Deterministic ids make retries idempotent end to end (catalog writes, Rekognition
    ClientRequestToken, execution names).
    """
    digest = hashlib.sha256(
        f"{source}\x1f{source_id}\x1f{checksum}".encode(), usedforsecurity=False
    ).hexdigest()
    return f"{check_slug('source', source)}-{digest[:20]}"
