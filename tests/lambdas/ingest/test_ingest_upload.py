"""Streaming multipart upload: parts, integrity checks, and nothing left behind on any failure."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from lambdas.ingest.errors import (
    ChecksumMismatch,
    DownloadFailed,
    KeyCollision,
    SizeMismatch,
    TooLarge,
)
from lambdas.ingest.upload import MIB, MIN_PART_SIZE, StreamResult, stream_to_s3

KEY = "video/commons/travel/20250101_060000/Clip.webm"
META = {"source": "commons", "source-id": "42", "checksum": "abc"}


def chunks_of(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture
def s3(aws_session, raw_bucket: str):
    return aws_session.client("s3")


def pending(s3, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def keys(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def assert_nothing_left(s3, bucket: str) -> None:
    """A failed stream leaves neither an object nor a multipart upload that S3 keeps billing."""
    assert keys(s3, bucket) == []
    assert pending(s3, bucket) == []


def stream(
    s3, bucket: str, chunks: Iterable[bytes], *, content_type: str = "video/webm", **options: Any
) -> StreamResult:
    """``stream_to_s3`` to ``KEY`` with ``META``, so each test shows only the limits it varies."""
    return stream_to_s3(
        chunks,
        client=s3,
        bucket=bucket,
        key=KEY,
        content_type=content_type,
        metadata=META,
        **options,
    )


def test_a_file_larger_than_a_part_arrives_whole_with_metadata(s3, raw_bucket):
    # Given 12 MiB arriving in 1 MiB chunks, with 5 MiB parts
    data = bytes(range(256)) * (12 * MIB // 256)

    # When it is streamed into S3
    result = stream(
        s3,
        raw_bucket,
        chunks_of(data),
        max_bytes=64 * MIB,
        expected_size=len(data),
        expected_sha1=hashlib.sha1(data).hexdigest(),
        part_size=MIN_PART_SIZE,
    )

    # Then the object is complete, in three parts, with its metadata and no upload left open
    stored = s3.get_object(Bucket=raw_bucket, Key=KEY)
    assert stored["Body"].read() == data
    assert stored["Metadata"] == META
    assert stored["ContentType"] == "video/webm"
    assert result.parts == 3
    assert result.size_bytes == len(data)
    assert result.sha1 == hashlib.sha1(data).hexdigest()
    assert result.etag.endswith("-3")
    assert pending(s3, raw_bucket) == []


def test_no_more_parts_upload_at_once_than_allowed(s3, raw_bucket):
    # Given a client that records how many part uploads run at the same time
    busy, peak, lock = 0, 0, threading.Lock()
    real_upload = s3.upload_part

    def counting_upload(**kwargs):
        nonlocal busy, peak
        with lock:
            busy += 1
            peak = max(peak, busy)
        try:
            return real_upload(**kwargs)
        finally:
            with lock:
                busy -= 1

    s3.upload_part = counting_upload
    data = b"x" * (16 * MIB)

    # When 16 MiB stream through with two uploads in flight
    result = stream(
        s3,
        raw_bucket,
        chunks_of(data),
        max_bytes=64 * MIB,
        part_size=MIN_PART_SIZE,
        max_in_flight=2,
    )

    # Then memory stays bounded: never more than two parts were uploading
    assert result.parts == 4
    assert 1 <= peak <= 2


def test_crossing_the_size_limit_mid_stream_aborts_after_parts_were_uploaded(s3, raw_bucket):
    # Given a download without Content-Length that turns out bigger than the 7 MiB limit
    data = b"y" * (12 * MIB)

    # When it is streamed
    with pytest.raises(TooLarge) as caught:
        stream(s3, raw_bucket, chunks_of(data), max_bytes=7 * MIB, part_size=MIN_PART_SIZE)

    # Then the limit is named, and neither an object nor an open multipart upload remains
    assert f"more than {7 * MIB} bytes (the limit) while streaming" in str(caught.value)
    assert_nothing_left(s3, raw_bucket)


def test_a_sha1_mismatch_aborts_the_upload(s3, raw_bucket):
    # Given bytes that do not match the checksum the source published
    data = b"tampered video bytes"

    # When streamed with the expected SHA-1
    with pytest.raises(ChecksumMismatch) as caught:
        stream(s3, raw_bucket, chunks_of(data), max_bytes=MIB, expected_sha1="0" * 40)

    # Then both digests are named and nothing is left
    assert f"SHA-1 {hashlib.sha1(data).hexdigest()} does not match the source's {'0' * 40}" in str(
        caught.value
    )
    assert_nothing_left(s3, raw_bucket)


def test_a_short_download_is_caught_by_the_declared_size(s3, raw_bucket):
    # Given a connection that ended early (Pixabay declared 1000 bytes)
    # When streamed
    with pytest.raises(SizeMismatch) as caught:
        stream(
            s3,
            raw_bucket,
            iter([b"z" * 600]),
            content_type="video/mp4",
            max_bytes=MIB,
            expected_size=1000,
        )

    # Then the sizes are named and nothing is left
    assert "got 600 bytes, the source declared 1000" in str(caught.value)
    assert_nothing_left(s3, raw_bucket)


def test_a_connection_broken_mid_stream_aborts_the_upload(s3, raw_bucket):
    # Given a download that breaks after one full part
    def broken() -> Iterator[bytes]:
        yield b"a" * MIN_PART_SIZE
        yield b"b" * MIB
        raise DownloadFailed("commons: download of https://upload.wikimedia.org/x broke off")

    # When streamed
    with pytest.raises(DownloadFailed):
        stream(s3, raw_bucket, broken(), max_bytes=64 * MIB, part_size=MIN_PART_SIZE)

    # Then the part already uploaded is discarded with the aborted upload
    assert_nothing_left(s3, raw_bucket)


def test_an_empty_download_leaves_nothing(s3, raw_bucket):
    # Given a server that sends no bytes
    # When streamed
    with pytest.raises(DownloadFailed) as caught:
        stream(s3, raw_bucket, iter([b""]), max_bytes=MIB)

    # Then it is refused and nothing remains
    assert "the download was empty" in str(caught.value)
    assert pending(s3, raw_bucket) == []


def test_an_existing_object_is_never_overwritten(s3, raw_bucket):
    # Given an object already at the key
    s3.put_object(Bucket=raw_bucket, Key=KEY, Body=b"original")

    # When another stream completes at the same key
    with pytest.raises(KeyCollision):
        stream(s3, raw_bucket, iter([b"newcomer"]), max_bytes=MIB)

    # Then the original is intact and the new upload was aborted
    assert s3.get_object(Bucket=raw_bucket, Key=KEY)["Body"].read() == b"original"
    assert pending(s3, raw_bucket) == []


def test_parts_smaller_than_s3_allows_are_refused_up_front(s3, raw_bucket):
    with pytest.raises(ValueError, match="at least 5242880 bytes"):
        stream(s3, raw_bucket, iter([b"x"]), max_bytes=MIB, part_size=MIB)
    assert pending(s3, raw_bucket) == []
