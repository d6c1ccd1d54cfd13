"""Local files: streaming checksums, content types by extension, finding candidates in a folder.

Checksums are computed with one reused 1 MiB buffer (``readinto``), so hashing a 100 GiB
recording costs the same memory as hashing a 1 MiB one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import mimetypes
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

HASH_BLOCK = 1024 * 1024

# What cameras, phones and encoders write, by lower-case extension. The pipeline keys on the
# content type to pick a probe, so an exact type matters more than mimetypes' platform table.
CONTENT_TYPES: dict[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/x-m4v",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".mxf": "application/mxf",
    ".mts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".ts": "video/mp2t",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".ogv": "video/ogg",
    ".3gp": "video/3gpp",
}
DEFAULT_PATTERNS: tuple[str, ...] = tuple(f"*{ext}" for ext in CONTENT_TYPES)


def content_type_for(path: Path) -> str:
    """The content type the job is created with; ``application/octet-stream`` if unknown."""
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def sha256_file(path: Path, *, on_read: Callable[[int], None] | None = None) -> str:
    """Lower-case hex SHA-256 of the file, read in 1 MiB blocks into one reused buffer."""
    digest = hashlib.sha256(usedforsecurity=False)  # integrity checksum S3 verifies, not a secret
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            if on_read is not None:
                on_read(count)
    return digest.hexdigest()


def iso_utc(epoch_ns: int) -> str:
    """``2025-06-01T12:00:00Z``: capture times are sent as ISO-8601 UTC, second precision."""
    moment = datetime.fromtimestamp(epoch_ns / 1e9, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Case-insensitive glob match on the file name: cameras write ``.MP4`` as often as ``.mp4``."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in patterns)


def find_files(
    root: Path, patterns: Iterable[str], *, exclude: Path | None = None
) -> Iterator[Path]:
    """Regular files under ``root`` whose names match, in a stable (sorted) order.

    Hidden files and folders (a leading dot) are left out: editors, rsync and many recorders
    write into ``.name.tmp`` and rename when done, and the state folder lives there too.
    """
    wanted = tuple(patterns)
    excluded = exclude.resolve() if exclude is not None else None
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (excluded is None or (here / d).resolve() != excluded)
        )
        for name in sorted(names):
            if name.startswith(".") or not matches(name, wanted):
                continue
            path = here / name
            if path.is_file():
                yield path
