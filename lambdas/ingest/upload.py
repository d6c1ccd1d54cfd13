"""Stream a download into S3 by multipart upload, with bounded memory and nothing left behind.

Why this shape:

* Lambda has little memory and a small ``/tmp``; a 2 GiB clip must never be held whole, so bytes
  go from the socket into part buffers and out to S3. A fixed pool of ``max_in_flight + 1``
  buffers of ``part_size`` is allocated once and reused (one filling, the others uploading), so
  memory is the same for a 16 MiB clip and a 2 GiB one and the allocator never fragments; the
  download simply waits while every buffer is busy.
* Several parts upload at once (download and uploads overlap), which is what keeps throughput at
  the level of ``upload_file`` from disk.
* SHA-1 is computed while streaming (Commons publishes it), and the size is counted, so a
  truncated or altered file is caught before the object becomes visible.
* Any failure, including the size limit being crossed mid-stream, aborts the multipart upload;
  the object only appears on ``CompleteMultipartUpload``, which is sent with ``If-None-Match: *``
  so an existing object is never overwritten.
* Parts carry CRC32 checksums declared on ``CreateMultipartUpload``, as S3 requires when the SDK
  sends part checksums (the default since botocore 1.36).
"""

from __future__ import annotations

import hashlib
import logging
import queue
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.ingest.aws_types import S3Client
from lambdas.ingest.budget import NO_DEADLINE, TimeBudget
from lambdas.ingest.errors import (
    ChecksumMismatch,
    DownloadFailed,
    KeyCollision,
    OutOfTime,
    SizeMismatch,
    TooLarge,
)

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MIB
DEFAULT_MAX_IN_FLIGHT = 4
CHECKSUM_ALGORITHM = "CRC32"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamResult:
    bucket: str
    key: str
    size_bytes: int
    sha1: str
    etag: str
    parts: int
    version_id: str | None = None


def part_size_for(max_bytes: int, preferred: int = DEFAULT_PART_SIZE) -> int:
    """The preferred part size, or a bigger one (whole MiB) if 10 000 parts could not hold
    ``max_bytes``."""
    needed = -(-max_bytes // MAX_PARTS)
    return max(preferred, MIN_PART_SIZE, -(-needed // MIB) * MIB)


def stream_to_s3(
    chunks: Iterable[bytes],
    *,
    client: S3Client,
    bucket: str,
    key: str,
    content_type: str,
    metadata: Mapping[str, str],
    max_bytes: int,
    expected_size: int | None = None,
    size_tolerance: int = 0,
    expected_sha1: str | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    budget: TimeBudget = NO_DEADLINE,
    label: str = "",
) -> StreamResult:
    """Upload ``chunks`` as one object; return its size, SHA-1 and ETag, or raise and leave nothing.

    Once only ``budget``'s reserve is left the upload is abandoned (``OutOfTime``), checked on
    every chunk, so the Lambda can still report what it did before its own timeout.
    ``expected_size`` is checked exactly unless ``size_tolerance`` allows that many bytes either
    way (a source whose sizes are approximate); ``max_bytes`` is a hard limit either way.
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3 minimum)")
    if max_bytes > part_size * MAX_PARTS:
        raise ValueError(f"max_bytes {max_bytes} needs more than {MAX_PARTS} parts of {part_size}")
    what = label or f"s3://{bucket}/{key}"
    created = client.create_multipart_upload(
        Bucket=bucket,
        Key=key,
        ContentType=content_type,
        Metadata=dict(metadata),
        ChecksumAlgorithm=CHECKSUM_ALGORITHM,
    )
    upload_id = str(created["UploadId"])
    uploader = _PartUploader(
        client, bucket=bucket, key=key, upload_id=upload_id,
        part_size=part_size, max_in_flight=max_in_flight,
    )  # fmt: skip
    try:
        total, digest = _pump(
            chunks,
            uploader,
            max_bytes=max_bytes,
            budget=budget,
            what=what,
        )
        parts = uploader.finish()
        if expected_size is not None and abs(total - expected_size) > size_tolerance:
            allowed = f" (± {size_tolerance} allowed)" if size_tolerance else ""
            raise SizeMismatch(
                f"{what}: got {total} bytes, the source declared {expected_size}{allowed}"
            )
        if expected_sha1 is not None and digest != expected_sha1.lower():
            raise ChecksumMismatch(
                f"{what}: SHA-1 {digest} does not match the source's {expected_sha1.lower()}"
            )
        done = _complete(
            client, bucket=bucket, key=key, upload_id=upload_id, parts=parts, what=what
        )
    except BaseException:
        uploader.cancel()
        _abort(client, bucket, key, upload_id)
        raise
    return StreamResult(
        bucket=bucket,
        key=key,
        size_bytes=total,
        sha1=digest,
        etag=str(done.get("ETag", "")).strip('"'),
        parts=len(parts),
        version_id=str(done["VersionId"]) if done.get("VersionId") not in (None, "null") else None,
    )


def _pump(
    chunks: Iterable[bytes],
    uploader: _PartUploader,
    *,
    max_bytes: int,
    budget: TimeBudget,
    what: str,
) -> tuple[int, str]:
    """Copy chunks into pooled part buffers; returns the byte count and SHA-1 of everything read."""
    sha1 = hashlib.sha1(usedforsecurity=False)  # integrity check against Commons' published SHA-1
    total = 0
    buffer, filled = uploader.buffer(), 0
    size = len(buffer)
    for chunk in chunks:
        if not chunk:
            continue
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"{what}: more than {max_bytes} bytes (the limit) while streaming")
        if budget.spent():
            raise OutOfTime(
                f"{what}: download stopped after {total} bytes: the run's time is nearly up"
            )
        sha1.update(chunk)
        view, offset = memoryview(chunk), 0
        while offset < len(view):
            step = min(len(view) - offset, size - filled)
            buffer[filled : filled + step] = view[offset : offset + step]
            filled += step
            offset += step
            if filled == size:
                uploader.submit(buffer, filled)
                buffer, filled = uploader.buffer(), 0
    if total == 0:
        raise DownloadFailed(f"{what}: the download was empty")
    if filled:
        uploader.submit(buffer, filled)
    else:
        uploader.release(buffer)
    return total, sha1.hexdigest()


def _complete(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    upload_id: str,
    parts: list[dict[str, object]],
    what: str,
) -> dict[str, object]:
    """Make the object visible, refusing to replace one that already exists at the key."""
    try:
        return client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}:
            raise KeyCollision(f"{what}: an object already exists at this key") from err
        raise


def _abort(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    """Best effort: a failed abort is logged, and the bucket's lifecycle rule is the backstop."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (BotoCoreError, ClientError):
        log.exception("could not abort multipart upload %s of s3://%s/%s", upload_id, bucket, key)


class _PartUploader:
    """Uploads parts on a small thread pool from a fixed pool of reusable part buffers.

    ``max_in_flight + 1`` buffers exist at most (one filling, the rest uploading), allocated once
    and reused, so memory is bounded and does not fragment however many parts a file has.
    ``buffer()`` blocks while every buffer is busy, which is what throttles the download.
    """

    def __init__(
        self,
        client: S3Client,
        *,
        bucket: str,
        key: str,
        upload_id: str,
        part_size: int,
        max_in_flight: int,
    ) -> None:
        self._client = client
        self._bucket, self._key, self._upload_id = bucket, key, upload_id
        self._part_size = part_size
        self._capacity = max(1, max_in_flight) + 1
        self._allocated = 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, max_in_flight), thread_name_prefix="part"
        )
        self._futures: list[Future[dict[str, object]]] = []

    def buffer(self) -> bytearray:
        """A free part buffer; waits for an upload to finish when all are in use."""
        while True:
            self._raise_first_failure()
            try:
                return self._free.get_nowait()
            except queue.Empty:
                pass
            if self._allocated < self._capacity:
                self._allocated += 1
                return bytearray(self._part_size)
            try:
                return self._free.get(timeout=0.2)
            except queue.Empty:
                continue

    def release(self, buffer: bytearray) -> None:
        self._free.put(buffer)

    def submit(self, buffer: bytearray, length: int) -> None:
        """Upload ``buffer[:length]`` as the next part; the buffer returns to the pool after."""
        number = len(self._futures) + 1
        if number > MAX_PARTS:
            raise TooLarge(f"s3://{self._bucket}/{self._key}: more than {MAX_PARTS} parts")
        if length == len(buffer):
            body = buffer
        else:  # the last, short part: copy it so the buffer can be reused at once
            body = buffer[:length]
            self.release(buffer)
        future = self._pool.submit(self._upload, number, body)
        if body is buffer:
            future.add_done_callback(lambda _f: self.release(buffer))
        self._futures.append(future)

    def finish(self) -> list[dict[str, object]]:
        try:
            return [future.result() for future in self._futures]
        finally:
            self._pool.shutdown(wait=True)

    def cancel(self) -> None:
        """Stop queued parts and wait for running ones, so none lands after the abort."""
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)

    def _raise_first_failure(self) -> None:
        for future in self._futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                future.result()

    def _upload(self, number: int, body: bytearray) -> dict[str, object]:
        answer = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        )
        part: dict[str, object] = {"PartNumber": number, "ETag": answer["ETag"]}
        if answer.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = answer["ChecksumCRC32"]
        return part
