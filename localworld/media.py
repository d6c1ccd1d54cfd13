"""What the local services know about the video files they read: the clip's duration.

Real MediaConvert and Rekognition read the duration from the file; the local files are small
stand-ins, so their duration is registered here by content (the SHA-1 of the source bytes, as the
sources' fixtures declare) and by S3 location (the renditions MediaConvert writes).
"""

# ruff: noqa: PLC0415 - Pillow is only needed once, for the thumbnail bytes

from __future__ import annotations

import hashlib
import io
import threading
from functools import cache

DEFAULT_DURATION_S = 30.0


class MediaLibrary:
    def __init__(self) -> None:
        self._by_sha1: dict[str, float] = {}
        self._by_location: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def register_content(self, body: bytes, duration_s: float) -> None:
        with self._lock:
            self._by_sha1[hashlib.sha1(body).hexdigest()] = float(duration_s)  # noqa: S324

    def register_location(self, bucket: str, key: str, duration_s: float) -> None:
        with self._lock:
            self._by_location[(bucket, key)] = float(duration_s)

    def duration_of_content(self, body: bytes) -> float:
        digest = hashlib.sha1(body).hexdigest()  # noqa: S324
        with self._lock:
            return self._by_sha1.get(digest, DEFAULT_DURATION_S)

    def duration_at(self, bucket: str, key: str) -> float:
        with self._lock:
            return self._by_location.get((bucket, key), DEFAULT_DURATION_S)


def clip_bytes(seed: str, size: int) -> bytes:
    """Deterministic bytes standing in for a video file."""
    pattern = hashlib.sha256(seed.encode()).digest()
    return (pattern * (size // len(pattern) + 1))[:size]


def mp4_bytes(seed: str) -> bytes:
    """A tiny ISO-BMFF file (``ftyp`` + ``free``): enough for anyone sniffing the type."""
    ftyp = b"ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
    free = b"free" + seed.encode()[:200]
    return (len(ftyp) + 4).to_bytes(4, "big") + ftyp + (len(free) + 4).to_bytes(4, "big") + free


@cache
def jpeg_bytes(width: int = 64, height: int = 36) -> bytes:
    """A real (tiny, grey) JPEG for thumbnails, so image viewers and the dashboard can open it."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a development requirement
        return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (96, 110, 128)).save(buffer, format="JPEG", quality=60)
    return buffer.getvalue()
