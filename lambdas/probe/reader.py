"""A seekable, read-only file object over one S3 object version, fetched in ranged GETs.

Why hand-written: PyAV (FFmpeg) needs a seekable Python file object to probe a container, and
FFmpeg jumps around (the header, the end of the file for an MP4 whose ``moov`` follows
``mdat``, back to the first frame). s3fs or smart_open would do this but pull large dependency
trees (fsspec/aiobotocore, or smart_open's transport extras) into the Lambda layer, which must
stay under 250 MB with FFmpeg in it; neither is a dependency of this project
(``lambdas/requirements.txt``, ``requirements-dev.txt``). The reader is about a hundred lines of
arithmetic over ``get_object(Range=...)`` and counts what it reads, which the probe's
"never the whole file" promise needs anyway.

Reads go in aligned blocks (256 KiB by default) kept in a small LRU, so FFmpeg's back-and-forth
seeks are served from memory; a read spanning several missing blocks is one request. A hard
byte budget (32 MiB by default) stops a pathological file from making the probe read it all.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

from botocore.exceptions import ClientError

DEFAULT_BLOCK_SIZE = 256 * 1024
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_CACHED_BLOCKS = 16

# What S3 answers when the object (or the version HeadObject saw) is gone or was replaced.
_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_CHANGED_CODES = frozenset({"PreconditionFailed", "412", "InvalidRange", "416"})


class ObjectReadError(Exception):
    """The object could not be read as HeadObject described it; names the object."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(f"{uri}: {message}")
        self.uri = uri


class ObjectGone(ObjectReadError):
    """The object (or its version) was deleted between HeadObject and the read."""


class ObjectChanged(ObjectReadError):
    """The object was replaced (another ETag or size) between HeadObject and the read."""


class ReadBudgetExceeded(ObjectReadError):
    """The probe needed more than ``max_bytes`` of the object: it is not reading it all."""


class S3RangeReader(io.RawIOBase):
    """A read-only, seekable view of ``s3://bucket/key`` (one version) for PyAV.

    ``size`` comes from the caller's HeadObject, as does ``version_id`` (pinned, so a new
    upload under the same key is never mixed in) and optionally ``etag`` (sent as ``IfMatch``
    for unversioned buckets, for the same reason).
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        version_id: str | None,
        size: int,
        etag: str | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        cached_blocks: int = DEFAULT_CACHED_BLOCKS,
    ) -> None:
        super().__init__()
        if size < 0 or block_size <= 0 or max_bytes <= 0 or cached_blocks <= 0:
            raise ValueError("size must be >= 0; block_size, max_bytes, cached_blocks > 0")
        self._client = client
        self.bucket, self.key, self.version_id, self.etag = bucket, key, version_id, etag
        self.size = size
        self.block_size = block_size
        self.max_bytes = max_bytes
        self._cached_blocks = cached_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._position = 0
        self.bytes_read = 0
        self.requests = 0

    @property
    def uri(self) -> str:
        version = f"?versionId={self.version_id}" if self.version_id else ""
        return f"s3://{self.bucket}/{self.key}{version}"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"unsupported whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._position = target  # past the end is allowed, as for files: reads return b""
        return target

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        start = self._position
        stop = min(self.size, start + len(view))
        if stop <= start:
            return 0
        first, last = start // self.block_size, (stop - 1) // self.block_size
        blocks = self._ensure(first, last)
        written = 0
        for index in range(first, last + 1):
            block = blocks[index]
            lo = max(start, index * self.block_size) - index * self.block_size
            hi = min(stop, (index + 1) * self.block_size) - index * self.block_size
            view[written : written + hi - lo] = block[lo:hi]
            written += hi - lo
        self._position = stop
        return written

    def _ensure(self, first: int, last: int) -> dict[int, bytes]:
        """Blocks ``first..last``; each run of missing ones is fetched in one request."""
        found: dict[int, bytes] = {}
        missing: list[int] = []
        for index in range(first, last + 1):
            cached = self._blocks.get(index)
            if cached is None:
                missing.append(index)
            else:
                self._blocks.move_to_end(index)
                found[index] = cached
        run: list[int] = []
        for index in missing:
            if run and index != run[-1] + 1:
                found.update(self._fetch(run[0], run[-1]))
                run = []
            run.append(index)
        if run:
            found.update(self._fetch(run[0], run[-1]))
        return found

    def _fetch(self, first: int, last: int) -> dict[int, bytes]:
        begin = first * self.block_size
        end = min(self.size, (last + 1) * self.block_size) - 1
        length = end - begin + 1
        if self.bytes_read + length > self.max_bytes:
            raise ReadBudgetExceeded(
                self.uri,
                f"reading bytes {begin}-{end} would exceed the probe's budget of"
                f" {self.max_bytes} bytes ({self.bytes_read} read in {self.requests} requests)",
            )
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        request["Range"] = f"bytes={begin}-{end}"
        if self.version_id:
            request["VersionId"] = self.version_id
        if self.etag:
            request["IfMatch"] = self.etag
        self.requests += 1
        try:
            response = self._client.get_object(**request)
            body = response["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _GONE_CODES:
                raise ObjectGone(self.uri, "no longer exists (deleted after HeadObject)") from error
            if code in _CHANGED_CODES:
                raise ObjectChanged(self.uri, f"changed after HeadObject ({code})") from error
            raise ObjectReadError(self.uri, f"GetObject failed: {code or error}") from error
        self.bytes_read += len(data)
        if len(data) != length:
            raise ObjectChanged(
                self.uri,
                f"bytes {begin}-{end}: got {len(data)} bytes, expected {length}"
                f" (the object is no longer {self.size} bytes)",
            )
        blocks: dict[int, bytes] = {}
        for index in range(first, last + 1):
            offset = index * self.block_size - begin
            block = data[offset : offset + self.block_size]
            blocks[index] = block
            self._blocks[index] = block
            self._blocks.move_to_end(index)
        while len(self._blocks) > self._cached_blocks:
            self._blocks.popitem(last=False)
        return blocks
