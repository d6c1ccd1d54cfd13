"""What the uploader remembers between runs, in a folder of small JSON files.

Layout of the state folder (``DIR/.media-upload`` by default):

* ``uploaded/<sha256>.json``: one file per content checksum that reached the pipeline, with its
  job id. A file whose checksum is here is skipped, wherever it lies and whatever its name.
* ``checksums/<path key>.json``: the checksum of a path at a given size and mtime, so a restart
  does not re-read every file in the folder to find out it was already uploaded.
* ``inflight/<path key>.json``: one file per upload in progress (job id, upload id, part size,
  the parts S3 acknowledged with their ETags, checksum, size, mtime). It is rewritten after
  every part, which is what makes a crash cost at most the part that was on the wire.

Every write goes to a temporary file in the same folder, is fsynced and then renamed over the
old one (``os.replace`` is atomic on POSIX), so a power cut leaves either the old or the new
record, never half of one. One JSON file per record, rather than one database, keeps that
property without a library and lets an operator read or delete a record with a text editor.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_VERSION = 1


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` with ``document`` so that readers see the old or the new file only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    # The rename itself is durable only once the folder's entry is on disk.
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_json(path: Path) -> dict[str, Any] | None:
    """The record, or None if it is missing or unreadable (an unreadable one is ignored, not
    fatal: the worst outcome is one file uploaded again)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def path_key(path: Path) -> str:
    """A file name for per-path records: a digest of the absolute path (names can be long)."""
    absolute = str(path.resolve()).encode("utf-8", "surrogateescape")
    return hashlib.sha256(absolute, usedforsecurity=False).hexdigest()[:40]


@dataclass
class InFlight:
    """One upload in progress; enough to resume it from another process after a crash."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    job_id: str
    method: str  # "PUT" or "MULTIPART"
    upload_id: str | None = None
    part_size: int = 0
    # Part number -> ETag, for every part S3 acknowledged.
    parts: dict[int, str] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def part_count(self) -> int:
        if self.method != "MULTIPART" or self.part_size <= 0:
            return 1
        return max(1, -(-self.size // self.part_size))

    def part_range(self, number: int) -> tuple[int, int]:
        """(offset, length) of part ``number`` (1-based) in the file."""
        offset = (number - 1) * self.part_size
        return offset, min(self.part_size, self.size - offset)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "path": self.path,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "sha256": self.sha256,
            "job_id": self.job_id,
            "method": self.method,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "parts": {str(number): etag for number, etag in sorted(self.parts.items())},
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> InFlight | None:
        if document.get("version") != STATE_VERSION:
            return None
        try:
            return cls(
                path=str(document["path"]),
                size=int(document["size"]),
                mtime_ns=int(document["mtime_ns"]),
                sha256=str(document["sha256"]),
                job_id=str(document["job_id"]),
                method=str(document["method"]),
                upload_id=document.get("upload_id"),
                part_size=int(document.get("part_size") or 0),
                parts={int(k): str(v) for k, v in dict(document.get("parts") or {}).items()},
                created_at=str(document.get("created_at") or ""),
            )
        except (KeyError, TypeError, ValueError):
            return None


class StateStore:
    """The state folder; every method is one small read or one atomic write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in ("uploaded", "checksums", "inflight"):
            (root / folder).mkdir(parents=True, exist_ok=True)

    # -- uploaded, by checksum -----------------------------------------------------------------
    def uploaded(self, sha256: str) -> dict[str, Any] | None:
        return _read_json(self.root / "uploaded" / f"{sha256}.json")

    def record_uploaded(self, *, sha256: str, job_id: str, path: Path, size: int) -> None:
        write_json_atomic(
            self.root / "uploaded" / f"{sha256}.json",
            {
                "sha256": sha256,
                "job_id": job_id,
                "path": str(path),
                "size": size,
                "uploaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )

    # -- checksum cache, by path, size and mtime ---------------------------------------------
    def cached_checksum(self, path: Path, size: int, mtime_ns: int) -> str | None:
        record = _read_json(self.root / "checksums" / f"{path_key(path)}.json")
        if record and record.get("size") == size and record.get("mtime_ns") == mtime_ns:
            return str(record.get("sha256"))
        return None

    def remember_checksum(self, path: Path, size: int, mtime_ns: int, sha256: str) -> None:
        write_json_atomic(
            self.root / "checksums" / f"{path_key(path)}.json",
            {"path": str(path), "size": size, "mtime_ns": mtime_ns, "sha256": sha256},
        )

    def forget_checksum(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / "checksums" / f"{path_key(path)}.json").unlink()

    # -- uploads in flight -------------------------------------------------------------------
    def _inflight_path(self, path: Path) -> Path:
        return self.root / "inflight" / f"{path_key(path)}.json"

    def load_inflight(self, path: Path) -> InFlight | None:
        document = _read_json(self._inflight_path(path))
        return InFlight.from_json(document) if document else None

    def save_inflight(self, inflight: InFlight) -> None:
        write_json_atomic(self._inflight_path(Path(inflight.path)), inflight.to_json())

    def drop_inflight(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._inflight_path(path).unlink()
