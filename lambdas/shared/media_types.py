"""The two kinds of asset the pipeline takes, and how a file is told to be one or the other.

Ingest files an asset under ``video/`` or ``image/`` from what the source or the uploader
declared (the content type, else the extension); the workflow routes on that ``media_type``.
The declaration is only a claim: the probe (video) or the images step (image) reads the bytes
and refuses a file that is not what it said, with the reason.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

MediaType = Literal["video", "image"]
VIDEO: MediaType = "video"
IMAGE: MediaType = "image"
MEDIA_TYPES: tuple[MediaType, ...] = (VIDEO, IMAGE)

# What the images unit renders (Pillow with the HEIF plugin), by extension, as the sources and
# the uploaders name them. Not SVG or other vector formats: there are no pixels to read.
IMAGE_EXTENSION_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".gif": "image/gif",
}
IMAGE_CONTENT_TYPES = frozenset(IMAGE_EXTENSION_TYPES.values())
# An image is read whole into memory (a 100 MP TIFF is about 300 MB decoded); larger sources
# are refused before they are downloaded or read.
MAX_IMAGE_BYTES = 200 * 1024 * 1024
# Pillow's decompression-bomb limit, set deliberately (its default is 89 MP with a warning);
# the sources skip a larger image before downloading it.
MAX_IMAGE_PIXELS = 100_000_000


def base_type(content_type: str) -> str:
    """``image/jpeg; charset=...`` -> ``image/jpeg``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_image_type(content_type: str) -> bool:
    return base_type(content_type) in IMAGE_CONTENT_TYPES


def image_type_of(name: str) -> str | None:
    """The image content type a file name's extension stands for, or None."""
    return IMAGE_EXTENSION_TYPES.get(PurePosixPath(name).suffix.lower())
